#include "proxy/io/ready_read.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <optional>

#include <gtest/gtest.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>

// Counts the process's epoll_ctl and recv calls (these definitions in the test executable come
// before the C library's), so a test can tell which system calls a wait or a read made.
namespace {
std::atomic<int> epoll_ctl_calls{0};
std::atomic<int> recv_calls{0};
}  // namespace
extern "C" int epoll_ctl(int epfd, int op, int fd, struct epoll_event* event) {
  epoll_ctl_calls.fetch_add(1, std::memory_order_relaxed);
  return static_cast<int>(::syscall(SYS_epoll_ctl, epfd, op, fd, event));
}
extern "C" ssize_t recv(int fd, void* buf, size_t len, int flags) {
  recv_calls.fetch_add(1, std::memory_order_relaxed);
  return ::syscall(SYS_recvfrom, fd, buf, len, flags, nullptr, nullptr);
}

namespace devspaces::proxy::io {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
using error_code = boost::system::error_code;

struct ready_read_test : ::testing::Test {
  asio::io_context io;
  tcp::acceptor acc{io, {asio::ip::make_address("127.0.0.1"), 0}};
  tcp::socket client{io};
  tcp::socket server{io};
  char buf[64];

  void SetUp() override {
    client.connect(acc.local_endpoint());
    server = acc.accept();
    // One exchange first, as on a keep-alive connection: the read waits, the bytes arrive,
    // epoll reports them, the read takes them all (a short read: the socket is drained).
    EXPECT_EQ(read_after_write("ping"), 4u);
  }

  template <typename Pred>
  void run_until(Pred done) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io.restart();
      io.run_one_for(50ms);
    }
    ASSERT_TRUE(done());
  }

  /// Starts a drained read, then the peer writes `text`; returns the bytes read.
  std::size_t read_after_write(std::string_view text) {
    std::optional<std::size_t> got;
    async_read_some_drained(client, asio::buffer(buf), [&](error_code ec, std::size_t n) {
      EXPECT_FALSE(ec);
      got = n;
    });
    io.restart();
    io.poll();
    asio::write(server, asio::buffer(text.data(), text.size()));
    run_until([&] { return got.has_value(); });
    return got.value_or(0);
  }
};

TEST_F(ready_read_test, wait_completes_when_data_arrives_and_leaves_it_to_the_read) {
  std::optional<error_code> result;
  async_wait_readable(client, [&](error_code ec) { result = ec; });
  io.restart();
  io.poll();
  EXPECT_FALSE(result) << "nothing was sent yet";
  asio::write(server, asio::buffer("GET / HTTP/1.1\r\n\r\n", 18));
  run_until([&] { return result.has_value(); });
  EXPECT_FALSE(*result);
  EXPECT_EQ(client.available(), 18u);  // the wait consumed nothing
  EXPECT_EQ(client.read_some(asio::buffer(buf)), 18u);
}

TEST_F(ready_read_test, wait_completes_on_end_of_stream) {
  std::optional<error_code> result;
  async_wait_readable(client, [&](error_code ec) { result = ec; });
  server.close();
  run_until([&] { return result.has_value(); });
  EXPECT_FALSE(*result);
  error_code ec;
  client.read_some(asio::buffer(buf), ec);
  EXPECT_EQ(ec, asio::error::eof);
}

TEST_F(ready_read_test, wait_sees_bytes_that_came_before_it_started) {
  // The bytes arrive (and epoll reports them) while nothing waits: the wait must not sleep.
  asio::write(server, asio::buffer("early", 5));
  for (int i = 0; i < 3; ++i) {
    io.restart();
    io.run_one_for(10ms);
  }
  std::optional<error_code> result;
  async_wait_readable(client, [&](error_code ec) { result = ec; });
  run_until([&] { return result.has_value(); });
  EXPECT_FALSE(*result);
  EXPECT_EQ(client.read_some(asio::buffer(buf)), 5u);
}

TEST_F(ready_read_test, after_a_read_that_was_not_drained_the_wait_looks_once_then_sleeps) {
  // Asio's own read leaves the reactor's "maybe readable" flag set (as a sniffing read does
  // before a session takes over): the wait must not complete until bytes come.
  std::optional<std::size_t> got;
  client.async_read_some(asio::buffer(buf), [&](error_code, std::size_t n) { got = n; });
  io.restart();
  io.poll();
  asio::write(server, asio::buffer("q", 1));
  run_until([&] { return got.has_value(); });
  const int rc = recv_calls.load();
  std::optional<error_code> result;
  async_wait_readable(client, [&](error_code ec) { result = ec; });
  for (int i = 0; i < 3; ++i) {
    io.restart();
    io.run_one_for(10ms);
  }
  EXPECT_FALSE(result) << "nothing was sent";
  EXPECT_EQ(recv_calls.load() - rc, 1) << "one look";
  asio::write(server, asio::buffer("r", 1));
  run_until([&] { return result.has_value(); });
  EXPECT_FALSE(*result);
  EXPECT_EQ(recv_calls.load() - rc, 1) << "the edge completes it without a call";
}

