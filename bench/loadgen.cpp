// Open-loop HTTP/1.1 load generator (wrk2 style) with a closed-loop saturation mode, a
// connection-close mode, an idle-connection holder and a bulk TCP sender/receiver.
//
// In rate mode every connection owns a fixed schedule (total rate R spread evenly over N
// connections); latency is measured from the time a request was *meant* to be sent, so a stalled
// server shows up as latency instead of silently lowering the offered load.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <queue>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench/histogram.hpp"

namespace devspaces::bench {
namespace {

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) {
  g_stop = 1;
}

enum class mode { rate, saturate, hold, bulk_send, bulk_recv };

struct options {
  std::string address = "127.0.0.1";
  int port = 8080;
  mode run_mode = mode::saturate;
  int connections = 16;
  double rate = 0;  // requests per second, total
  double duration_s = 10;
  double warmup_s = 0;
  std::uint64_t max_requests = 0;  // 0 = unlimited
  bool close_mode = false;
  std::string path = "/1k";
  std::string host_header = "origin";
  std::vector<std::string> headers;
  bool json = false;
  std::string label;
};

void usage() {
  std::fputs(
      "usage: devspaces-loadgen [options]\n"
      "  --address A         target IPv4 address (127.0.0.1)\n"
      "  --port P            target port (8080)\n"
      "  --connections N     concurrent connections (16)\n"
      "  --rate R            open loop at R requests/s in total (0 = saturation, closed loop)\n"
      "  --duration S        seconds of measured load (10)\n"
      "  --warmup S          seconds of unrecorded load before measuring (0)\n"
      "  --requests N        stop after N responses (0 = no limit)\n"
      "  --close             one request per connection (Connection: close)\n"
      "  --path P            request path (/1k; the origin serves /0, /1k, /16k)\n"
      "  --host H            Host header (origin)\n"
      "  --header 'K: V'     extra request header (repeatable)\n"
      "  --hold N            open N keep-alive connections, one request each, then stay idle\n"
      "                      for --duration seconds (or until SIGTERM); prints 'ready N'\n"
      "  --bulk-send         stream bytes to a TCP sink for --duration seconds\n"
      "  --bulk-recv         read bytes from a TCP source for --duration seconds\n"
      "  --json              print one JSON object instead of a summary line\n"
      "  --label L           label copied into the output\n",
      stderr);
}

bool parse_number(std::string_view s, double& out) {
  char* end = nullptr;
  std::string copy(s);
  out = std::strtod(copy.c_str(), &end);
  return end != copy.c_str() && *end == '\0';
}

bool parse_options(int argc, char** argv, options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](double& out) {
      if (i + 1 >= argc || !parse_number(argv[i + 1], out)) return false;
      ++i;
      return true;
    };
    auto text = [&](std::string& out) {
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    double d = 0;
    if (a == "--address") {
      if (!text(o.address)) return false;
    } else if (a == "--port") {
      if (!value(d)) return false;
      o.port = static_cast<int>(d);
    } else if (a == "--connections" || a == "-c") {
      if (!value(d)) return false;
      o.connections = static_cast<int>(d);
    } else if (a == "--rate" || a == "-R") {
      if (!value(o.rate)) return false;
      o.run_mode = o.rate > 0 ? mode::rate : mode::saturate;
    } else if (a == "--duration" || a == "-d") {
      if (!value(o.duration_s)) return false;
    } else if (a == "--warmup") {
      if (!value(o.warmup_s)) return false;
    } else if (a == "--requests") {
      if (!value(d)) return false;
      o.max_requests = static_cast<std::uint64_t>(d);
    } else if (a == "--close") {
      o.close_mode = true;
    } else if (a == "--path") {
      if (!text(o.path)) return false;
    } else if (a == "--host") {
      if (!text(o.host_header)) return false;
    } else if (a == "--header" || a == "-H") {
      std::string h;
      if (!text(h)) return false;
      o.headers.push_back(h);
    } else if (a == "--hold") {
      if (!value(d)) return false;
      o.connections = static_cast<int>(d);
      o.run_mode = mode::hold;
    } else if (a == "--bulk-send") {
      o.run_mode = mode::bulk_send;
    } else if (a == "--bulk-recv") {
      o.run_mode = mode::bulk_recv;
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--label") {
      if (!text(o.label)) return false;
    } else {
      std::fprintf(stderr, "loadgen: unknown option %s\n", argv[i]);
      return false;
    }
  }
  if (o.connections < 1) return false;
  return true;
}

