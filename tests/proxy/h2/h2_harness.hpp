#pragma once

// The proxy's HTTP/2 side on its own io_context thread, accepting on 127.0.0.1:0 and running
// run_h2_session for each connection (original destination set by the test), with real
// metrics and trace hub; the test drives nghttp2 peers (h2_peer.hpp) on both sides.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/config.hpp"
#include "proxy/h2/session.hpp"
#include "proxy/io/connection_context.hpp"
#include "proxy/io/drain_signal.hpp"
#include "proxy/metrics.hpp"
#include "proxy/routing/router.hpp"
#include "proxy/sniff.hpp"
#include "proxy/trace/hub.hpp"
#include "tests/proxy/h2/h2_peer.hpp"
#include "tests/proxy/http/http_fixture.hpp"

namespace devspaces::test::h2 {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;
using devspaces::test::http::fd_guard;

class harness {
 public:
  explicit harness(proxy::config cfg = {}, proxy::direction dir = proxy::direction::outbound)
      : cfg_(std::make_shared<proxy::config>(std::move(cfg))),
        hub_(proxy::trace::make_hub_options(*cfg_), &metrics_),
        acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        dir_(dir) {
    services_.cfg = cfg_;
    services_.metrics = &metrics_;
    services_.traces = &hub_;
    services_.draining = &draining_;
    services_.drain = &drain_;
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(ioc_, accept_loop(), [](std::exception_ptr) {});
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~harness() {
    asio::post(ioc_, [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      ioc_.stop();
    });
    thread_.join();
  }

  std::uint16_t port() const { return port_; }
  void set_upstream(const std::string& addr, std::uint16_t port) {
    upstream_addr_ = addr;
    dst_.store(port);
  }
  void set_router(proxy::routing::router* r) { services_.router = r; }
  /// Starts the drain the way a worker does: only the drain signal fires (on the proxy's
  /// thread); the flag stays untouched, so a session that polled it would never notice.
  void start_drain() {
    asio::post(ioc_, [this] { drain_.fire(); });
  }
  proxy::proxy_metrics& metrics() { return metrics_; }
  proxy::trace::hub& hub() { return hub_; }
  asio::io_context& ioc() { return ioc_; }
  std::size_t sessions_done() const { return done_.load(); }
  /// Client connections accepted so far.
  std::uint64_t accepted() const { return ids_.load(); }

  /// A client socket connected to the proxy with the preface already sent (as the sniffer
  /// would have read it).
  int connect_client() {
    auto fd = devspaces::test::http::connect_loopback(port_);
    return fd.release();
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      boost::system::error_code ec;
      auto s = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      proxy::io::connection_context ctx;
      ctx.id = ++ids_;
      ctx.dir = dir_;
      ctx.proto = proxy::protocol::h2;
      ctx.client = s.remote_endpoint(ec);
      ctx.original_dst = tcp::endpoint(asio::ip::make_address(upstream_addr_), dst_.load());
      ctx.services = &services_;
      asio::co_spawn(ioc_, proxy::h2::run_h2_session(std::move(s), std::move(ctx)),
                     [this](std::exception_ptr e) {
                       if (e) escaped_.store(true);
                       ++done_;
                     });
    }
  }

  asio::io_context ioc_;
  std::shared_ptr<proxy::config> cfg_;
  proxy::proxy_metrics metrics_;
  proxy::trace::hub hub_;
  std::atomic<bool> draining_{false};
  proxy::io::drain_signal drain_;
  proxy::io::worker_services services_;
  tcp::acceptor acceptor_;
  proxy::direction dir_;
  std::uint16_t port_ = 0;
  std::string upstream_addr_ = "127.0.0.1";
  std::atomic<std::uint16_t> dst_{0};
  std::atomic<std::uint64_t> ids_{0};
  std::atomic<std::size_t> done_{0};
  std::thread thread_;

 public:
  std::atomic<bool> escaped_{false};
};

/// Pumps every peer until `cond` holds or `timeout` passes (accepting the upstream connection
/// into `up` when it arrives on `listener`).
inline bool pump_until(const std::function<bool()>& cond, std::vector<peer*> peers,
                       std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    for (auto* p : peers) {
      if (p != nullptr) p->pump(std::chrono::milliseconds(2));
    }
  }
  return true;
}

}  // namespace devspaces::test::h2
