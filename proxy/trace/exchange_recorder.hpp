#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

#include "proxy/exchange.hpp"
#include "proxy/routing/decision.hpp"
#include "proxy/trace/packed.hpp"
#include "proxy/trace/record.hpp"

namespace devspaces::proxy::trace {

class hub;
class lazy_json;

/// Who saw an exchange: the fixed part of every record of one connection.
struct exchange_identity {
  bool outbound = false;
  std::string_view pod;
  std::string_view space;
  std::string_view client;        ///< "ip:port"
  std::string_view original_dst;  ///< "ip:port"
};

/// The same with endpoints, which the record keeps as socket addresses (formatted when read).
struct exchange_endpoints {
  bool outbound = false;
  std::string_view pod;
  std::string_view space;
  const boost::asio::ip::tcp::endpoint& client;
  const boost::asio::ip::tcp::endpoint& original_dst;
};

/// Which message of the exchange a body or trailer belongs to.
enum class message_side { request, response };

/// Builds the trace record of one exchange step by step, for any protocol. When tracing is off
/// (no sink, or the sink wants nothing) begin() allocates nothing and every other call returns
/// at once: the data path calls it unconditionally and never touches a record itself.
///
/// Each call appends to the record's packed form (proxy/trace/packed.hpp); the recorder keeps
/// only what deciding the next step needs: body bytes counted and kept per side, and the body
/// policy's verdict (a form post's prefix is never written).
class exchange_recorder {
 public:
  /// `sink` may be null (tracing off). `body_limit` is --trace-body-bytes.
  exchange_recorder(hub* sink, std::size_t body_limit);

  exchange_recorder(exchange_recorder&&) noexcept;
  exchange_recorder& operator=(exchange_recorder&&) noexcept;
  ~exchange_recorder();

  /// Starts a record for the next exchange when the sink wants one; idempotent. The record is
  /// built in place where the sink keeps it (nothing is copied when it is published).
  void begin(const exchange_identity& who);
  /// The same from endpoints (cheaper: they are formatted only if the record is read).
  void begin(const exchange_endpoints& who);
  /// True when begin() would start a record now (tracing on and someone to read it).
  bool wanted() const;
  /// True while a record is being built.
  bool active() const { return entry_ != nullptr; }

  /// The protocol (`http/1.1`, `h2`, ...) and, for HTTP/2, the client side's stream id.
  void on_protocol(std::string_view protocol, std::optional<std::int32_t> stream_id);
  /// The request line, as far as it was parsed (also for a head that then failed).
  void on_request_line(std::string_view method, std::string_view target, std::string_view version);
  /// The whole request head (start line, authority, fields as received).
  void on_request_head(const request_view& head);
  /// The route step's answer; `added` is a field the proxy inserted into the request;
  /// `trace_id` the request's `traceparent` trace id.
  void on_route(const std::optional<std::string>& route_as, routing::route_source source,
                std::shared_ptr<const routing::route_decision> decision,
                std::optional<field_view> added,
                std::optional<std::string> trace_id = std::nullopt);
  /// The upstream actually used ("ip:port").
  void on_upstream(std::string_view endpoint);
  /// The same as an endpoint.
  void on_upstream(const boost::asio::ip::tcp::endpoint& endpoint);
  /// The response head the client gets (the upstream's, or the proxy's own error answer).
  void on_response_head(const response_view& head);
  /// Body bytes of one side, in order, as they stream (a prefix is kept, all are counted).
  void on_body(message_side side, std::span<const char> bytes);
  /// Several body segments at once (what one parser feed produced).
  void on_body(message_side side, std::span<const std::span<const char>> segments) {
    if (!entry_) return;
    for (auto s : segments) on_body(side, s);
  }
  /// Trailer fields of one side: the response's go to its `trailers`; the request's (which the
  /// record has no place for) are appended to its fields.
  void on_trailers(message_side side, std::span<const field_view> fields);
  /// Ends the record: duration, error code (null when none), then hands it to the sink.
  void finish(std::chrono::microseconds duration, const char* error);
  /// Drops a record being built without publishing it.
  void discard() { entry_.reset(); }

 private:
  // One message's body, as far as the record goes.
  struct body_state {
    std::uint64_t total = 0;  // bytes seen
    std::size_t kept = 0;     // bytes written to the record (at most body_limit_)
    bool typed = false;       // a Content-Type field was seen: `omit` is decided
    bool omit = false;        // the body policy keeps no prefix
  };
  void start(bool outbound, std::string_view pod, std::string_view space);
  void note_fields(body_state& body, std::span<const field_view> fields);
  packed::buffer& out();

  hub* sink_;
  std::size_t body_limit_;
  std::shared_ptr<lazy_json> entry_;  // only while an exchange is traced
  body_state request_body_;
  body_state response_body_;
  bool response_open_ = false;  // a response head was recorded
};

}  // namespace devspaces::proxy::trace
