#include "proxy/io/readiness.hpp"

#include <sys/socket.h>

#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "tests/support/run_until.hpp"

namespace devspaces::proxy::io {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;
using test::run_until;

// Real loopback TCP: `ours` is the proxy's side, `peer` writes with plain system calls.
struct readiness_test : ::testing::Test {
  asio::io_context io{1};
  tcp::acceptor acc{io, {asio::ip::make_address("127.0.0.1"), 0}};
  tcp::socket ours{io};
  tcp::socket peer{io};

  void SetUp() override {
    if (!readiness_tracked()) GTEST_SKIP() << "readiness is not tracked with this reactor";
    peer.connect(acc.local_endpoint());
    ours = acc.accept();
    ours.non_blocking(true);
  }

  void peer_send(const std::string& s) {
    ASSERT_EQ(::send(peer.native_handle(), s.data(), s.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(s.size()));
  }

  // One read_some on `ours`, run as a coroutine; the result shows up in `done`.
  struct pending_read {
    std::optional<std::tuple<error_code, std::size_t>> done;
    char buf[64] = {};
    std::string text() const { return {buf, done ? std::get<1>(*done) : 0}; }
  };
  void start_read(pending_read& r, std::size_t size = 64) {
    asio::co_spawn(
        io,
        [&r, this, size]() -> asio::awaitable<void> {
          r.done = co_await read_some(ours, r.buf, size);
        },
        asio::detached);
  }
  // Reads once and waits (running the io_context) for the result.
  pending_read read_once(std::size_t size = 64) {
    pending_read r;
    start_read(r, size);
    EXPECT_TRUE(run_until(
        io, [&] { return r.done.has_value(); }, 3s));
    return r;
  }
  // Starts a read_some that must wait: it does not complete while nothing is sent, then gets
  // exactly `sent`.
  void expect_read_waits_for(const std::string& sent) {
    pending_read r;
    start_read(r);
    settle(80ms);
    EXPECT_FALSE(r.done.has_value()) << "a read completed with no bytes sent";
    peer_send(sent);
    ASSERT_TRUE(run_until(
        io, [&] { return r.done.has_value(); }, 3s));
    EXPECT_FALSE(std::get<0>(*r.done));
    EXPECT_EQ(r.text(), sent);
  }
  // Runs the io_context for a while, so that readiness events are taken in.
  void settle(std::chrono::milliseconds d = 30ms) {
    const auto end = std::chrono::steady_clock::now() + d;
    run_until(
        io, [&] { return std::chrono::steady_clock::now() >= end; }, d + 1s);
  }

  // Starts wait_readable on `ours`, its result into `woke`, and checks that it does not complete
  // while nothing arrives.
  void start_wait_readable(std::optional<error_code>& woke) {
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { woke = std::get<0>(co_await wait_readable(ours)); },
        asio::detached);
    settle(80ms);
    EXPECT_FALSE(woke.has_value()) << "woke with nothing to read";
  }
};

TEST_F(readiness_test, short_read_on_a_watched_socket_leaves_it_quiet_until_bytes_come) {
  watch_peer_close(ours);
  peer_send("abc");
  settle();
  auto first = read_once();
  EXPECT_FALSE(std::get<0>(*first.done));
  EXPECT_EQ(first.text(), "abc");
  EXPECT_EQ(idle_state_of(ours), idle_state::quiet);

  expect_read_waits_for("de");
}

TEST_F(readiness_test, read_now_reads_what_is_there_and_leaves_every_wait_to_read_some) {
  watch_peer_close(ours);
  peer_send("abc");
  settle();
  char buf[64] = {};
  auto got = io::read_now(ours, buf, sizeof buf);
  ASSERT_TRUE(got.has_value()) << "bytes were there and the socket had a readiness event";
  EXPECT_FALSE(std::get<0>(*got));
  ASSERT_EQ(std::get<1>(*got), 3u);
  EXPECT_EQ(std::string(buf, 3), "abc");

  // The short read drained the watched socket: until the next readiness event is taken in,
  // read_now trusts that and makes no receive, even with bytes in the queue.
  peer_send("de");
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(io::read_now(ours, buf, sizeof buf).has_value());
  std::optional<error_code> woke;  // the event comes through a wait, as in a session's idle wait
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto [ec] = co_await wait_readable(ours);
        woke = ec;
      },
      asio::detached);
  ASSERT_TRUE(run_until(
      io, [&] { return woke.has_value(); }, 3s));
  got = io::read_now(ours, buf, sizeof buf);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(std::string(buf, std::get<1>(*got)), "de");
}

TEST_F(readiness_test, read_now_on_an_empty_unwatched_socket_gives_nothing_and_read_some_waits) {
  peer_send("x");
  settle();
  char buf[1] = {};
  auto got = io::read_now(ours, buf, sizeof buf);  // a full read: not taken as drained
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(std::get<1>(*got), 1u);
  EXPECT_FALSE(io::read_now(ours, buf, sizeof buf).has_value()) << "EAGAIN is not a result";
  EXPECT_EQ(idle_state_of(ours), idle_state::unknown);

  expect_read_waits_for("yz");
}

TEST_F(readiness_test, bytes_and_close_that_arrive_together_give_the_bytes_then_eof) {
  watch_peer_close(ours);
  peer_send("last");
  peer.shutdown(tcp::socket::shutdown_send);
  std::this_thread::sleep_for(30ms);  // both in the receive queue before one event reports them
  settle();                           // and that event taken in before the read
  auto first = read_once();
  EXPECT_EQ(first.text(), "last");
  EXPECT_NE(idle_state_of(ours), idle_state::quiet);
  auto second = read_once();
  ASSERT_TRUE(second.done.has_value()) << "the read after the bytes hung on the pending close";
  EXPECT_EQ(std::get<0>(*second.done), asio::error::eof);
}

