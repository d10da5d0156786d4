#pragma once

// One HTTP/2 stream of a client connection and the upstream stream it was routed to.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proxy/h2/ng.hpp"
#include "proxy/h2/stream_state.hpp"
#include "proxy/io/connection_context.hpp"
#include "proxy/trace/exchange_recorder.hpp"

namespace devspaces::proxy::h2 {

class upstream_conn;

/// What an exchange needs of the client connection it belongs to.
class client_link {
 public:
  virtual ~client_link() = default;
  virtual nghttp2_session* client_session() = 0;
  virtual void client_kick() = 0;
  virtual const io::connection_context& context() const = 0;
  virtual boost::asio::any_io_executor executor() = 0;
};

/// Request and response of one stream: routed on its own, relayed between the client's session
/// and an upstream session with flow control end to end (a side's receive window is given back
/// only as the other side takes the bytes), traced and counted once when the client's stream
/// closes.
///
/// It goes through the exchange steps of every protocol: request head → route → upstream →
/// response head → body → end. The route and upstream steps run in a coroutine and return an
/// exchange_outcome; the later steps are driven by nghttp2's callbacks. Whatever ends the
/// exchange early becomes an outcome acted on in one place (conclude): `answer` (the proxy's own
/// response on the stream), `reset` (RST_STREAM to the client). Its correctness rests on
/// stream_state: one enum per direction, the upstream stream's state, the step and the outcome.
class exchange : public std::enable_shared_from_this<exchange> {
 public:
  exchange(client_link& client, std::int32_t stream_id);
  ~exchange();

  // Client side (called from the client session's callbacks).
  void on_request_field(std::string_view name, std::string_view value);
  /// The request head is complete: routes and forwards it (a coroutine of its own).
  void on_request_head(bool end_stream);
  void on_request_data(std::span<const std::uint8_t> data);
  void on_request_end();
  /// The client's stream closed (`code` as received or NO_ERROR). Finishes the exchange.
  void on_client_closed(std::uint32_t code);
  /// The client connection is gone.
  void detach_client();

  // Upstream side (called from the upstream session's callbacks).
  void on_response_field(std::string_view name, std::string_view value);
  void on_response_head(bool end_stream);
  void on_response_data(std::span<const std::uint8_t> data);
  void on_response_end();
  /// The upstream stream closed, or its connection went away.
  void on_upstream_closed(std::uint32_t code);

  /// Body pulls (nghttp2 data sources): up to `length` request bytes towards the upstream /
  /// response bytes towards the client, with nghttp2's data flags; NGHTTP2_ERR_DEFERRED when
  /// nothing is there yet.
  std::ptrdiff_t pull_request(std::uint8_t* buf, std::size_t length, std::uint32_t* flags);
  std::ptrdiff_t pull_response(std::uint8_t* buf, std::size_t length, std::uint32_t* flags);

  std::int32_t stream_id() const { return id_; }
  /// The request head is complete (later header blocks are trailers).
  bool head_done() const { return st_.request_head_done(); }
  /// The exchange's state (for tests and logs).
  const stream_state& state() const { return st_; }

 private:
  static boost::asio::awaitable<void> forward(std::shared_ptr<exchange> self);
  static boost::asio::awaitable<void> retry(std::shared_ptr<exchange> self,
                                            std::shared_ptr<upstream_conn> refused);
  // The steps run by the coroutines; each returns proceed() or how the exchange ends.
  boost::asio::awaitable<exchange_outcome> route_step();
  boost::asio::awaitable<exchange_outcome> upstream_step(const upstream_conn* avoid);
  exchange_outcome submit_upstream(const std::shared_ptr<upstream_conn>& up);
  // Acts on an outcome that ends the exchange early: answer or reset (`code`) the client stream.
  void conclude(exchange_outcome o, std::uint32_t code = 0);
  void answer();
  int submit_response(const field_list& fields, bool with_body);
  void rewind_request();
  // Client window credit for `n` request bytes leaving the queue (replayed bytes had theirs).
  std::size_t client_credit(std::size_t n);
  void give_back_request(std::size_t n);
  void give_back_response(std::size_t n);
  void resume_upstream();
  void resume_client();
  void reset_upstream(std::uint32_t code);
  void drop_request();
  bool client_open() const { return client_ != nullptr && st_.client_open(); }
  void begin_record();
  void finish();

  client_link* client_;
  io::connection_context ctx_;  // a copy: the stream may outlive its client connection
  std::int32_t id_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  trace::exchange_recorder rec_;  // builds the stream's record only when tracing is wanted
  stream_state st_;

  // The stream's fields live in this arena: a typical request and response head fit, so a stream
  // costs no allocation per field. (Freed with the stream; a larger head spills to the heap.)
  alignas(std::max_align_t) std::byte field_bytes_[2048];
  std::pmr::monotonic_buffer_resource fields_{field_bytes_, sizeof field_bytes_};
  field_list request_{&fields_};  // pseudo-fields and fields as received (then as forwarded)
  field_list request_trailers_{&fields_};
  body_queue request_body_;
  // What was sent upstream of the request body, kept until the response starts, so a stream
  // the upstream refused (REFUSED_STREAM: not processed) is sent again on another connection.
  // Empty once it may not be sent again (sent once more already, too long, a response came).
  std::optional<std::string> replay_{std::in_place};
  std::size_t replayed_pending_ = 0;  // queued bytes that came from replay_
  boost::asio::ip::tcp::endpoint target_;

  std::shared_ptr<upstream_conn> up_;
  std::int32_t up_id_ = 0;

  field_list response_{&fields_};
  field_list response_trailers_{&fields_};
  body_queue response_body_;
  int method_idx_ = 0;
  // Interim (1xx) heads are dropped, but their fields took arena memory that only comes back
  // with the stream: an upstream that sends more than this many is cut off.
  static constexpr int max_interim_heads = 16;
  int interim_heads_ = 0;
};

/// Submits a request with `fields` on `s`; its body is pulled from `body` (null: no body).
/// Returns the stream id or a negative nghttp2 error.
std::int32_t submit_request(nghttp2_session* s, const field_list& fields, exchange* body);

}  // namespace devspaces::proxy::h2
