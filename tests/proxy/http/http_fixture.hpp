#pragma once

// A loopback harness for the HTTP session: the proxy side runs run_http_session on its own
// io_context thread; the test drives a real client socket and a real upstream listener with
// blocking calls bounded by deadlines.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/config.hpp"
#include "proxy/http/session.hpp"
#include "proxy/io/connection_context.hpp"
#include "proxy/io/drain_signal.hpp"
#include "proxy/io/upstream_pool.hpp"
#include "proxy/metrics.hpp"
#include "proxy/routing/router.hpp"
#include "proxy/trace/hub.hpp"

namespace devspaces::test::http {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;

/// A file descriptor closed on destruction.
class fd_guard {
 public:
  fd_guard() = default;
  explicit fd_guard(int fd) : fd_(fd) {}
  fd_guard(fd_guard&& o) noexcept : fd_(o.release()) {}
  fd_guard& operator=(fd_guard&& o) noexcept {
    reset(o.release());
    return *this;
  }
  ~fd_guard() { reset(); }
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int f = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = f;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

inline bool wait_fd(int fd, short events, std::chrono::milliseconds timeout) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
}

/// Listening socket on 127.0.0.1:0.
inline fd_guard listen_loopback(std::uint16_t& port, int backlog = 64) {
  fd_guard s(::socket(AF_INET, SOCK_STREAM, 0));
  int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(s.get(), backlog);
  socklen_t len = sizeof a;
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return s;
}

inline fd_guard accept_within(int listener, std::chrono::milliseconds timeout = 5s) {
  if (!wait_fd(listener, POLLIN, timeout)) return fd_guard{};
  return fd_guard(::accept(listener, nullptr, nullptr));
}

inline fd_guard connect_loopback(std::uint16_t port) {
  fd_guard s(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return fd_guard{};
  int one = 1;
  ::setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

inline bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

/// Reads until `done(received)` holds, EOF, error or the deadline. Returns what was received.
inline std::string recv_until(int fd, const std::function<bool(const std::string&)>& done,
                              std::chrono::milliseconds timeout = 5s, bool* eof = nullptr) {
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (eof) *eof = false;
  while (!done(got)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !wait_fd(fd, POLLIN, left)) break;
    char buf[65536];
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (eof) *eof = true;
      break;
    }
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

/// Reads exactly `n` bytes (or less on EOF/deadline).
inline std::string recv_n(int fd, std::size_t n, std::chrono::milliseconds timeout = 5s) {
  return recv_until(
      fd, [n](const std::string& s) { return s.size() >= n; }, timeout);
}

/// Reads one head (through CRLFCRLF).
inline std::string recv_head(int fd, std::chrono::milliseconds timeout = 5s) {
  return recv_until(
      fd, [](const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; }, timeout);
}

/// Reads until the peer closes.
inline std::string recv_to_eof(int fd, std::chrono::milliseconds timeout = 5s,
                               bool* eof = nullptr) {
  return recv_until(
      fd, [](const std::string&) { return false; }, timeout, eof);
}

/// The proxy under test: a listener whose connections run the HTTP session towards
/// `original_dst`, with real metrics, pool and trace hub.
class proxy_harness {
 public:
  explicit proxy_harness(proxy::config cfg = {}, proxy::direction dir = proxy::direction::outbound)
      : cfg_(std::make_shared<proxy::config>(std::move(cfg))),
        pool_(ioc_.get_executor()),
        hub_(proxy::trace::make_hub_options(*cfg_), &metrics_),
        acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        dir_(dir) {
    services_.cfg = cfg_;
    services_.metrics = &metrics_;
    services_.pool = &pool_;
    services_.traces = &hub_;
    services_.draining = &draining_;
    services_.drain = &drain_;
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(ioc_, accept_loop(), [](std::exception_ptr) {});
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~proxy_harness() {
    asio::post(ioc_, [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      pool_.clear();
      ioc_.stop();
    });
    thread_.join();
  }

  std::uint16_t port() const { return port_; }
  void set_upstream(std::uint16_t port) { dst_.store(port); }
  void set_router(proxy::routing::router* r) { services_.router = r; }
  /// Starts draining as SIGTERM does: the flag, then the worker's drain signal on its thread.
  void set_draining(bool d) {
    draining_.store(d);
    if (d) asio::post(ioc_, [this] { drain_.fire(); });
  }
  proxy::proxy_metrics& metrics() { return metrics_; }
  proxy::trace::hub& hub() { return hub_; }
  asio::io_context& ioc() { return ioc_; }
  const proxy::config& cfg() const { return *cfg_; }
  std::size_t sessions_done() const { return done_.load(); }

  double requests(const char* method, proxy::code_class c) {
    return metrics_.http_requests(dir_, proxy::method_index(method), c).Value();
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
      ctx.client = s.remote_endpoint(ec);
      ctx.original_dst = tcp::endpoint(asio::ip::make_address("127.0.0.1"), dst_.load());
      ctx.services = &services_;
      asio::co_spawn(ioc_, proxy::http::run_http_session(std::move(s), std::move(ctx)),
                     [this](std::exception_ptr e) {
                       if (e) escaped_.store(true);
                       ++done_;
                     });
    }
  }

  asio::io_context ioc_;
  std::shared_ptr<proxy::config> cfg_;
  proxy::proxy_metrics metrics_;
  proxy::io::upstream_pool pool_;
  proxy::trace::hub hub_;
  std::atomic<bool> draining_{false};
  proxy::io::drain_signal drain_;
  proxy::io::worker_services services_;
  tcp::acceptor acceptor_;
  proxy::direction dir_;
  std::uint16_t port_ = 0;
  std::atomic<std::uint16_t> dst_{0};
  std::atomic<std::uint64_t> ids_{0};
  std::atomic<std::size_t> done_{0};
  std::thread thread_;

 public:
  std::atomic<bool> escaped_{false};  ///< an exception left a session (a bug)
};

}  // namespace devspaces::test::http
