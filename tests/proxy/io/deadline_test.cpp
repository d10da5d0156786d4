#include "proxy/io/deadline.hpp"

// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <functional>

#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "tests/support/loopback_pair.hpp"
#include "tests/support/run_until.hpp"

namespace devspaces::proxy::io {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

using test::run_until;

// Closes the deadline (waits for its callback) so it can be destroyed.
void close(asio::io_context& io, deadline& d) {
  bool closed = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await d.close();
        closed = true;
      },
      asio::detached);
  ASSERT_TRUE(run_until(io, [&] { return closed; }));
}

TEST(deadline, expires_once_and_names_the_arm) {
  asio::io_context io;
  int fired = 0;
  deadline d(io.get_executor(), [&] { ++fired; });
  EXPECT_FALSE(d.expired());
  d.arm_after(20ms, 3);
  EXPECT_EQ(d.tag(), 3);
  ASSERT_TRUE(run_until(io, [&] { return d.expired(); }));
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(d.fired_tag(), 3);
  EXPECT_EQ(d.at(), clock::time_point::max());  // disarmed after firing
  close(io, d);
  EXPECT_EQ(fired, 1);
}

TEST(deadline, a_later_arm_postpones_and_an_earlier_one_advances) {
  asio::io_context io;
  deadline later(io.get_executor(), nullptr);
  deadline reference(io.get_executor(), nullptr);
  later.arm_after(30ms, 1);
  later.arm_after(60s, 2);  // moves the expiry out: the 30 ms wake-up only waits again
  reference.arm_after(200ms);
  ASSERT_TRUE(run_until(io, [&] { return reference.expired(); }));
  EXPECT_FALSE(later.expired());
  later.arm_after(10ms, 4);  // earlier than the timer's wait: takes effect at once
  ASSERT_TRUE(run_until(
      io, [&] { return later.expired(); }, 2s));
  EXPECT_EQ(later.fired_tag(), 4);
  close(io, later);
  close(io, reference);
}

TEST(deadline, disarm_keeps_it_from_expiring) {
  asio::io_context io;
  deadline d(io.get_executor(), nullptr);
  deadline reference(io.get_executor(), nullptr);
  d.arm_after(20ms);
  d.disarm();
  reference.arm_after(150ms);
  ASSERT_TRUE(run_until(io, [&] { return reference.expired(); }));
  EXPECT_FALSE(d.expired());
  close(io, d);
  close(io, reference);
}

TEST(deadline, expire_now_cancels_a_pending_read_and_reset_starts_over) {
  asio::io_context io;
  tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
  tcp::socket a(io);
  a.connect(acc.local_endpoint());
  tcp::socket b = acc.accept();
  deadline d(io.get_executor(), [&] {
    boost::system::error_code ec;
    b.cancel(ec);
  });
  d.arm_after(60s, 1);
  bool done = false;
  boost::system::error_code got;
  char byte = 0;
  b.async_read_some(asio::buffer(&byte, 1), [&](boost::system::error_code ec, std::size_t) {
    got = ec;
    done = true;
  });
  io.poll();
  EXPECT_FALSE(done);
  d.expire_now(7);
  ASSERT_TRUE(run_until(io, [&] { return done; }));
  EXPECT_EQ(got, asio::error::operation_aborted);
  EXPECT_TRUE(d.expired());
  EXPECT_EQ(d.fired_tag(), 7);
  d.reset();
  EXPECT_FALSE(d.expired());
  d.arm_after(10ms, 2);
  ASSERT_TRUE(run_until(io, [&] { return d.expired(); }));
  EXPECT_EQ(d.fired_tag(), 2);
  close(io, d);
}

TEST(deadline, nothing_expires_after_close) {
  asio::io_context io;
  int fired = 0;
  deadline d(io.get_executor(), [&] { ++fired; });
  d.arm_after(60s);
  close(io, d);
  EXPECT_EQ(fired, 0);
  d.arm_after(1ms);  // ignored once closed
  deadline reference(io.get_executor(), nullptr);
  reference.arm_after(100ms);
  ASSERT_TRUE(run_until(io, [&] { return reference.expired(); }));
  EXPECT_EQ(fired, 0);
  EXPECT_FALSE(d.expired());
  close(io, reference);
}

TEST(deadline, cancel_on_expire_ends_one_operation_and_a_disarmed_wait_is_left_alone) {
  // The single-operation use (connect, a sniff wait, an HTTP/2 write): arm, wait, disarm.
  asio::io_context io;
  test::loopback_pair pair(io);
  auto& b = pair.near;
  deadline d(io.get_executor(), cancel_on_expire(b));
  int done = 0;
  boost::system::error_code got;
  auto wait_once = [&] {
    b.async_wait(tcp::socket::wait_read, [&](boost::system::error_code ec) {
      got = ec;
      ++done;
      d.disarm();
    });
  };
  const auto start = clock::now();  // before the arm: the expiry is 30 ms after the arm
  d.arm_after(30ms);
  wait_once();
  ASSERT_TRUE(run_until(io, [&] { return done == 1; }));
  EXPECT_EQ(got, asio::error::operation_aborted);
  EXPECT_TRUE(d.expired());
  EXPECT_GE(clock::now() - start, 30ms);
  // Re-armed for a second wait that the peer ends first: the disarmed deadline never fires.
  d.reset();
  d.arm_after(80ms);
  wait_once();
  pair.far.write_some(asio::buffer("x", 1));
  ASSERT_TRUE(run_until(io, [&] { return done == 2; }));
  EXPECT_FALSE(got);
  deadline reference(io.get_executor(), nullptr);
  reference.arm_after(200ms);
  ASSERT_TRUE(run_until(io, [&] { return reference.expired(); }));
  EXPECT_FALSE(d.expired());
  close(io, d);
  close(io, reference);
}

}  // namespace
}  // namespace devspaces::proxy::io