bool iequals_prefix(std::string_view line, std::string_view name) {
  if (line.size() < name.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
  }
  return true;
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r'))
    v.remove_suffix(1);
  return v;
}

/// One client connection (or, in close mode, one request slot that reconnects per request).
struct conn {
  int fd = -1;
  bool connecting = false;
  bool in_flight = false;
  std::int64_t intended_ns = 0;  // when the in-flight request was scheduled to go out
  std::int64_t period_ns = 0;
  std::size_t written = 0;
  std::string head;  // response head being accumulated
  std::uint64_t body_left = 0;
  bool in_body = false;
  bool close_delimited = false;
  int status = 0;
  std::uint64_t done = 0;  // responses completed on this slot
  std::uint64_t gen = 0;   // bumped whenever the socket is closed
};

struct stats {
  histogram latency;
  std::uint64_t completed = 0;      // recorded (after warmup)
  std::uint64_t completed_all = 0;  // including warmup
  std::uint64_t errors = 0;
  std::uint64_t non_2xx = 0;
  std::uint64_t bytes = 0;
};

class runner {
 public:
  explicit runner(const options& o) : o_(o) {
    request_ = "GET " + o.path + " HTTP/1.1\r\nHost: " + o.host_header + "\r\n";
    for (const auto& h : o.headers) request_ += h + "\r\n";
    if (o.close_mode) request_ += "Connection: close\r\n";
    request_ += "\r\n";
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(static_cast<std::uint16_t>(o.port));
    inet_pton(AF_INET, o.address.c_str(), &addr_.sin_addr);
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    conns_.resize(static_cast<std::size_t>(o.connections));
  }
  ~runner() {
    for (auto& c : conns_) {
      if (c.fd >= 0) close(c.fd);
    }
    close(epfd_);
  }
  runner(const runner&) = delete;
  runner& operator=(const runner&) = delete;

  /// Runs rate, saturation or hold mode; returns the process exit code.
  int run_http() {
    const bool hold = o_.run_mode == mode::hold;
    const bool open_loop = o_.run_mode == mode::rate;
    const std::int64_t period =
        open_loop ? static_cast<std::int64_t>(1e9 * o_.connections / o_.rate) : 0;
    // Keep-alive connections are established before the clock starts. Hold mode connects each
    // one right before its request instead: a proxy may treat a connection that stays silent
    // after connecting as server-first TCP.
    if (!o_.close_mode && !hold) {
      for (std::size_t i = 0; i < conns_.size(); ++i) {
        if (!open_blocking(conns_[i], i)) {
          std::fprintf(stderr, "loadgen: connect to %s:%d failed: %s\n", o_.address.c_str(),
                       o_.port, std::strerror(errno));
          return 1;
        }
      }
    }
    start_ns_ = now_ns();
    measure_from_ns_ = start_ns_ + static_cast<std::int64_t>(o_.warmup_s * 1e9);
    end_ns_ = measure_from_ns_ + static_cast<std::int64_t>(o_.duration_s * 1e9);
    // Hold: --duration bounds the ramp too; connections still unanswered then are reported.
    if (hold) end_ns_ = start_ns_ + static_cast<std::int64_t>(o_.duration_s * 1e9);
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      auto& c = conns_[i];
      c.period_ns = period;
      if (open_loop) {
        timers_.emplace(start_ns_ + period * static_cast<std::int64_t>(i) / o_.connections, i);
      } else if (hold) {
        // Ramp up: a bounded number of requests in flight so backlogs never overflow.
        timers_.emplace(start_ns_, i);
      } else {
        timers_.emplace(start_ns_, i);
      }
    }

