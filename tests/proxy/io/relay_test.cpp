#include "proxy/io/relay.hpp"

// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <optional>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/io/connect.hpp"
#include "tests/support/loopback_pair.hpp"
#include "tests/support/run_until.hpp"

namespace devspaces::proxy::io {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using test::loopback_pair;
using test::run_until;

/// Runs io::relay between the near ends of `client` and `upstream`.
struct relay_run {
  relay_run(asio::io_context& io, loopback_pair& client, loopback_pair& upstream,
            std::chrono::milliseconds idle) {
    relay_options o;
    o.idle_timeout = idle;
    asio::co_spawn(
        io,
        [&, o]() -> asio::awaitable<void> {
          result = co_await relay(std::move(client.near), std::move(upstream.near), o);
          ended = clock::now();
        },
        asio::detached);
  }
  std::optional<relay_result> result;
  clock::time_point ended;
};

TEST(relay, idle_timeout_fires_after_the_last_byte_either_way) {
  asio::io_context io;
  loopback_pair client(io);
  loopback_pair upstream(io);
  relay_run run(io, client, upstream, 150ms);
  // Bytes every 50 ms for 400 ms, alternating directions: each re-arms the idle deadline.
  char buf[16];
  clock::time_point last;
  for (int i = 0; i < 8; ++i) {
    auto& from = i % 2 == 0 ? client.far : upstream.far;
    auto& to = i % 2 == 0 ? upstream.far : client.far;
    from.write_some(asio::buffer("ab", 2));
    ASSERT_TRUE(run_until(io, [&] { return to.available() == 2; }));
    to.read_some(asio::buffer(buf));
    last = clock::now();  // the relay moved the bytes (and re-armed) before this
    if (i == 7) break;
    const auto until = clock::now() + 50ms;
    run_until(io, [&] { return clock::now() >= until; });
    ASSERT_FALSE(run.result) << "ended while bytes were flowing, at round " << i;
  }
  ASSERT_TRUE(run_until(io, [&] { return run.result.has_value(); }));
  EXPECT_EQ(run.result->end, relay_end::idle_timeout);
  EXPECT_GE(run.ended - last, 140ms);  // 150 ms after the relay moved the last byte
  EXPECT_LT(run.ended - last, 2s);
  EXPECT_EQ(run.result->rx, 8u);
  EXPECT_EQ(run.result->tx, 8u);
  // Both sides were closed.
  boost::system::error_code ec;
  client.far.read_some(asio::buffer(buf), ec);
  EXPECT_TRUE(ec);
  upstream.far.read_some(asio::buffer(buf), ec);
  EXPECT_TRUE(ec);
}

TEST(relay, both_sides_ending_stops_the_idle_deadline) {
  asio::io_context io;
  loopback_pair client(io);
  loopback_pair upstream(io);
  relay_run run(io, client, upstream, 60s);
  client.far.shutdown(tcp::socket::shutdown_send);
  upstream.far.shutdown(tcp::socket::shutdown_send);
  // Ends at once: the deadline is closed, not waited out.
  ASSERT_TRUE(run_until(
      io, [&] { return run.result.has_value(); }, 2s));
  EXPECT_EQ(run.result->end, relay_end::done);
}

TEST(connect_upstream, times_out_when_the_deadline_passes) {
  // A listener whose accept queue is full drops further SYNs: the connect hangs.
  asio::io_context io;
  tcp::acceptor full(io, {asio::ip::make_address("127.0.0.1"), 0});
  full.listen(0);
  std::vector<tcp::socket> fillers;
  for (int i = 0; i < 8; ++i) {
    auto& f = fillers.emplace_back(io);
    f.open(tcp::v4());
    f.non_blocking(true);
    // A plain non-blocking connect: Asio's synchronous one would wait for the dropped SYN.
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(full.local_endpoint().port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::connect(f.native_handle(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  std::optional<connect_result> got;
  const auto start = clock::now();
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        got = co_await connect_upstream(full.local_endpoint(), 200ms);
      },
      asio::detached);
  ASSERT_TRUE(run_until(io, [&] { return got.has_value(); }));
  const auto took = clock::now() - start;
  EXPECT_FALSE(got->socket);
  EXPECT_EQ(got->reason, connect_failure::timeout);
  EXPECT_EQ(got->ec, asio::error::timed_out);
  EXPECT_FALSE(got->cancelled);
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 3s);
}

TEST(connect_upstream, a_refused_connect_is_not_a_timeout) {
  asio::io_context io;
  tcp::endpoint gone;
  {
    tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    gone = a.local_endpoint();
  }
  std::optional<connect_result> got;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { got = co_await connect_upstream(gone, 5s); },
      asio::detached);
  ASSERT_TRUE(run_until(io, [&] { return got.has_value(); }));
  EXPECT_FALSE(got->socket);
  EXPECT_EQ(got->reason, connect_failure::refused);
}

}  // namespace
}  // namespace devspaces::proxy::io