TEST_F(readiness_test, a_close_after_a_drained_read_ends_the_next_read) {
  watch_peer_close(ours);
  peer_send("x");
  auto first = read_once();
  EXPECT_EQ(first.text(), "x");
  pending_read second;
  start_read(second);
  settle();
  peer.shutdown(tcp::socket::shutdown_send);
  ASSERT_TRUE(run_until(
      io, [&] { return second.done.has_value(); }, 3s));
  EXPECT_EQ(std::get<0>(*second.done), asio::error::eof);
}

TEST_F(readiness_test, watching_after_bytes_and_close_arrived_still_sees_the_close) {
  peer_send("late");
  peer.shutdown(tcp::socket::shutdown_send);
  settle();
  watch_peer_close(ours);  // the close happened before it was watched
  EXPECT_EQ(read_once().text(), "late");
  auto second = read_once();
  ASSERT_TRUE(second.done.has_value());
  EXPECT_EQ(std::get<0>(*second.done), asio::error::eof);
}

TEST_F(readiness_test, bytes_that_come_while_no_read_is_pending_are_read) {
  watch_peer_close(ours);
  peer_send("one");
  EXPECT_EQ(read_once().text(), "one");
  ASSERT_EQ(idle_state_of(ours), idle_state::quiet);
  peer_send("two");
  settle();  // the event is taken in with no read pending
  EXPECT_EQ(idle_state_of(ours), idle_state::stirred);
  EXPECT_EQ(read_once().text(), "two");
}

TEST_F(readiness_test, a_full_read_does_not_claim_the_socket_drained) {
  watch_peer_close(ours);
  peer_send("0123456789");
  settle();
  auto first = read_once(4);
  EXPECT_EQ(first.text(), "0123");
  EXPECT_EQ(idle_state_of(ours), idle_state::stirred);
  EXPECT_EQ(read_once(64).text(), "456789");
}

TEST_F(readiness_test, an_unwatched_socket_is_never_taken_for_quiet) {
  peer_send("abc");
  EXPECT_EQ(read_once().text(), "abc");
  EXPECT_EQ(idle_state_of(ours), idle_state::unknown);
  pending_read second;  // still completes when bytes come (Asio's own path)
  start_read(second);
  settle();
  peer_send("d");
  ASSERT_TRUE(run_until(
      io, [&] { return second.done.has_value(); }, 3s));
  EXPECT_EQ(second.text(), "d");
}

TEST_F(readiness_test, cancel_ends_a_waiting_read_and_the_socket_reads_on_afterwards) {
  watch_peer_close(ours);
  peer_send("a");
  EXPECT_EQ(read_once().text(), "a");
  pending_read waiting;
  start_read(waiting);
  settle();
  ours.cancel();
  ASSERT_TRUE(run_until(
      io, [&] { return waiting.done.has_value(); }, 3s));
  EXPECT_EQ(std::get<0>(*waiting.done), asio::error::operation_aborted);
  peer_send("b");
  EXPECT_EQ(read_once().text(), "b");
}

TEST_F(readiness_test, a_cancelled_coroutine_removes_its_wait) {
  using namespace asio::experimental::awaitable_operators;
  watch_peer_close(ours);
  peer_send("a");
  EXPECT_EQ(read_once().text(), "a");
  bool timer_won = false;
  bool finished = false;
  char buf[8];
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer t(io, 50ms);
        auto r = co_await (read_some(ours, buf, sizeof buf) ||
                           t.async_wait(asio::as_tuple(asio::use_awaitable)));
        timer_won = r.index() == 1;
        finished = true;
      },
      asio::detached);
  ASSERT_TRUE(run_until(
      io, [&] { return finished; }, 3s));
  EXPECT_TRUE(timer_won);
  peer_send("b");
  EXPECT_EQ(read_once().text(), "b");
}

TEST_F(readiness_test, wait_readable_consumes_nothing_and_waits_for_bytes) {
  watch_peer_close(ours);
  peer_send("q");
  EXPECT_EQ(read_once().text(), "q");
  std::optional<error_code> woke;
  start_wait_readable(woke);
  peer_send("rs");
  ASSERT_TRUE(run_until(
      io, [&] { return woke.has_value(); }, 3s));
  EXPECT_FALSE(*woke);
  EXPECT_EQ(read_once().text(), "rs");
}

TEST_F(readiness_test, wait_readable_on_an_untrusted_socket_does_not_wake_for_nothing) {
  // No read has drained it yet: the reactor's state says "may be readable".
  std::optional<error_code> woke;
  start_wait_readable(woke);
  peer.shutdown(tcp::socket::shutdown_send);
  ASSERT_TRUE(run_until(
      io, [&] { return woke.has_value(); }, 3s));
  EXPECT_FALSE(*woke);
  auto r = read_once();
  EXPECT_EQ(std::get<0>(*r.done), asio::error::eof);
}

TEST_F(readiness_test, a_closed_socket_reports_bad_descriptor) {
  ours.close();
  auto r = read_once();
  EXPECT_EQ(std::get<0>(*r.done), asio::error::bad_descriptor);
  EXPECT_EQ(idle_state_of(ours), idle_state::stirred);
}

}  // namespace
}  // namespace devspaces::proxy::io
