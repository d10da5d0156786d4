#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "proxy/h2/ng.hpp"
#include "proxy/io/deadline.hpp"

namespace devspaces::proxy::h2 {

/// Moves bytes between one socket and one nghttp2 session: a read loop feeding
/// nghttp2_session_mem_recv and a write loop draining nghttp2_session_mem_send, at most
/// limits::max_output bytes ahead of the socket (a peer that never reads holds that much plus
/// what nghttp2 queues, which its own limits bound). Single-threaded: everything runs on the
/// socket's executor.
class pump {
 public:
  pump(boost::asio::ip::tcp::socket socket, const limits& lim,
       std::chrono::milliseconds write_timeout);
  virtual ~pump();
  pump(const pump&) = delete;
  pump& operator=(const pump&) = delete;

  /// The session (null until the derived class created it).
  nghttp2_session* ng() const { return ng_.get(); }
  /// Something may have been submitted to the session: let the write loop look.
  void kick();
  /// Closes the socket now; both loops end.
  void close_now();
  /// The loops have not ended yet.
  bool open() const { return !closed_; }
  /// Bytes read from / written to the socket so far.
  std::uint64_t rx() const { return rx_; }
  std::uint64_t tx() const { return tx_; }
  /// Counters raised as bytes are read / written (bytes_total of the client side); the bytes
  /// fed from the sniff were counted when the sniff read them.
  void count_into(prometheus::Counter* rx, prometheus::Counter* tx) {
    rx_counter_ = rx;
    tx_counter_ = tx;
  }

 protected:
  /// Runs both loops until the session is over or the socket fails; `initial` is fed first
  /// (bytes already read while sniffing).
  boost::asio::awaitable<void> run_loops(std::string initial);

  session_ptr ng_;
  boost::asio::ip::tcp::socket sock_;
  const limits& lim_;

 private:
  boost::asio::awaitable<void> read_loop(std::string initial);
  boost::asio::awaitable<void> write_loop();
  bool feed(const std::uint8_t* data, std::size_t n);
  bool session_over() const;

  std::chrono::milliseconds write_timeout_;
  io::deadline write_deadline_;  // a write making no progress for write_timeout_ closes the socket
  boost::asio::steady_timer wake_;
  std::vector<std::uint8_t> in_;
  std::string out_;
  bool closed_ = false;
  bool read_done_ = false;
  bool waiting_ = false;
  std::uint64_t rx_ = 0;
  std::uint64_t tx_ = 0;
  prometheus::Counter* rx_counter_ = nullptr;
  prometheus::Counter* tx_counter_ = nullptr;
};

}  // namespace devspaces::proxy::h2
