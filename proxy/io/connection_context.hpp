#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>

#include "proxy/metrics.hpp"

namespace devspaces::proxy {
struct config;
}
namespace devspaces::proxy::routing {
class router;
}
namespace devspaces::proxy::trace {
class hub;
}

namespace devspaces::proxy::io {

class upstream_pool;
class drain_signal;

/// Per-worker services a connection uses. Owned by the worker; outlives every connection on it.
struct worker_services {
  std::shared_ptr<const config> cfg;
  proxy_metrics* metrics = nullptr;
  routing::router* router = nullptr;            ///< null until routing is wired
  trace::hub* traces = nullptr;                 ///< null when tracing is off
  upstream_pool* pool = nullptr;                ///< idle upstream HTTP connections of this worker
  const std::atomic<bool>* draining = nullptr;  ///< set on SIGTERM (read at decision points)
  drain_signal* drain = nullptr;                ///< fired on SIGTERM (wakes idle connections)
  /// Raw relays switch a direction to splice(2) after this many bytes (see io::relay_options).
  std::size_t splice_after = 256 * 1024;
};

/// What the listener learned about one accepted connection, handed to the relay or HTTP session.
struct connection_context {
  std::uint64_t id = 0;  ///< logged as [C<id>]
  direction dir = direction::outbound;
  boost::asio::ip::tcp::endpoint client;
  boost::asio::ip::tcp::endpoint original_dst;
  std::string initial_bytes;       ///< bytes already read from the client while sniffing
  protocol proto = protocol::tcp;  ///< what the sniffer decided (http: a method token came first)
  worker_services* services = nullptr;
};

}  // namespace devspaces::proxy::io
