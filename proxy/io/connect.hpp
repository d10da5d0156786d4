#pragma once

#include <chrono>
#include <optional>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
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

/// Maps a connect error to its upstream_connect_failures_total reason.
connect_failure classify_connect_error(const boost::system::error_code& ec);

/// Connects to `endpoint` within `timeout` (an io::deadline cancels the connect when it passes;
/// refused / timeout / unreachable / other on failure).
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