    std::vector<epoll_event> events(1024);
    bool draining = false;
    std::int64_t drain_deadline = 0;
    bool held = false;
    while (g_stop == 0) {
      std::int64_t now = now_ns();
      if (hold && !held && now >= end_ns_) {
        std::printf("not-ready %llu of %zu answered, errors %llu\n",
                    static_cast<unsigned long long>(stats_.completed_all), conns_.size(),
                    static_cast<unsigned long long>(stats_.errors));
        std::fflush(stdout);
        return 1;
      }
      if (!draining && (now >= end_ns_ || limit_reached())) {
        draining = true;
        drain_deadline = now + 1'000'000'000;
        std::priority_queue<timer, std::vector<timer>, std::greater<>> empty;
        timers_.swap(empty);
      }
      if (draining && (now >= drain_deadline || in_flight_ == 0)) break;
      while (!timers_.empty() && timers_.top().first <= now && !draining) {
        auto [due, idx] = timers_.top();
        timers_.pop();
        if (hold && in_flight_ >= 256) {
          timers_.emplace(now + 200'000, idx);
          break;
        }
        start_request(idx, open_loop ? due : now);
      }
      if (hold && !held && stats_.completed_all == conns_.size()) {
        held = true;
        {
          std::printf("ready %zu errors %llu\n", conns_.size(),
                      static_cast<unsigned long long>(stats_.errors));
          std::fflush(stdout);
          end_ns_ = now_ns() + static_cast<std::int64_t>(o_.duration_s * 1e9);
        }
      }
      std::int64_t wake = draining ? drain_deadline : end_ns_;
      if (!timers_.empty()) wake = std::min(wake, timers_.top().first);
      std::int64_t wait = std::max<std::int64_t>(0, wake - now_ns());
      timespec ts{static_cast<time_t>(wait / 1'000'000'000),
                  static_cast<long>(wait % 1'000'000'000)};
      int n = epoll_pwait2(epfd_, events.data(), static_cast<int>(events.size()), &ts, nullptr);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::perror("epoll_pwait2");
        return 1;
      }
      for (int k = 0; k < n; ++k) handle(events[static_cast<std::size_t>(k)]);
    }
    return 0;
  }

  /// Streams bytes to (or from) the target for the configured duration.
  int run_bulk() {
    const bool send_side = o_.run_mode == mode::bulk_send;
    // Zero bytes: no HTTP client would send them, so every proxy relays them raw.
    std::vector<char> buf(256 * 1024, '\0');
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      if (!open_blocking(conns_[i], i)) {
        std::fprintf(stderr, "loadgen: connect failed: %s\n", std::strerror(errno));
        return 1;
      }
      epoll_event ev{};
      ev.events = send_side ? EPOLLOUT : EPOLLIN;
      ev.data.u64 = i;
      epoll_ctl(epfd_, EPOLL_CTL_MOD, conns_[i].fd, &ev);
    }
    start_ns_ = now_ns();
    end_ns_ = start_ns_ + static_cast<std::int64_t>(o_.duration_s * 1e9);
    std::vector<epoll_event> events(64);
    while (g_stop == 0 && now_ns() < end_ns_) {
      int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), 50);
      for (int k = 0; k < n; ++k) {
        auto& c = conns_[events[static_cast<std::size_t>(k)].data.u64];
        ssize_t r = send_side ? send(c.fd, buf.data(), buf.size(), MSG_NOSIGNAL)
                              : recv(c.fd, buf.data(), buf.size(), 0);
        if (r > 0) {
          stats_.bytes += static_cast<std::uint64_t>(r);
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          ++stats_.errors;
          epoll_ctl(epfd_, EPOLL_CTL_DEL, c.fd, nullptr);
        }
      }
    }
    if (send_side) {
      // Wait until the sink has read everything: it closes after our FIN.
      for (auto& c : conns_) {
        shutdown(c.fd, SHUT_WR);
        int fl = fcntl(c.fd, F_GETFL);
        fcntl(c.fd, F_SETFL, fl & ~O_NONBLOCK);
        timeval tv{5, 0};
        setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        while (recv(c.fd, buf.data(), buf.size(), 0) > 0) {
        }
      }
    }
    end_ns_ = now_ns();
    return 0;
  }

  /// Prints the result in the chosen format.
  void report() const {
    const bool bulk = o_.run_mode == mode::bulk_send || o_.run_mode == mode::bulk_recv;
    const double window_s =
        bulk ? static_cast<double>(end_ns_ - start_ns_) / 1e9 : std::max(1e-9, measured_window_s());
    const auto us = [&](double p) {
      return static_cast<double>(stats_.latency.percentile(p)) / 1e3;
    };
    const char* mode_name = o_.run_mode == mode::rate        ? "rate"
                            : o_.run_mode == mode::saturate  ? "saturate"
                            : o_.run_mode == mode::hold      ? "hold"
                            : o_.run_mode == mode::bulk_send ? "bulk-send"
                                                             : "bulk-recv";
    const double rps = static_cast<double>(stats_.completed) / window_s;
    const double gbps = static_cast<double>(stats_.bytes) * 8 / window_s / 1e9;
    if (o_.json) {
      std::printf(
          "{\"label\":\"%s\",\"mode\":\"%s\",\"close\":%s,\"connections\":%d,\"rate\":%.0f,"
          "\"window_s\":%.3f,\"requests\":%llu,\"requests_all\":%llu,\"errors\":%llu,"
          "\"non_2xx\":%llu,\"rps\":%.1f,\"bytes\":%llu,\"gbps\":%.3f,"
          "\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,"
          "\"mean\":%.1f}}\n",
          o_.label.c_str(), mode_name, o_.close_mode ? "true" : "false", o_.connections, o_.rate,
          window_s, static_cast<unsigned long long>(stats_.completed),
          static_cast<unsigned long long>(stats_.completed_all),
          static_cast<unsigned long long>(stats_.errors),
          static_cast<unsigned long long>(stats_.non_2xx), rps,
          static_cast<unsigned long long>(stats_.bytes), gbps, us(50), us(90), us(99), us(99.9),
          static_cast<double>(stats_.latency.max()) / 1e3, stats_.latency.mean() / 1e3);
    } else if (bulk) {
      std::printf("%s %s: %.3f Gbit/s, %llu bytes in %.2f s, errors %llu\n", o_.label.c_str(),
                  mode_name, gbps, static_cast<unsigned long long>(stats_.bytes), window_s,
                  static_cast<unsigned long long>(stats_.errors));
    } else {
      std::printf(
          "%s %s%s c=%d: %.0f req/s, %llu ok, %llu errors, %llu non-2xx; latency us p50 %.1f "
          "p90 %.1f p99 %.1f p99.9 %.1f max %.1f\n",
          o_.label.c_str(), mode_name, o_.close_mode ? " close" : "", o_.connections, rps,
          static_cast<unsigned long long>(stats_.completed),
          static_cast<unsigned long long>(stats_.errors),
          static_cast<unsigned long long>(stats_.non_2xx), us(50), us(90), us(99), us(99.9),
          static_cast<double>(stats_.latency.max()) / 1e3);
    }
  }

  /// Whether every request succeeded (used for the exit code).
  bool ok() const {
    if (o_.run_mode == mode::bulk_send || o_.run_mode == mode::bulk_recv) return stats_.bytes > 0;
    return stats_.completed > 0 && stats_.errors == 0 && stats_.non_2xx == 0;
  }

 private:
  using timer = std::pair<std::int64_t, std::size_t>;

  double measured_window_s() const {
    const std::int64_t end = std::min(last_completion_ns_, end_ns_);
    return static_cast<double>(std::max<std::int64_t>(end, measure_from_ns_) - measure_from_ns_) /
           1e9;
  }

  bool limit_reached() const {
    return o_.max_requests > 0 && stats_.completed_all >= o_.max_requests;
  }

  int new_socket() const {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
  }

  bool open_blocking(conn& c, std::size_t idx) {
    c.fd = new_socket();
    if (c.fd < 0) return false;
    if (connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_) != 0) {
      close(c.fd);
      c.fd = -1;
      return false;
    }
    fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = idx;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd, &ev);
    return true;
  }

  void reset_parser(conn& c) {
    c.head.clear();
    c.in_body = false;
    c.body_left = 0;
    c.close_delimited = false;
    c.status = 0;
    c.written = 0;
  }

  void start_request(std::size_t idx, std::int64_t intended) {
    auto& c = conns_[idx];
    c.intended_ns = intended;
    c.in_flight = true;
    ++in_flight_;
    reset_parser(c);
    if (o_.close_mode) {
      c.fd = new_socket();
      fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
      int r = connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_);
      if (r != 0 && errno != EINPROGRESS) {
        fail(idx);
        return;
      }
      c.connecting = true;
      epoll_event ev{};
      ev.events = EPOLLOUT | EPOLLIN;
      ev.data.u64 = idx;
      epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd, &ev);
      return;
    }
    if (c.fd < 0 && !open_blocking(c, idx)) {
      fail(idx);
      return;
    }
    write_request(idx);
  }

  void write_request(std::size_t idx) {
    auto& c = conns_[idx];
    while (c.written < request_.size()) {
      ssize_t r =
          send(c.fd, request_.data() + c.written, request_.size() - c.written, MSG_NOSIGNAL);
      if (r > 0) {
        c.written += static_cast<std::size_t>(r);
      } else if (r < 0 && errno == EAGAIN) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.u64 = idx;
        epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
        return;
      } else {
        fail(idx);
        return;
      }
    }
  }

  void handle(const epoll_event& ev) {
    const std::size_t idx = ev.data.u64;
    auto& c = conns_[idx];
    if (c.fd < 0) return;
    if (c.connecting) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        fail(idx);
        return;
      }
      if ((ev.events & EPOLLOUT) == 0) return;
      c.connecting = false;
      epoll_event mod{};
      mod.events = EPOLLIN;
      mod.data.u64 = idx;
      epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &mod);
      write_request(idx);
      return;
    }
    if ((ev.events & EPOLLOUT) != 0 && c.written < request_.size()) {
      epoll_event mod{};
      mod.events = EPOLLIN;
      mod.data.u64 = idx;
      epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &mod);
      write_request(idx);
      if (conns_[idx].fd < 0) return;
    }
    if ((ev.events & (EPOLLIN | EPOLLHUP | EPOLLERR)) == 0) return;
    char buf[65536];
    for (;;) {
      ssize_t r = recv(c.fd, buf, sizeof buf, 0);
      if (r > 0) {
        stats_.bytes += static_cast<std::uint64_t>(r);
        if (!on_data(idx, buf, static_cast<std::size_t>(r))) return;
        if (static_cast<std::size_t>(r) < sizeof buf) return;
        continue;
      }
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
      // EOF or error.
      if (r == 0 && c.in_flight && c.in_body && c.close_delimited) {
        complete(idx);
        return;
      }
      fail(idx);
      return;
    }
  }

  // Returns false when the connection was closed or replaced meanwhile.
  bool on_data(std::size_t idx, const char* p, std::size_t n) {
    auto& c = conns_[idx];
    const std::uint64_t gen = c.gen;
    while (n > 0) {
      if (!c.in_flight) {
        ++stats_.errors;  // bytes nobody asked for
        return true;
      }
      if (c.in_body) {
        if (c.close_delimited) return true;
        const std::uint64_t k = std::min<std::uint64_t>(n, c.body_left);
        c.body_left -= k;
        p += k;
        n -= static_cast<std::size_t>(k);
        if (c.body_left == 0) {
          complete(idx);
          if (c.gen != gen) return false;
        }
        continue;
      }
      const std::size_t old = c.head.size();
      c.head.append(p, n);
      const auto end = c.head.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
      if (end == std::string::npos) {
        if (c.head.size() > 65536) {
          fail(idx);
          return false;
        }
        return true;
      }
      const std::size_t head_len = end + 4;
      const std::size_t used = head_len - old;
      p += used;
      n -= used;
      if (!parse_head(c, std::string_view(c.head).substr(0, head_len))) {
        fail(idx);
        return false;
      }
      c.in_body = true;
      if (!c.close_delimited && c.body_left == 0) {
        complete(idx);
        if (c.gen != gen) return false;
      }
    }
    return true;
  }

  static bool parse_head(conn& c, std::string_view head) {
    // "HTTP/1.1 200 OK"
    if (head.size() < 12 || head.substr(0, 5) != "HTTP/") return false;
    int status = 0;
    auto [ptr, ec] = std::from_chars(head.data() + 9, head.data() + 12, status);
    if (ec != std::errc{}) return false;
    c.status = status;
    bool has_length = false;
    bool chunked = false;
    std::size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos + 2 < head.size()) {
      const std::size_t next = head.find("\r\n", pos + 2);
      std::string_view line = head.substr(pos + 2, next - pos - 2);
      if (iequals_prefix(line, "content-length:")) {
        auto v = trim(line.substr(15));
        std::uint64_t len = 0;
        std::from_chars(v.data(), v.data() + v.size(), len);
        c.body_left = len;
        has_length = true;
      } else if (iequals_prefix(line, "transfer-encoding:")) {
        chunked = true;
      }
      pos = next;
    }
    if (chunked) return false;  // the bench origin never sends chunked bodies
    if (status == 204 || status == 304 || status / 100 == 1) {
      c.body_left = 0;
    } else if (!has_length) {
      c.close_delimited = true;
    }
    return true;
  }

  void complete(std::size_t idx) {
    auto& c = conns_[idx];
    const std::int64_t now = now_ns();
    c.in_flight = false;
    --in_flight_;
    ++c.done;
    ++stats_.completed_all;
    if (c.status < 200 || c.status >= 300) ++stats_.non_2xx;
    if (now >= measure_from_ns_ && now - 1'000'000'000 <= end_ns_) {
      ++stats_.completed;
      stats_.latency.record(now - c.intended_ns);
      last_completion_ns_ = now;
    }
    if (o_.close_mode) {
      epoll_ctl(epfd_, EPOLL_CTL_DEL, c.fd, nullptr);
      close(c.fd);
      c.fd = -1;
      ++c.gen;
    }
    schedule_next(idx, now);
  }

  void fail(std::size_t idx) {
    auto& c = conns_[idx];
    ++stats_.errors;
    if (c.fd >= 0) {
      epoll_ctl(epfd_, EPOLL_CTL_DEL, c.fd, nullptr);
      close(c.fd);
      c.fd = -1;
      ++c.gen;
    }
    c.connecting = false;
    if (c.in_flight) {
      c.in_flight = false;
      --in_flight_;
    }
    if (stats_.errors > 1000 && stats_.completed_all == 0) {
      std::fprintf(stderr, "loadgen: no successful request, giving up\n");
      g_stop = 1;
    }
    schedule_next(idx, now_ns());
  }

  void schedule_next(std::size_t idx, std::int64_t now) {
    auto& c = conns_[idx];
    if (o_.run_mode == mode::hold) {
      if (c.done == 0 && now < end_ns_) timers_.emplace(now + 10'000'000, idx);  // retry
      return;
    }
    if (o_.run_mode == mode::rate) {
      const std::int64_t due = c.intended_ns + c.period_ns;
      if (due <= now && now < end_ns_ && !limit_reached()) {
        start_request(idx, due);
      } else {
        timers_.emplace(due, idx);
      }
      return;
    }
    if (now < end_ns_ && !limit_reached()) {
      if (c.fd < 0 && !o_.close_mode) {
        // Reconnect later, so a refused connection does not spin.
        timers_.emplace(now + 1'000'000, idx);
        return;
      }
      start_request(idx, now);
    }
  }

  const options& o_;
  std::string request_;
  sockaddr_in addr_{};
  int epfd_ = -1;
  std::vector<conn> conns_;
  std::priority_queue<timer, std::vector<timer>, std::greater<>> timers_;
  std::size_t in_flight_ = 0;
  std::int64_t start_ns_ = 0;
  std::int64_t measure_from_ns_ = 0;
  std::int64_t end_ns_ = 0;
  std::int64_t last_completion_ns_ = 0;
  stats stats_;
};

}  // namespace
}  // namespace devspaces::bench

int main(int argc, char** argv) {
  using namespace devspaces::bench;
  options o;
  if (!parse_options(argc, argv, o)) {
    usage();
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  runner r(o);
  int rc = (o.run_mode == mode::bulk_send || o.run_mode == mode::bulk_recv) ? r.run_bulk()
                                                                            : r.run_http();
  if (rc != 0) return rc;
  r.report();
  return r.ok() ? 0 : 1;
}
