#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proxy/config.hpp"
#include "proxy/metrics.hpp"

namespace devspaces::proxy::trace {
class hub;
}
namespace devspaces::proxy::routing {
class router;
}

namespace devspaces::proxy {

class worker;

/// Finds the original destination of an accepted socket. The product uses SO_ORIGINAL_DST;
/// in-process integration tests on plain loopback pass their own.
using original_dst_fn = std::function<std::optional<boost::asio::ip::tcp::endpoint>(
    boost::asio::ip::tcp::socket& accepted, std::error_code& ec)>;

/// What the server needs besides the config.
struct server_options {
  /// Empty: SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST (the product).
  original_dst_fn original_dst;
  /// Addresses of the outbound listener (REDIRECT in OUTPUT lands on loopback).
  std::vector<boost::asio::ip::address> outbound_addresses{
      boost::asio::ip::make_address("127.0.0.1"), boost::asio::ip::make_address("::1")};
  /// Addresses of the inbound listener (REDIRECT in PREROUTING lands on the pod's address).
  std::vector<boost::asio::ip::address> inbound_addresses{boost::asio::ip::make_address("0.0.0.0"),
                                                          boost::asio::ip::make_address("::")};
  /// Raw relays switch to splice(2) after this many bytes per direction (max: never).
  std::size_t splice_after = 256 * 1024;
  /// Makes the router of one worker on that worker's executor (null: no HTTP routing).
  std::function<std::unique_ptr<routing::router>(boost::asio::any_io_executor)> make_router;
  trace::hub* traces = nullptr;  ///< handed to connections (null when tracing is off)
};

/// Answers of one health probe: each worker loop calls answer() when it runs the probe.
struct worker_ping {
  std::atomic<unsigned> answered{0};
  unsigned expected = 0;
  bool complete() const { return answered.load() >= expected; }

  /// One worker answered; the last one runs the completion handler (on its thread).
  void answer() {
    if (answered.fetch_add(1) + 1 != expected) return;
    std::function<void()> f;
    {
      std::lock_guard lock(mutex_);
      f = std::move(done_);
    }
    if (f) f();
  }
  /// Runs `f` once every worker answered: at once when they have, else on the last one's
  /// thread. Lets a prober wait on a timer instead of polling.
  void on_complete(std::function<void()> f) {
    {
      std::lock_guard lock(mutex_);
      if (!complete()) {
        done_ = std::move(f);
        return;
      }
    }
    f();
  }

 private:
  std::mutex mutex_;
  std::function<void()> done_;
};

/// The proxy's data plane: --workers threads, each with its own io_context and SO_REUSEPORT
/// acceptors for the outbound listener (loopback v4/v6) and the inbound listener (all
/// addresses v4/v6). Every accepted connection stays on its worker.
class server {
 public:
  server(std::shared_ptr<const config> cfg, proxy_metrics& metrics, server_options options = {});
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Opens and binds every acceptor. Port 0 in the config means "any free port" (tests).
  /// Returns one line naming the listener and the problem (e.g. address in use) on failure.
  std::optional<std::string> bind();

  /// Starts the worker threads (after bind()).
  void start();

  /// The bound ports (after bind()).
  std::uint16_t outbound_port() const { return outbound_port_; }
  std::uint16_t inbound_port() const { return inbound_port_; }

  /// SIGTERM: marks the server draining and fires every worker's drain signal. Both listeners
  /// stay open (iptables still sends connections to them; a closed listener would refuse
  /// them): outbound connections are served as usual, inbound responses get
  /// `Connection: close` and idle inbound keep-alive connections close.
  void drain();
  /// True once drain() was called.
  bool draining() const { return draining_.load(); }
  /// Connections currently open (accepted and not yet closed).
  std::size_t active_connections() const { return active_.load(); }

  /// Inbound connections whose original destination has this port are refused like a loop
  /// (the admin server is never reached through the inbound listener). Defaults to the
  /// config's --admin-port; set it to the bound port when that was 0.
  void set_admin_port(std::uint16_t port) { admin_port_.store(port); }

  /// How wait_quiet() ended.
  enum class quiet_end { quiet, timeout, interrupted };
  /// Blocks until no connection has been open for `quiet`, `timeout` passed, or interrupt()
  /// was called. Sleeps on a condition variable woken when the last connection closes.
  quiet_end wait_quiet(std::chrono::milliseconds quiet, std::chrono::milliseconds timeout) const;
  /// Ends a wait_quiet() now (a second signal).
  void interrupt();

  /// Posts a probe to every worker loop; complete() / on_complete() tell when all answered.
  std::shared_ptr<worker_ping> ping();

  /// Stops every loop, closing all remaining connections, and joins the threads. Idempotent.
  void stop();

 private:
  friend class worker;
  void connection_opened(direction dir);
  void connection_closed(direction dir);

  std::shared_ptr<const config> cfg_;
  proxy_metrics& metrics_;
  server_options options_;
  std::vector<std::unique_ptr<worker>> workers_;
  std::size_t worker_count_ = 0;
  std::uint16_t outbound_port_ = 0;
  std::uint16_t inbound_port_ = 0;
  std::atomic<bool> draining_{false};
  std::atomic<std::size_t> active_{0};
  std::atomic<std::uint16_t> admin_port_{0};
  mutable std::mutex idle_mutex_;
  mutable std::condition_variable idle_cv_;
  std::chrono::steady_clock::time_point idle_since_ = std::chrono::steady_clock::now();
  bool interrupted_ = false;
  std::atomic<std::uint64_t> next_id_{0};
  bool started_ = false;
  bool stopped_ = false;
};

/// Waits until no connection is left or `timeout` passes; true when the server went idle in time.
bool wait_for_idle(const server& srv, std::chrono::milliseconds timeout);

}  // namespace devspaces::proxy
