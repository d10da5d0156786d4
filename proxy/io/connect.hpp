#pragma once

#include <chrono>
#include <optional>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include "proxy/metrics.hpp"

namespace devspaces::proxy::io {

struct connection_context;

/// Outcome of an upstream connect: a connected socket, or the error and its metric reason.
struct connect_result {
  std::optional<boost::asio::ip::tcp::socket> socket;  ///< engaged on success
  boost::system::error_code ec;                        ///< set on failure
  connect_failure reason = connect_failure::other;     ///< meaningful when !socket
  bool cancelled = false;  ///< the caller cancelled the connect (not a failure to count)
};

/// A deadline for the operations pending on one socket: when it passes, a timer callback cancels
/// them (they complete with operation_aborted and expired() turns true). Used instead of racing
/// the operation against a timer with `||`, whose parallel-group frames (~1 KiB) stay in Asio's
/// per-thread frame cache and are then taken by the next long-lived frame of a connection.
/// co_await finish() before the object goes away: the callback refers to it.
class socket_deadline {
 public:
  /// Arms the deadline for `socket`, which must outlive this object.
  socket_deadline(boost::asio::ip::tcp::socket& socket, std::chrono::steady_clock::time_point at);
  socket_deadline(const socket_deadline&) = delete;
  socket_deadline& operator=(const socket_deadline&) = delete;

  /// The deadline passed (and the socket's pending operations were cancelled).
  bool expired() const { return expired_; }

  /// Stops the timer and waits until its callback has run.
  boost::asio::awaitable<void> finish();

 private:
  boost::asio::ip::tcp::socket& socket_;
  boost::asio::steady_timer timer_;
  bool expired_ = false;
  bool pending_ = true;
};

/// Maps a connect error to its upstream_connect_failures_total reason.
connect_failure classify_connect_error(const boost::system::error_code& ec);

/// Connects to `endpoint` within `timeout` (refused / timeout / unreachable / other on failure).
/// With `source`, the socket is bound to that address first when it can be (else the kernel's
/// default source is used). Never throws; supports cancellation (result.cancelled).
boost::asio::awaitable<connect_result> connect_upstream(
    boost::asio::ip::tcp::endpoint endpoint, std::chrono::milliseconds timeout,
    std::optional<boost::asio::ip::address> source = std::nullopt);

/// The source address the proxy uses for a connection's upstream: for inbound connections to a
/// local destination, 127.0.0.6 (v4) or ::6 (v6), which the init never captures again.
std::optional<boost::asio::ip::address> passthrough_source(
    const connection_context& ctx, const boost::asio::ip::tcp::endpoint& to);

/// connect_upstream for a captured connection: uses the config's --connect-timeout and the
/// passthrough source, and counts failures in upstream_connect_failures_total{direction,reason}.
boost::asio::awaitable<connect_result> connect_for(const connection_context& ctx,
                                                   boost::asio::ip::tcp::endpoint endpoint);

}  // namespace devspaces::proxy::io
