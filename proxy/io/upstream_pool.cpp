#include "proxy/io/upstream_pool.hpp"

#include <sys/socket.h>

#include <cerrno>

#include "proxy/io/readiness.hpp"
#include "proxy/io/socket_util.hpp"

namespace devspaces::proxy::io {

namespace asio = boost::asio;
using asio::ip::tcp;
using clock = std::chrono::steady_clock;

bool idle_socket_alive(tcp::socket& socket) {
  if (!socket.is_open()) return false;
  char c;
  ssize_t n = ::recv(socket.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  // n == 0: the peer closed; n > 0: bytes nobody asked for; n < 0 other than EAGAIN: an error.
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

bool kept_socket_reusable(tcp::socket& socket, clock::time_point idle_since, clock::time_point now,
                          std::chrono::milliseconds trust) {
  if (!socket.is_open()) return false;
  switch (idle_state_of(socket)) {
    case idle_state::quiet:
      return true;
    case idle_state::stirred:
      return idle_socket_alive(socket);
    case idle_state::unknown:
      break;
  }
  if (now - idle_since < trust) return true;
  return idle_socket_alive(socket);
}

upstream_pool::upstream_pool(asio::any_io_executor executor, std::size_t max_total,
                             std::size_t max_per_endpoint, std::chrono::milliseconds idle_timeout)
    : max_total_(max_total),
      max_per_endpoint_(max_per_endpoint),
      idle_timeout_(idle_timeout),
      timer_(std::move(executor)) {}

upstream_pool::~upstream_pool() {
  clear();
}

std::optional<tcp::socket> upstream_pool::take(const tcp::endpoint& endpoint) {
  auto it = idle_.find(endpoint);
  if (it == idle_.end()) return std::nullopt;
  auto& q = it->second;
  const auto now = clock::now();
  std::optional<tcp::socket> found;
  while (!q.empty() && !found) {
    entry e = std::move(q.back());
    q.pop_back();
    --total_;
    if (now - e.since < idle_timeout_ &&
        (idle_state_of(e.socket) == idle_state::quiet || idle_socket_alive(e.socket)))
      found.emplace(std::move(e.socket));
    else
      close_quietly(e.socket);
  }
  if (q.empty()) idle_.erase(it);
  return found;
}

void upstream_pool::put(const tcp::endpoint& endpoint, tcp::socket socket) {
  if (!socket.is_open()) return;
  if (max_total_ == 0 || max_per_endpoint_ == 0 || idle_timeout_.count() == 0) {
    close_quietly(socket);
    return;
  }
  if (total_ >= max_total_) sweep();
  auto& q = idle_[endpoint];
  if (q.size() >= max_per_endpoint_) {
    close_quietly(q.front().socket);  // the oldest goes
    q.pop_front();
    --total_;
  } else if (total_ >= max_total_) {
    if (q.empty()) idle_.erase(endpoint);
    close_quietly(socket);
    return;
  }
  q.push_back(entry{std::move(socket), clock::now()});
  ++total_;
  arm();
}

void upstream_pool::clear() {
  for (auto& [ep, q] : idle_)
    for (auto& e : q) close_quietly(e.socket);
  idle_.clear();
  total_ = 0;
  timer_.cancel();
  armed_ = false;
}

void upstream_pool::sweep() {
  const auto now = clock::now();
  for (auto it = idle_.begin(); it != idle_.end();) {
    auto& q = it->second;
    while (!q.empty() && (now - q.front().since >= idle_timeout_ || !q.front().socket.is_open())) {
      close_quietly(q.front().socket);
      q.pop_front();
      --total_;
    }
    // Also drop connections the upstream closed meanwhile, so their descriptors come back.
    for (auto e = q.begin(); e != q.end();) {
      if (!idle_socket_alive(e->socket)) {
        close_quietly(e->socket);
        e = q.erase(e);
        --total_;
      } else {
        ++e;
      }
    }
    it = q.empty() ? idle_.erase(it) : std::next(it);
  }
}

void upstream_pool::arm() {
  if (armed_ || total_ == 0) return;
  armed_ = true;
  timer_.expires_after(idle_timeout_ / 2 + std::chrono::milliseconds(1));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    // Cancelled means clear() or destruction: `this` may be gone, touch nothing.
    if (ec == asio::error::operation_aborted) return;
    armed_ = false;
    sweep();
    arm();
  });
}

}  // namespace devspaces::proxy::io
