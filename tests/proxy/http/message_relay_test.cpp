#include "proxy/http/message_relay.hpp"

// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <sys/socket.h>

#include <functional>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "tests/support/run_until.hpp"

namespace devspaces::proxy::http {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

using test::run_until;

// Two loopback connections: the test writes into `src_peer`, the relay reads `src` and writes
// `dst`, the test reads what arrives on `dst_peer`.
struct relay_env : ::testing::Test {
  asio::io_context io;
  tcp::acceptor acc{io, {asio::ip::make_address("127.0.0.1"), 0}};
  tcp::socket src_peer{io}, src{io}, dst{io}, dst_peer{io};
  io::deadline dl{io.get_executor(), [this] {
                    boost::system::error_code ec;
                    src.cancel(ec);
                    dst.cancel(ec);
                  }};

  void SetUp() override {
    src_peer.connect(acc.local_endpoint());
    src = acc.accept();
    dst.connect(acc.local_endpoint());
    dst_peer = acc.accept();
  }
  void TearDown() override {
    bool closed = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await dl.close();
          closed = true;
        },
        asio::detached);
    EXPECT_TRUE(run_until(io, [&] { return closed; }));
  }

  void send(const std::string& s) { asio::write(src_peer, asio::buffer(s)); }
  // Everything that reaches dst_peer until `n` bytes came or 5 s passed.
  std::string received(std::size_t n) {
    std::string out;
    char tmp[4096];
    const auto end = clock::now() + 5s;
    while (out.size() < n && clock::now() < end) {
      io.restart();
      io.poll();
      const auto got = ::recv(dst_peer.native_handle(), tmp, sizeof tmp, MSG_DONTWAIT);
      if (got > 0) out.append(tmp, static_cast<std::size_t>(got));
      if (got == 0) break;
      if (got < 0) io.run_one_for(5ms);
    }
    return out;
  }

  // Runs `step` on the relay to its end; nullopt when it did not end within 5 s.
  std::optional<relay_status> run(std::function<asio::awaitable<relay_status>()> step) {
    std::optional<relay_status> result;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { result = co_await step(); }, asio::detached);
    run_until(io, [&] { return result.has_value(); });
    return result;
  }
};

using message_relay_test = relay_env;

// An unedited head (a named object: the relay's steps keep a reference while they run).
const head_edit no_edit;

TEST_F(message_relay_test, request_head_is_edited_and_the_body_streams_as_it_arrives) {
  message_relay r(parser::kind::request, 1024, 4096, dl);
  const std::string head = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n";
  send(head + "01234");
  r.start();
  EXPECT_EQ(run([&] { return r.read_head(src, read_policy::wait_first); }), relay_status::ok);
  EXPECT_EQ(r.message().text(r.message().head().target), "/x");
  EXPECT_TRUE(r.whole_message_buffered());
  head_edit edit;
  add_header(edit, r.message(), "x-route", "s1");
  EXPECT_EQ(run([&] { return r.write_head(dst, edit); }), relay_status::ok);
  const std::string edited =
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nx-route: s1\r\n\r\n";
  EXPECT_EQ(received(edited.size() + 5), edited + "01234");
  std::optional<relay_status> body;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { body = co_await r.relay_body(src, dst, 5s, 1); },
      asio::detached);
  io.restart();
  io.poll();
  EXPECT_FALSE(body.has_value());  // waits for the rest
  send("56789");
  EXPECT_EQ(received(5), "56789");
  ASSERT_TRUE(run_until(io, [&] { return body.has_value(); }));
  EXPECT_EQ(*body, relay_status::ok);
  EXPECT_TRUE(r.message().message_done());
  EXPECT_FALSE(r.whole_message_buffered());
}

TEST_F(message_relay_test, responses_take_the_same_path_also_when_the_body_ends_at_close) {
  message_relay r(parser::kind::response, 1024, 4096, dl);
  send("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nServer: s\r\n\r\nabc");
  r.start();
  ASSERT_EQ(run([&] { return r.read_head(src, read_policy::speculative); }), relay_status::ok);
  EXPECT_EQ(r.message().head().status, 100);
  EXPECT_EQ(run([&] { return r.write_head(dst, no_edit, false); }), relay_status::ok);
  r.start();  // the final response follows the interim one in the same buffer
  ASSERT_EQ(run([&] { return r.read_head(src, read_policy::wait_first); }), relay_status::ok);
  EXPECT_EQ(r.message().head().status, 200);
  head_edit edit;
  force_connection_close(edit, r.message());
  EXPECT_EQ(run([&] { return r.write_head(dst, edit); }), relay_status::ok);
  send("defg");
  src_peer.shutdown(tcp::socket::shutdown_send);
  EXPECT_EQ(run([&] { return r.relay_body(src, dst, 5s, 1); }), relay_status::ok);
  const std::string expect =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nServer: s\r\nConnection: close\r\n\r\n"
      "abcdefg";
  EXPECT_EQ(received(expect.size()), expect);
}

