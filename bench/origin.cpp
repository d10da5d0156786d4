// Minimal single-threaded epoll origin for benchmarks.
//
// http mode: HTTP/1.1 keep-alive with pipelining; fixed bodies by path (/0 -> 0 B, /16k -> 16 KiB,
// anything else -> 1 KiB); "Connection: close" (or HTTP/1.0 without keep-alive) closes after the
// response. sink mode: reads and discards until EOF. source mode: writes until the peer closes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
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
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace devspaces::bench {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) {
  g_stop = 1;
}

enum class mode { http, sink, source };

struct options {
  std::string address = "127.0.0.1";
  int port = 8080;
  mode run_mode = mode::http;
  int backlog = 65535;
};

/// Per-connection state; the vector index is the file descriptor.
struct conn {
  bool open = false;
  bool close_after = false;  // close once `out` is flushed
  bool want_out = false;     // EPOLLOUT registered
  std::string in;
  std::size_t in_off = 0;
  std::string out;
  std::size_t out_off = 0;
  std::uint64_t body_skip = 0;  // request body bytes still to discard
};

bool iequals_prefix(std::string_view line, std::string_view name) {
  if (line.size() < name.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
  }
  return true;
}

bool icontains(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    if (iequals_prefix(hay.substr(i), needle)) return true;
  }
  return false;
}

std::string make_response(std::size_t body, bool close) {
  std::string r = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ";
  r += std::to_string(body);
  r += close ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n";
  r.append(body, 'o');
  return r;
}

class server {
 public:
  explicit server(const options& o) : o_(o) {
    for (bool close : {false, true}) {
      responses_[close ? 1 : 0][0] = make_response(0, close);
      responses_[close ? 1 : 0][1] = make_response(1024, close);
      responses_[close ? 1 : 0][2] = make_response(16384, close);
    }
    bulk_.assign(256 * 1024, 's');
  }

