#pragma once

#include <csignal>
// Helpers for the TCP integration tests: the proxy server in-process on 127.0.0.1 port 0 with
// an injected original destination, blocking client sockets, and small upstream servers.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "proxy/config.hpp"
#include "proxy/metrics.hpp"
#include "proxy/server.hpp"
#include "tests/support/test_support.hpp"

namespace devspaces::test {

namespace asio = boost::asio;
using asio::ip::tcp;

/// A blocking TCP socket for test code; closed on destruction.
class fd_socket {
 public:
  fd_socket() = default;
  explicit fd_socket(int fd) : fd_(fd) {}
  fd_socket(fd_socket&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  fd_socket& operator=(fd_socket&& o) noexcept {
    reset();
    fd_ = std::exchange(o.fd_, -1);
    return *this;
  }
  ~fd_socket() { reset(); }
  int fd() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  /// Closes with an RST (SO_LINGER 0).
  void reset_hard() {
    if (fd_ < 0) return;
    ::linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    reset();
  }
  void set_timeout(std::chrono::milliseconds t) {
    timeval tv{static_cast<time_t>(t.count() / 1000),
               static_cast<suseconds_t>((t.count() % 1000) * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  bool send_all(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  void shutdown_send() { ::shutdown(fd_, SHUT_WR); }

  /// What a read until EOF found: the bytes, and how the stream ended.
  struct read_result {
    std::string data;
    bool eof = false;  ///< orderly FIN
    int error = 0;     ///< errno (ECONNRESET for an RST, EAGAIN for the timeout)
  };
  /// Reads until EOF, an error, or `max` bytes.
  read_result read_until_eof(std::size_t max = 1 << 30) {
    read_result r;
    char buf[65536];
    while (r.data.size() < max) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        r.data.append(buf, static_cast<std::size_t>(n));
      } else if (n == 0) {
        r.eof = true;
        break;
      } else if (errno != EINTR) {
        r.error = errno;
        break;
      }
    }
    return r;
  }
  /// Reads exactly n bytes (fewer on EOF/error).
  std::string read_exact(std::size_t n) {
    std::string out;
    char buf[65536];
    while (out.size() < n) {
      ssize_t got = ::recv(fd_, buf, std::min(sizeof buf, n - out.size()), 0);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      out.append(buf, static_cast<std::size_t>(got));
    }
    return out;
  }

 private:
  int fd_ = -1;
};

inline sockaddr_in loopback_addr(std::uint16_t port, const char* ip = "127.0.0.1") {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

/// Connects to ip:port (blocking), with a 20 s I/O timeout so a broken test fails, not hangs.
inline fd_socket connect_to(std::uint16_t port, const char* ip = "127.0.0.1") {
  fd_socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto a = loopback_addr(port, ip);
  if (::connect(s.fd(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return fd_socket();
  s.set_timeout(std::chrono::seconds(20));
  return s;
}

/// A listening socket on 127.0.0.1:0 (no accept loop).
inline fd_socket listen_any(int backlog = 128, std::uint16_t* port = nullptr) {
  fd_socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  ::setsockopt(s.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  auto a = loopback_addr(0);
  ::bind(s.fd(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(s.fd(), backlog);
  socklen_t len = sizeof a;
  ::getsockname(s.fd(), reinterpret_cast<sockaddr*>(&a), &len);
  if (port) *port = ntohs(a.sin_port);
  return s;
}

/// A port on 127.0.0.1 with nothing listening (connects are refused).
inline std::uint16_t closed_port() {
  std::uint16_t port = 0;
  listen_any(1, &port);  // bound and closed at once
  return port;
}

/// An upstream server on 127.0.0.1:0 running `handler` on a thread per accepted connection.
class upstream_server {
 public:
  using handler = std::function<void(fd_socket&, const sockaddr_in& peer)>;
  explicit upstream_server(handler h) : handler_(std::move(h)) {
    listener_ = listen_any(128, &port_);
    thread_ = std::thread([this] { run(); });
  }
  ~upstream_server() {
    stop_ = true;
    ::shutdown(listener_.fd(), SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    for (auto& t : conns_)
      if (t.joinable()) t.join();
  }
  std::uint16_t port() const { return port_; }
  tcp::endpoint endpoint() const { return {asio::ip::make_address("127.0.0.1"), port_}; }
  int accepted() const { return accepted_.load(); }

 private:
  void run() {
    while (!stop_) {
      sockaddr_in peer{};
      socklen_t len = sizeof peer;
      int fd = ::accept4(listener_.fd(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stop_ || errno == EINVAL) return;
        continue;
      }
      ++accepted_;
      conns_.emplace_back([this, fd, peer] {
        fd_socket s(fd);
        s.set_timeout(std::chrono::seconds(20));
        handler_(s, peer);
      });
    }
  }
  handler handler_;
  fd_socket listener_;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::vector<std::thread> conns_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
};

/// The proxy server in-process, listening on 127.0.0.1 only, with the original destination of
/// every accepted connection taken from `target` (what SO_ORIGINAL_DST gives in production).
class proxy_under_test {
 public:
  explicit proxy_under_test(std::function<void(proxy::config&)> tweak = {},
                            std::size_t splice_after = 256 * 1024) {
    ::signal(SIGPIPE, SIG_IGN);  // as devspaces-proxy's main does: EPIPE, not a signal
    proxy::config cfg;
    cfg.outbound_port = 0;
    cfg.inbound_port = 0;
    cfg.workers = 2;
    if (tweak) tweak(cfg);
    cfg_ = std::make_shared<const proxy::config>(cfg);
    proxy::server_options opts;
    opts.outbound_addresses = {asio::ip::make_address("127.0.0.1")};
    opts.inbound_addresses = {asio::ip::make_address("127.0.0.1")};
    opts.splice_after = splice_after;
    opts.original_dst = [this](tcp::socket&, std::error_code& ec) -> std::optional<tcp::endpoint> {
      std::lock_guard lock(mutex_);
      if (!target_) ec = std::make_error_code(std::errc::no_such_file_or_directory);
      return target_;
    };
    server_ = std::make_unique<proxy::server>(cfg_, metrics_, std::move(opts));
    auto err = server_->bind();
    EXPECT_FALSE(err) << *err;
    server_->start();
  }
  ~proxy_under_test() { server_->stop(); }

  void set_target(std::optional<tcp::endpoint> t) {
    std::lock_guard lock(mutex_);
    target_ = std::move(t);
  }
  proxy::server& server() { return *server_; }
  proxy::proxy_metrics& metrics() { return metrics_; }
  std::uint16_t outbound_port() const { return server_->outbound_port(); }
  std::uint16_t inbound_port() const { return server_->inbound_port(); }

  double value(prometheus::Counter& c) { return c.Value(); }
  double bytes(proxy::direction d, proxy::flow f) { return metrics_.bytes(d, f).Value(); }
  /// Waits until no connection is open in the proxy.
  bool wait_idle(std::chrono::milliseconds t = std::chrono::seconds(10)) {
    return proxy::wait_for_idle(*server_, t);
  }

 private:
  std::mutex mutex_;
  std::optional<tcp::endpoint> target_;
  std::shared_ptr<const proxy::config> cfg_;
  proxy::proxy_metrics metrics_;
  std::unique_ptr<proxy::server> server_;
};

/// Streams data into `sha256sum` and returns the hex digest when finished.
class sha256_pipe {
 public:
  sha256_pipe() {
    char tmpl[] = "/tmp/devspaces-sha-XXXXXX";
    int fd = ::mkstemp(tmpl);
    ::close(fd);
    path_ = tmpl;
    pipe_ = ::popen(("sha256sum > " + path_).c_str(), "w");
  }
  ~sha256_pipe() {
    if (pipe_) ::pclose(pipe_);
    ::unlink(path_.c_str());
  }
  void update(const char* data, std::size_t n) { std::fwrite(data, 1, n, pipe_); }
  std::string finish() {
    ::pclose(pipe_);
    pipe_ = nullptr;
    std::FILE* f = std::fopen(path_.c_str(), "r");
    char hex[65] = {};
    if (f) {
      if (std::fread(hex, 1, 64, f) != 64) hex[0] = 0;
      std::fclose(f);
    }
    return hex;
  }

 private:
  std::string path_;
  std::FILE* pipe_ = nullptr;
};

/// Fills `buf` with pseudo-random bytes (xorshift64; fast enough for gigabytes).
inline void fill_random(std::vector<char>& buf, std::uint64_t& state) {
  for (std::size_t i = 0; i + 8 <= buf.size(); i += 8) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    std::memcpy(buf.data() + i, &state, 8);
  }
}

}  // namespace devspaces::test
