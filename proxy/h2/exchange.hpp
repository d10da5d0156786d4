#pragma once

// One HTTP/2 stream of a client connection and the upstream stream it was routed to.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proxy/h2/ng.hpp"
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
  bool head_done() const { return head_done_; }

 private:
  static boost::asio::awaitable<void> forward(std::shared_ptr<exchange> self);
  static boost::asio::awaitable<void> retry(std::shared_ptr<exchange> self,
                                            std::shared_ptr<upstream_conn> refused);
  boost::asio::awaitable<void> connect_and_submit(const upstream_conn* avoid);
  bool can_retry(std::uint32_t code) const;
  void rewind_request();
  // Client window credit for `n` request bytes leaving the queue (replayed bytes had theirs).
  std::size_t client_credit(std::size_t n);
  boost::asio::awaitable<bool> route(boost::asio::ip::tcp::endpoint& target);
  void submit_upstream(const std::shared_ptr<upstream_conn>& up);
  void answer_error(int status, std::string_view reason, const char* code);
  void discard_request();
  bool client_open() const { return client_ != nullptr && !client_closed_; }
  void begin_record();
  void finish(const char* error);

  client_link* client_;
  io::connection_context ctx_;  // a copy: the stream may outlive its client connection
  std::int32_t id_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  trace::exchange_recorder rec_;  // builds the stream's record only when tracing is wanted

  field_list request_;  // pseudo-fields and fields as received (then as forwarded)
  field_list request_trailers_;
  body_queue request_body_;
  bool head_done_ = false;
  bool request_end_ = false;
  bool request_sent_end_ = false;
  bool discarding_ = false;
  // What was sent upstream of the request body, kept until the response starts, so a stream
  // the upstream refused (REFUSED_STREAM: not processed) is sent again on another connection.
  std::string sent_body_;
  bool replayable_ = true;
  bool retried_ = false;
  std::size_t replayed_pending_ = 0;  // queued bytes that came from sent_body_
  boost::asio::ip::tcp::endpoint target_;

  std::shared_ptr<upstream_conn> up_;
  std::int32_t up_id_ = 0;
  bool up_closed_ = false;
  bool abandoned_ = false;  // the proxy answered itself; upstream events are ignored

  field_list response_;
  field_list response_trailers_;
  body_queue response_body_;
  int status_ = 0;
  bool response_head_done_ = false;
  bool response_head_sent_ = false;
  bool response_end_ = false;
  bool response_sent_end_ = false;

  bool client_closed_ = false;
  bool finished_ = false;
  const char* error_ = nullptr;
  int method_idx_ = 0;
};

/// Submits a request with `fields` on `s`; its body is pulled from `body` (null: no body).
/// Returns the stream id or a negative nghttp2 error.
std::int32_t submit_request(nghttp2_session* s, const field_list& fields, exchange* body);

}  // namespace devspaces::proxy::h2
