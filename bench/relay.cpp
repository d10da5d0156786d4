// The physical floor for a user-space proxy: a single-threaded epoll read/write TCP relay with
// fixed upstreams, no parsing; a 64 KiB buffer per direction is taken from a pool while bytes move
// and returned when the socket has nothing more to read, so idle connections hold no buffer.
//
// usage: devspaces-relay --map LISTEN_PORT:UPSTREAM_PORT [--map ...] (all on 127.0.0.1)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
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

constexpr std::size_t buffer_size = 64 * 1024;

/// One direction of a relayed connection: bytes read from `from` wait in `buf` for `to`.
struct half {
  int from = -1;
  int to = -1;
  std::unique_ptr<char[]> buf;
  std::size_t len = 0;
  std::size_t off = 0;
  bool eof = false;
};

/// A relayed connection; fd -> (pair, which side) is kept in a flat table.
struct pair {
  half up;    // client -> upstream
  half down;  // upstream -> client
  int refs = 2;
};

struct slot {
  pair* p = nullptr;
  bool is_client = false;
  int listen_upstream = -1;  // for listening sockets: the upstream port
  std::uint32_t mask = 0;    // events currently registered
};

class relay {
 public:
  int run(const std::vector<std::pair<int, int>>& maps) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    for (auto [lport, uport] : maps) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      sockaddr_in a = loopback(lport);
      if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 65535) != 0) {
        std::fprintf(stderr, "relay: cannot listen on %d: %s\n", lport, std::strerror(errno));
        return 1;
      }
      at(fd).listen_upstream = uport;
      watch(fd, EPOLLIN, EPOLL_CTL_ADD);
    }
    std::vector<epoll_event> events(512);
    while (g_stop == 0) {
      int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 200);
      for (int i = 0; i < n; ++i) {
        const int fd = events[static_cast<std::size_t>(i)].data.fd;
        if (at(fd).listen_upstream >= 0) {
          accept_all(fd, at(fd).listen_upstream);
          continue;
        }
        pair* p = at(fd).p;
        if (p == nullptr) continue;
        // Pump both directions touching this fd; each pump is a no-op when it cannot progress.
        pump(*p, p->up);
        if (at(fd).p == p) pump(*p, p->down);
      }
    }
    return 0;
  }

 private:
  static sockaddr_in loopback(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
  }

  slot& at(int fd) {
    if (static_cast<std::size_t>(fd) >= slots_.size()) slots_.resize(fd + 1024);
    return slots_[static_cast<std::size_t>(fd)];
  }

  void watch(int fd, std::uint32_t events, int op) {
    if (op == EPOLL_CTL_MOD && at(fd).mask == events) return;
    at(fd).mask = events;
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    epoll_ctl(ep_, op, fd, &ev);
  }

  void accept_all(int lfd, int uport) {
    for (;;) {
      int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c < 0) return;
      int u = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      sockaddr_in a = loopback(uport);
      int one = 1;
      setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (u < 0 ||
          (connect(u, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS)) {
        close(c);
        if (u >= 0) close(u);
        continue;
      }
      auto* p = new pair;
      p->up = half{c, u, nullptr};
      p->down = half{u, c, nullptr};
      at(c) = slot{p, true, -1, 0};
      at(u) = slot{p, false, -1, 0};
      watch(c, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_ADD);
      watch(u, EPOLLIN | EPOLLOUT | EPOLLRDHUP, EPOLL_CTL_ADD);
    }
  }

  // Moves bytes for one direction until it would block; re-arms interest accordingly.
  void pump(pair& p, half& h) {
    for (;;) {
      if (h.off < h.len) {
        ssize_t w = send(h.to, h.buf.get() + h.off, h.len - h.off, MSG_NOSIGNAL);
        if (w < 0) {
          if (errno == EAGAIN || errno == ENOTCONN) break;
          destroy(p);
          return;
        }
        h.off += static_cast<std::size_t>(w);
        continue;
      }
      h.off = h.len = 0;
      if (h.eof) break;
      if (!h.buf) h.buf = take_buffer();
      ssize_t r = recv(h.from, h.buf.get(), buffer_size, 0);
      if (r > 0) {
        h.len = static_cast<std::size_t>(r);
        continue;
      }
      if (r == 0) {
        h.eof = true;
        shutdown(h.to, SHUT_WR);
        break;
      }
      if (errno == EAGAIN) {
        give_buffer(h);  // idle: the buffer goes back to the pool
        break;
      }
      destroy(p);
      return;
    }
    if (p.up.eof && p.down.eof && p.up.len == 0 && p.down.len == 0) {
      destroy(p);
      return;
    }
    rearm(p);
  }

  std::unique_ptr<char[]> take_buffer() {
    if (pool_.empty()) return std::make_unique<char[]>(buffer_size);
    auto b = std::move(pool_.back());
    pool_.pop_back();
    return b;
  }

  void give_buffer(half& h) {
    if (h.buf && h.len == 0) pool_.push_back(std::move(h.buf));
  }

  void rearm(pair& p) {
    // Read from a side while its direction has no pending bytes; write interest while pending.
    for (int fd : {p.up.from, p.down.from}) {
      const half& in = fd == p.up.from ? p.up : p.down;
      const half& out = fd == p.up.from ? p.down : p.up;
      std::uint32_t ev = EPOLLRDHUP;
      if (!in.eof && in.len == 0) ev |= EPOLLIN;
      if (out.off < out.len) ev |= EPOLLOUT;
      watch(fd, ev, EPOLL_CTL_MOD);
    }
  }

  void destroy(pair& p) {
    for (int fd : {p.up.from, p.down.from}) {
      epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
      close(fd);
      at(fd) = slot{};
    }
    give_buffer(p.up);
    give_buffer(p.down);
    delete &p;
  }

  int ep_ = -1;
  std::vector<slot> slots_;
  std::vector<std::unique_ptr<char[]>> pool_;  // idle buffers, reused (never shrinks)
};

}  // namespace
}  // namespace devspaces::bench

int main(int argc, char** argv) {
  std::vector<std::pair<int, int>> maps;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--map" && i + 1 < argc) {
      std::string m = argv[++i];
      auto colon = m.find(':');
      if (colon == std::string::npos) return 2;
      maps.emplace_back(std::atoi(m.substr(0, colon).c_str()), std::atoi(m.c_str() + colon + 1));
    } else {
      std::fputs("usage: devspaces-relay --map LISTEN_PORT:UPSTREAM_PORT [--map ...]\n", stderr);
      return 2;
    }
  }
  if (maps.empty()) return 2;
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGTERM, devspaces::bench::on_signal);
  std::signal(SIGINT, devspaces::bench::on_signal);
  devspaces::bench::relay r;
  return r.run(maps);
}
