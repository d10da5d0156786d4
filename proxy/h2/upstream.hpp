#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/container/flat_map.hpp>

#include "proxy/h2/ng.hpp"
#include "proxy/h2/pump.hpp"
#include "proxy/io/connection_context.hpp"
#include "proxy/io/deadline.hpp"

namespace devspaces::proxy::h2 {

class exchange;

/// One HTTP/2 (prior knowledge) connection to an upstream endpoint, shared by the streams of
/// every client connection of a worker. Lives while its loops run (they hold it).
class upstream_conn : public pump,
                      public frame_handler,
                      public std::enable_shared_from_this<upstream_conn> {
 public:
  upstream_conn(boost::asio::ip::tcp::socket socket, const limits& lim,
                std::chrono::milliseconds write_timeout, std::chrono::milliseconds idle_timeout);
  ~upstream_conn() override;

  /// Starts the loops (call once, right after construction).
  void start();
  /// Room for one more stream: open, no GOAWAY, fewer streams than the peer allows.
  bool usable() const;
  /// Submits a request for `ex`; its body (when `with_body`) is pulled from the exchange.
  /// Returns the upstream stream id, or a negative nghttp2 error.
  std::int32_t submit(const std::shared_ptr<exchange>& ex, const field_list& fields,
                      bool with_body);
  /// Streams open now.
  std::size_t streams() const { return streams_.size(); }

  int on_begin_headers(std::int32_t stream_id) override;
  int on_field(std::int32_t stream_id, std::string_view name, std::string_view value) override;
  int on_headers_done(std::int32_t stream_id, bool end_stream) override;
  int on_data(std::int32_t stream_id, std::span<const std::uint8_t> data) override;
  int on_data_end(std::int32_t stream_id) override;
  int on_stream_close(std::int32_t stream_id, std::uint32_t error_code) override;
  void on_goaway(std::int32_t last_stream_id, std::uint32_t error_code) override;

 private:
  static boost::asio::awaitable<void> run(std::shared_ptr<upstream_conn> self);
  void on_idle();
  exchange* find(std::int32_t id);

  // Open streams by id: ids only grow, so an insert appends; no allocation per stream once the
  // storage has grown.
  boost::container::flat_map<std::int32_t, std::shared_ptr<exchange>> streams_;
  std::chrono::milliseconds idle_timeout_;
  io::deadline idle_;  // armed while no stream is open: its expiry says goodbye
  bool goaway_ = false;
};

/// Why an upstream could not be had.
struct acquire_failure {
  connect_failure reason = connect_failure::other;
};

/// A usable connection to `endpoint` for a stream of the connection `ctx`: an existing one of
/// this worker with room, else a new one (connected with ctx's timeout and passthrough source;
/// failures counted). Connections are keyed by worker, direction and endpoint. `avoid` (a
/// connection that refused the stream) is never returned.
boost::asio::awaitable<std::shared_ptr<upstream_conn>> acquire_upstream(
    const io::connection_context& ctx, boost::asio::ip::tcp::endpoint endpoint,
    acquire_failure& why, const upstream_conn* avoid = nullptr);

/// Upstream connections of this thread's pool (tests).
std::size_t pooled_upstreams();

/// The limits used for upstream connections.
const limits& upstream_limits();

}  // namespace devspaces::proxy::h2
