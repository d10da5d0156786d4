#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proxy/metrics.hpp"

namespace devspaces::proxy::trace {
class hub;
}

namespace devspaces::proxy {
struct worker_ping;
}

namespace devspaces::proxy::admin {

/// What the admin endpoints ask the rest of the proxy.
struct admin_hooks {
  /// /readyz: listeners bound, space tree loaded and not draining.
  std::function<bool()> ready;
  /// /healthz: posts a probe to every worker loop (answered within 1 s → 200).
  std::function<std::shared_ptr<worker_ping>()> ping;
  /// /config: the effective configuration and space tree as one JSON document.
  std::function<std::string()> config_json;
  /// /traces: the trace hub (null when tracing is not wired).
  trace::hub* traces = nullptr;
};

/// The proxy's own HTTP server (Boost.Beast) on --admin-address, on its own thread so that it
/// can tell whether the worker loops still answer: /metrics, /healthz, /readyz, /config,
/// /traces; 404 otherwise.
class admin_server {
 public:
  admin_server(proxy_metrics& metrics, admin_hooks hooks);
  ~admin_server();
  admin_server(const admin_server&) = delete;
  admin_server& operator=(const admin_server&) = delete;

  /// Binds host:port (port 0: any); one line naming the address and the problem on failure.
  std::optional<std::string> bind(const std::string& host, std::uint16_t port);
  /// The bound port.
  std::uint16_t port() const { return port_; }
  /// Starts serving on the admin thread.
  void start();
  /// Stops serving and joins the thread. Idempotent.
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  std::uint16_t port_ = 0;
};

}  // namespace devspaces::proxy::admin
