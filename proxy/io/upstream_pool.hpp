#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <optional>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace devspaces::proxy::io {

/// Idle upstream connections of one worker, keyed by endpoint (HTTP keep-alive reuse).
/// Single-threaded: used only on its worker's io_context. Bounded in total and per endpoint;
/// entries expire after the idle timeout; sockets the peer closed (or that hold unexpected
/// bytes) are discarded on take().
class upstream_pool {
 public:
  /// A pool on `executor` (the worker's), with its bounds and the idle timeout.
  upstream_pool(boost::asio::any_io_executor executor, std::size_t max_total = 256,
                std::size_t max_per_endpoint = 32,
                std::chrono::milliseconds idle_timeout = std::chrono::seconds(60));
  ~upstream_pool();
  upstream_pool(const upstream_pool&) = delete;
  upstream_pool& operator=(const upstream_pool&) = delete;

  /// An idle, still-open connection to `endpoint` (most recently used first), or nullopt.
  std::optional<boost::asio::ip::tcp::socket> take(const boost::asio::ip::tcp::endpoint& endpoint);

  /// Offers a connection for reuse after a complete exchange. Closed when the pool is full.
  void put(const boost::asio::ip::tcp::endpoint& endpoint, boost::asio::ip::tcp::socket socket);

  /// Idle connections held now.
  std::size_t size() const { return total_; }

  /// Closes every idle connection (drain, shutdown).
  void clear();

 private:
  struct entry {
    boost::asio::ip::tcp::socket socket;
    std::chrono::steady_clock::time_point since;
  };
  void sweep();
  void arm();

  std::size_t max_total_;
  std::size_t max_per_endpoint_;
  std::chrono::milliseconds idle_timeout_;
  std::map<boost::asio::ip::tcp::endpoint, std::deque<entry>> idle_;
  std::size_t total_ = 0;
  boost::asio::steady_timer timer_;
  bool armed_ = false;
};

/// True when an idle socket is still usable: open, no EOF, no error, no unread bytes.
bool idle_socket_alive(boost::asio::ip::tcp::socket& socket);

/// Whether a connection kept idle since `idle_since` may be reused. A socket watched for the
/// peer's close (watch_peer_close()) is answered from the reactor's readiness state: quiet since
/// its last read means alive, anything else is checked with idle_socket_alive() (one `recv`
/// peek). An unwatched socket within `trust` of its last exchange is taken as alive without
/// asking the kernel (an upstream closes a keep-alive connection after seconds of idleness, not
/// microseconds; a reused connection that turns out closed is retried by the caller anyway);
/// after that it is peeked.
bool kept_socket_reusable(boost::asio::ip::tcp::socket& socket,
                          std::chrono::steady_clock::time_point idle_since,
                          std::chrono::steady_clock::time_point now,
                          std::chrono::milliseconds trust = std::chrono::milliseconds(1000));

}  // namespace devspaces::proxy::io