  int run() {
    lfd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(o_.port));
    if (inet_pton(AF_INET, o_.address.c_str(), &addr.sin_addr) != 1) {
      std::fprintf(stderr, "origin: bad address %s\n", o_.address.c_str());
      return 2;
    }
    if (bind(lfd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(lfd_, o_.backlog) != 0) {
      std::fprintf(stderr, "origin: cannot listen on %s:%d: %s\n", o_.address.c_str(), o_.port,
                   std::strerror(errno));
      return 1;
    }
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = lfd_;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, lfd_, &ev);
    socklen_t len = sizeof addr;
    getsockname(lfd_, reinterpret_cast<sockaddr*>(&addr), &len);
    std::printf("listening %s:%d\n", o_.address.c_str(), ntohs(addr.sin_port));
    std::fflush(stdout);
    std::vector<epoll_event> events(1024);
    while (g_stop == 0) {
      int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), 200);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::perror("epoll_wait");
        return 1;
      }
      for (int k = 0; k < n; ++k) {
        const auto& e = events[static_cast<std::size_t>(k)];
        if (e.data.fd == lfd_) {
          accept_all();
        } else {
          on_event(e.data.fd, e.events);
        }
      }
    }
    return 0;
  }

 private:
  void accept_all() {
    for (;;) {
      int fd = accept4(lfd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or EMFILE: try again on the next wake-up
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (static_cast<std::size_t>(fd) >= conns_.size()) conns_.resize(fd + 1024);
      conns_[fd] = conn{};
      conns_[fd].open = true;
      epoll_event ev{};
      ev.events = o_.run_mode == mode::source ? EPOLLOUT | EPOLLIN : EPOLLIN;
      ev.data.fd = fd;
      epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
      if (o_.run_mode == mode::source) conns_[fd].want_out = true;
    }
  }

  void close_conn(int fd) {
    epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    conns_[fd] = conn{};
  }

  void on_event(int fd, std::uint32_t events) {
    if (o_.run_mode == mode::source) {
      if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
        ssize_t r = recv(fd, scratch_, sizeof scratch_, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
          close_conn(fd);
          return;
        }
      }
      for (;;) {
        ssize_t r = send(fd, bulk_.data(), bulk_.size(), MSG_NOSIGNAL);
        if (r < 0) {
          if (errno != EAGAIN) close_conn(fd);
          return;
        }
      }
    }
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
      for (;;) {
        ssize_t r = recv(fd, scratch_, sizeof scratch_, 0);
        if (r > 0) {
          if (o_.run_mode == mode::http && !on_request_bytes(fd, static_cast<std::size_t>(r)))
            return;
          if (static_cast<std::size_t>(r) < sizeof scratch_) break;
          continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
        close_conn(fd);  // EOF or error
        return;
      }
    }
    if (o_.run_mode == mode::http) flush(fd);
  }

  // Parses every complete request in the buffer and queues its response (pipelining).
  bool on_request_bytes(int fd, std::size_t n) {
    auto& c = conns_[fd];
    std::string_view data(scratch_, n);
    if (c.body_skip > 0) {
      const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(c.body_skip, n));
      c.body_skip -= k;
      data.remove_prefix(k);
    }
    c.in.append(data);
    while (!c.close_after) {
      std::string_view buf = std::string_view(c.in).substr(c.in_off);
      const auto end = buf.find("\r\n\r\n");
      if (end == std::string_view::npos) {
        if (buf.size() > 65536) {
          close_conn(fd);
          return false;
        }
        break;
      }
      std::string_view head = buf.substr(0, end + 2);
      const auto sp1 = head.find(' ');
      const auto sp2 = sp1 == std::string_view::npos ? sp1 : head.find(' ', sp1 + 1);
      const auto eol = head.find("\r\n");
      if (sp2 == std::string_view::npos || sp2 > eol) {
        close_conn(fd);
        return false;
      }
      const std::string_view path = head.substr(sp1 + 1, sp2 - sp1 - 1);
      const std::string_view version = head.substr(sp2 + 1, eol - sp2 - 1);
      bool close = version == "HTTP/1.0";
      std::uint64_t body = 0;
      std::size_t pos = eol;
      while (pos + 2 < head.size()) {
        const std::size_t next = head.find("\r\n", pos + 2);
        const std::string_view line = head.substr(pos + 2, next - pos - 2);
        if (iequals_prefix(line, "connection:")) {
          if (icontains(line, "close")) close = true;
          if (icontains(line, "keep-alive")) close = false;
        } else if (iequals_prefix(line, "content-length:")) {
          std::string_view v = line.substr(15);
          while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
          std::from_chars(v.data(), v.data() + v.size(), body);
        }
        pos = next;
      }
      const int size = path == "/0" ? 0 : path == "/16k" ? 2 : 1;
      c.out += responses_[close ? 1 : 0][size];
      c.close_after = close;
      c.in_off += end + 4;
      const std::size_t avail = c.in.size() - c.in_off;
      const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(body, avail));
      c.in_off += k;
      c.body_skip = body - k;
    }
    if (c.in_off == c.in.size()) {
      c.in.clear();
      c.in_off = 0;
    } else if (c.in_off > 0) {
      c.in.erase(0, c.in_off);
      c.in_off = 0;
    }
    return true;
  }

  void flush(int fd) {
    auto& c = conns_[fd];
    if (!c.open) return;
    while (c.out_off < c.out.size()) {
      ssize_t r = send(fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (r > 0) {
        c.out_off += static_cast<std::size_t>(r);
        continue;
      }
      if (r < 0 && errno == EAGAIN) {
        if (!c.want_out) {
          c.want_out = true;
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLOUT;
          ev.data.fd = fd;
          epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
        }
        return;
      }
      close_conn(fd);
      return;
    }
    c.out.clear();
    c.out_off = 0;
    if (c.want_out) {
      c.want_out = false;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
    }
    if (c.close_after) close_conn(fd);
  }

  const options& o_;
  int lfd_ = -1;
  int epfd_ = -1;
  std::vector<conn> conns_;
  std::string responses_[2][3];
  std::string bulk_;
  char scratch_[256 * 1024];
};

}  // namespace
}  // namespace devspaces::bench

int main(int argc, char** argv) {
  using namespace devspaces::bench;
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--address" && i + 1 < argc) {
      o.address = argv[++i];
    } else if (a == "--port" && i + 1 < argc) {
      o.port = std::atoi(argv[++i]);
    } else if (a == "--backlog" && i + 1 < argc) {
      o.backlog = std::atoi(argv[++i]);
    } else if (a == "--mode" && i + 1 < argc) {
      std::string_view m = argv[++i];
      if (m == "http") {
        o.run_mode = mode::http;
      } else if (m == "sink") {
        o.run_mode = mode::sink;
      } else if (m == "source") {
        o.run_mode = mode::source;
      } else {
        std::fprintf(stderr, "origin: unknown mode %s\n", argv[i]);
        return 2;
      }
    } else {
      std::fputs(
          "usage: devspaces-origin [--address A] [--port P] [--mode http|sink|source] "
          "[--backlog N]\n",
          stderr);
      return 2;
    }
  }
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  auto s = std::make_unique<server>(o);
  return s->run();
}