TEST_F(message_relay_test, a_pipelined_next_message_stays_for_the_next_start) {
  message_relay r(parser::kind::request, 1024, 4096, dl);
  const std::string one = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string two = "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
  send(one + two);
  r.start();
  ASSERT_EQ(run([&] { return r.read_head(src, read_policy::speculative); }), relay_status::ok);
  ASSERT_TRUE(r.message().message_done());
  EXPECT_EQ(std::string(r.unparsed().data(), r.unparsed().size()), two);
  EXPECT_EQ(run([&] { return r.write_head(dst, no_edit); }), relay_status::ok);
  r.finish_message(true);
  EXPECT_TRUE(r.has_buffer());
  src_peer.close();  // the second head must come from the buffer, not the socket
  r.start();
  ASSERT_EQ(run([&] { return r.read_head(src, read_policy::speculative); }), relay_status::ok);
  EXPECT_EQ(r.message().text(r.message().head().target), "/2");
  EXPECT_EQ(run([&] { return r.write_head(dst, no_edit); }), relay_status::ok);
  EXPECT_EQ(received(one.size() + two.size()), one + two);
  r.finish_message(true);
  EXPECT_FALSE(r.has_buffer());  // nothing pending: an idle connection holds no buffer
}

TEST_F(message_relay_test, bad_and_oversized_heads_and_early_close_are_reported) {
  {
    message_relay r(parser::kind::request, 1024, 4096, dl);
    send("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
    r.start();
    EXPECT_EQ(run([&] { return r.read_head(src, read_policy::speculative); }),
              relay_status::bad_message);
    EXPECT_EQ(r.message().error(), parse_error::both_cl_te);
  }
  {
    message_relay r(parser::kind::request, 64, 64 + 16, dl);
    r.preload(std::string_view("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(100, 'x')));
    r.start();
    EXPECT_EQ(run([&] { return r.read_head(src, read_policy::speculative); }),
              relay_status::head_too_large);
  }
  {
    message_relay r(parser::kind::response, 1024, 4096, dl);
    src_peer.shutdown(tcp::socket::shutdown_send);
    r.start();
    EXPECT_EQ(run([&] { return r.read_head(src, read_policy::wait_first); }), relay_status::closed);
    EXPECT_EQ(r.buffered(), 0u);
  }
}

TEST_F(message_relay_test, the_deadline_ends_a_wait_and_stop_ends_a_body) {
  message_relay r(parser::kind::request, 1024, 4096, dl);
  r.start();
  dl.arm_after(50ms, 9);
  EXPECT_EQ(run([&] { return r.read_head(src, read_policy::wait_first); }),
            relay_status::timed_out);
  EXPECT_EQ(dl.fired_tag(), 9);
  dl.reset();
  send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n");
  EXPECT_EQ(run([&] { return r.read_head(src, read_policy::wait_first); }), relay_status::ok);
  std::optional<relay_status> body;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { body = co_await r.relay_body(src, dst, 60s, 1); },
      asio::detached);
  io.restart();
  io.poll();
  EXPECT_FALSE(body.has_value());
  r.stop();
  boost::system::error_code ec;
  src.cancel(ec);
  ASSERT_TRUE(run_until(io, [&] { return body.has_value(); }));
  EXPECT_EQ(*body, relay_status::stopped);
  EXPECT_FALSE(dl.expired());
}

TEST_F(message_relay_test, counts_bytes_read_and_written_through_its_hooks) {
  prometheus::Registry registry;
  auto& family = prometheus::BuildCounter().Name("relay_bytes").Register(registry);
  auto& read = family.Add({{"side", "read"}});
  auto& written = family.Add({{"side", "written"}});
  message_relay r(parser::kind::request, 1024, 4096, dl,
                  {&read, &written, nullptr, trace::message_side::request});
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n";
  send(head);
  r.start();
  ASSERT_EQ(run([&] { return r.read_head(src, read_policy::speculative); }), relay_status::ok);
  EXPECT_EQ(read.Value(), static_cast<double>(head.size()));
  ASSERT_EQ(run([&] { return r.write_head(dst, no_edit); }), relay_status::ok);
  send("abc");
  EXPECT_EQ(run([&] { return r.relay_body(src, dst, 5s, 1); }), relay_status::ok);
  EXPECT_EQ(received(head.size() + 3), head + "abc");
  EXPECT_EQ(read.Value(), static_cast<double>(head.size() + 3));
  EXPECT_EQ(written.Value(), static_cast<double>(head.size() + 3));
}

}  // namespace
}  // namespace devspaces::proxy::http
