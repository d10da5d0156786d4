#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

namespace devspaces::proxy::io {

/// A re-armable deadline for one connection's operations: when the armed time passes (or
/// expire_now() is called) it runs its `on_expire` action once (usually: cancel the pending
/// operations of the connection's sockets) and reads as expired() until reset().
///
/// One timer serves the whole life of a connection: arming a later time than the one the timer
/// waits for changes a number only (the timer callback sees the new time and waits again), so a
/// busy connection re-arms per read without touching the timer queue. The callback is a plain
/// function, not a coroutine: an idle connection holds one pending timer operation.
///
/// Every arm carries a small `tag` (what was being waited for); fired_tag() tells which one
/// expired, so the owner can answer "request head timeout" or "no response from upstream"
/// without a separate state machine. Call close() (and co_await it) before destruction.
///
/// It is the one deadline type of the proxy: the HTTP/1 session's timeouts, the upstream
/// connect, the sniff window's waits, the HTTP/2 write pump and idle close, the TCP relay's idle
/// timeout.
/// For a single operation: arm, co_await the operation (the expiry cancels it, see
/// cancel_on_expire), then close() and ask expired(). No operation is raced against a timer
/// with `||`: the parallel-group frames (~1 KiB) stay in Asio's per-thread frame cache and are
/// then taken by the next long-lived frame of a connection.
class deadline {
 public:
  using clock = std::chrono::steady_clock;

  deadline(const boost::asio::any_io_executor& ex, std::function<void()> on_expire);
  deadline(const deadline&) = delete;
  deadline& operator=(const deadline&) = delete;

  /// Expires at `at` (replacing any earlier arm). clock::time_point::max() disarms.
  void arm(clock::time_point at, std::uint8_t tag = 0);
  /// Expires `after` from now.
  void arm_after(clock::duration after, std::uint8_t tag = 0) { arm(clock::now() + after, tag); }
  /// Nothing expires until the next arm().
  void disarm() { at_ = clock::time_point::max(); }
  /// Expires at once (runs on_expire now) with `tag`; used as a stop signal.
  void expire_now(std::uint8_t tag = 0);

  /// The deadline passed (or expire_now() ran) since the last reset().
  bool expired() const { return expired_; }
  /// The tag of the arm that expired (meaningful when expired()).
  std::uint8_t fired_tag() const { return fired_tag_; }
  /// The tag of the current arm.
  std::uint8_t tag() const { return tag_; }
  /// The armed time (max when disarmed).
  clock::time_point at() const { return at_; }
  /// Forgets an expiry (the next exchange of a connection starts clean); keeps the arm.
  void reset() { expired_ = false; }

  /// Stops the timer for good and waits until its callback has run (it refers to this object).
  boost::asio::awaitable<void> close();

 private:
  void wait();
  void on_timer();
  void fire(std::uint8_t tag);

  boost::asio::steady_timer timer_;
  std::function<void()> on_expire_;
  clock::time_point at_ = clock::time_point::max();
  std::uint8_t tag_ = 0;
  std::uint8_t fired_tag_ = 0;
  bool expired_ = false;
  bool pending_ = false;  // a timer callback is outstanding
  bool closed_ = false;
};

/// An on_expire action cancelling the pending operations of `s` (which must outlive the
/// deadline): they complete with operation_aborted, and the deadline reads expired().
template <class Socket>
std::function<void()> cancel_on_expire(Socket& s) {
  return [&s] {
    boost::system::error_code ignored;
    s.cancel(ignored);
  };
}

}  // namespace devspaces::proxy::io
