#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proxy/metrics.hpp"

namespace devspaces::proxy::io {

/// How a relay ended.
enum class relay_end {
  done,            ///< both directions reached EOF
  idle_timeout,    ///< no bytes either way for the idle timeout
  client_reset,    ///< the client reset or vanished; the upstream was reset too
  upstream_reset,  ///< the upstream reset or vanished; the client was reset too
  client_error,    ///< another socket error on the client side; both closed
  upstream_error,  ///< another socket error on the upstream side; both closed
};

/// Short name of a relay_end for logs ("done", "idle_timeout", ...).
const char* to_string(relay_end e);

/// Parameters of one relay.
struct relay_options {
  std::chrono::milliseconds idle_timeout{std::chrono::hours(1)};  ///< no bytes either way
  proxy_metrics* metrics = nullptr;  ///< bytes_total{direction,flow} when set
  direction dir = direction::outbound;
  std::uint64_t id = 0;  ///< connection id, for logs
  /// Bytes already read from the client (sniffing, a parsed head): sent upstream first. Not
  /// added to bytes_total{flow="rx"} again: whoever read them counted them.
  std::string initial_client_bytes;
  /// Bytes already read from the upstream: sent to the client first.
  std::string initial_upstream_bytes;
  /// A direction switches from read/write to splice(2) after this many bytes
  /// (0: splice from the start; max: never splice).
  std::size_t splice_after = 256 * 1024;
};

/// Byte counts and outcome of a finished relay.
struct relay_result {
  std::uint64_t rx = 0;  ///< bytes from the client to the upstream (including initial bytes)
  std::uint64_t tx = 0;  ///< bytes from the upstream to the client (including initial bytes)
  relay_end end = relay_end::done;
};

/// Relays bytes both ways until both sides sent EOF, an error, or the idle timeout. EOF from one
/// side becomes shutdown(send) on the other; a reset on one side becomes an RST on the other; a
/// buffer is held only while bytes flow. Closes both sockets before returning. Never throws.
/// splice(2) cannot pass MSG_NOSIGNAL: the process must ignore SIGPIPE (main does), or a peer
/// that resets during a splice kills it.
boost::asio::awaitable<relay_result> relay(boost::asio::ip::tcp::socket client,
                                           boost::asio::ip::tcp::socket upstream,
                                           relay_options options);

}  // namespace devspaces::proxy::io