TEST_F(ready_read_test, a_full_buffer_read_does_not_mark_the_socket_drained) {
  // 8 bytes into a 4-byte buffer: the rest must be found by the next read without an edge.
  asio::write(server, asio::buffer("abcdefgh", 8));
  std::optional<std::size_t> first, second;
  run_until([&] { return client.available() == 8; });
  async_read_some_drained(client, asio::buffer(buf, 4),
                          [&](error_code ec, std::size_t n) { first = ec ? 0 : n; });
  run_until([&] { return first.has_value(); });
  EXPECT_EQ(*first, 4u);
  async_read_some_drained(client, asio::buffer(buf, 64),
                          [&](error_code ec, std::size_t n) { second = ec ? 0 : n; });
  run_until([&] { return second.has_value(); });
  EXPECT_EQ(*second, 4u);
}

TEST_F(ready_read_test, cancel_aborts_wait_and_read) {
  std::optional<error_code> wait_result, read_result;
  async_wait_readable(client, [&](error_code ec) { wait_result = ec; });
  io.restart();
  io.poll();
  client.cancel();
  run_until([&] { return wait_result.has_value(); });
  EXPECT_EQ(*wait_result, asio::error::operation_aborted);

  asio::cancellation_signal sig;
  async_read_some_drained(client, asio::buffer(buf),
                          asio::bind_cancellation_slot(
                              sig.slot(), [&](error_code ec, std::size_t) { read_result = ec; }));
  io.restart();
  io.poll();
  sig.emit(asio::cancellation_type::terminal);
  run_until([&] { return read_result.has_value(); });
  EXPECT_EQ(*read_result, asio::error::operation_aborted);
  // The socket still works afterwards.
  EXPECT_EQ(read_after_write("x"), 1u);
}

TEST_F(ready_read_test, a_keep_alive_round_costs_one_recv_and_no_epoll_ctl) {
#ifdef DEVSPACES_READY_READ_REACTOR
  // Control: Asio's own wait re-arms the descriptor, its own read tries before data is there.
  {
    const int ctl = epoll_ctl_calls.load();
    std::optional<error_code> result;
    client.async_wait(tcp::socket::wait_read, [&](error_code ec) { result = ec; });
    EXPECT_EQ(epoll_ctl_calls.load() - ctl, 1);
    asio::write(server, asio::buffer("a", 1));
    run_until([&] { return result.has_value(); });
    ASSERT_EQ(client.read_some(asio::buffer(buf)), 1u);
    const int rc = recv_calls.load();
    std::optional<std::size_t> got;
    client.async_read_some(asio::buffer(buf), [&](error_code, std::size_t n) { got = n; });
    asio::write(server, asio::buffer("b", 1));
    run_until([&] { return got.has_value(); });
    EXPECT_EQ(recv_calls.load() - rc, 2) << "a failing recv, then the one that reads";
  }
  EXPECT_EQ(read_after_write("c"), 1u);  // drained again
  for (int i = 0; i < 3; ++i) {
    const int ctl = epoll_ctl_calls.load();
    const int rc = recv_calls.load();
    std::optional<error_code> result;
    async_wait_readable(client, [&](error_code ec) { result = ec; });
    io.restart();
    io.poll();
    EXPECT_FALSE(result);
    asio::write(server, asio::buffer("request", 7));
    run_until([&] { return result.has_value(); });
    EXPECT_FALSE(*result);
    std::optional<std::size_t> got;
    async_read_some_drained(client, asio::buffer(buf), [&](error_code ec, std::size_t n) {
      EXPECT_FALSE(ec);
      got = n;
    });
    run_until([&] { return got.has_value(); });
    EXPECT_EQ(*got, 7u);
    EXPECT_EQ(epoll_ctl_calls.load() - ctl, 0) << "round " << i;
    EXPECT_EQ(recv_calls.load() - rc, 1) << "round " << i;
  }
#else
  GTEST_SKIP() << "not the epoll reactor";
#endif
}

}  // namespace
}  // namespace devspaces::proxy::io
