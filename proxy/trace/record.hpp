#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/routing/decision.hpp"

namespace devspaces::proxy::trace {

using header_list = std::vector<std::pair<std::string, std::string>>;

/// Captured body prefix of one message (at most --trace-body-bytes).
struct body_capture {
  std::uint64_t total_bytes = 0;  ///< all body bytes seen (trace field body_bytes)
  std::string prefix;             ///< raw bytes kept; encoded (text or base64) when serialised
  bool truncated = false;
  /// The body policy withheld the prefix (form posts may carry credentials): shown as
  /// "body_omitted":true with an empty body.
  bool omitted = false;

  /// Adds streamed body bytes (one call per chunk/segment, in order): counts all of them and
  /// keeps the first `limit` bytes (--trace-body-bytes). Copies at most `limit` bytes in total.
  void append(std::span<const char> data, std::size_t limit) {
    total_bytes += data.size();
    if (prefix.size() < limit) {
      const std::size_t room = limit - prefix.size();
      const std::size_t n = data.size() < room ? data.size() : room;
      if (prefix.capacity() == 0) prefix.reserve(n);
      prefix.append(data.data(), n);
    }
    truncated = total_bytes > prefix.size();
  }
};

/// An endpoint as text ("10.0.0.7:80", "[fd00::5]:40000"), held inline: a record carries three
/// per exchange, and strings of that length would be a heap allocation each. Longer text is cut
/// at `capacity` (no real address reaches it).
class address_text {
 public:
  static constexpr std::size_t capacity = 80;
  address_text() = default;
  /// From text (implicit, so records are filled like strings).
  address_text(std::string_view s) { assign(s); }  // NOLINT(google-explicit-constructor)
  /// Copies only the text's bytes (records are reset and moved per exchange).
  address_text(const address_text& o) { assign(o.view()); }
  address_text& operator=(const address_text& o) {
    if (this != &o) assign(o.view());
    return *this;
  }
  /// Replaces the text.
  address_text& operator=(std::string_view s) {
    assign(s);
    return *this;
  }
  /// The text.
  std::string_view view() const { return {buf_, len_}; }
  /// No endpoint (serialised as null).
  bool empty() const { return len_ == 0; }
  /// No endpoint again.
  void clear() { len_ = 0; }

 private:
  void assign(std::string_view s) {
    len_ = s.size() < capacity ? s.size() : capacity;
    if (len_ != 0) std::memcpy(buf_, s.data(), len_);  // an empty view's data may be null
  }
  char buf_[capacity];  // the first len_ bytes are the text
  std::size_t len_ = 0;
};

/// Request side of a trace record. Header names as received (serialised lowercase).
struct request_info {
  std::string method;
  std::string target;
  std::string version;  ///< "1.1", "1.0"
  std::string host;
  header_list headers;
  body_capture body;
};

/// Response side of a trace record.
struct response_info {
  int status = 0;
  std::string reason;
  std::string version;
  header_list headers;
  body_capture body;
  header_list trailers;  ///< trailer fields (HTTP/2 trailers, chunked trailers); empty when none
};

/// One HTTP exchange seen by one proxy side (proxy/trace/README.md, "Raw records"). The data
/// path writes it in its packed form (packed.hpp); a new field needs an item there too.
struct record {
  std::string id;  ///< short exchange id, unique per process
  std::chrono::system_clock::time_point ts;
  std::chrono::microseconds duration{0};
  bool outbound = false;  ///< direction
  std::string pod;
  std::string space;
  address_text client;        ///< "ip:port" / "[v6]:port"
  address_text original_dst;  ///< "ip:port"
  address_text upstream;      ///< "ip:port" actually used; empty when none
  std::optional<std::string> route_as;
  routing::route_source route_as_source = routing::route_source::none;
  std::shared_ptr<const routing::route_decision> route = routing::no_decision();  ///< never null
  request_info request;
  std::optional<response_info> response;
  std::optional<std::string> error;  ///< short code, e.g. "upstream_connect_refused"
  /// "h2" for HTTP/2 streams; empty: "http/" + request.version ("http/1.1", "http/1.0").
  std::string protocol;
  std::optional<std::int32_t> stream_id;  ///< HTTP/2: the client side's stream id
  /// The W3C trace id of the request's `traceparent` (32 hex digits), when it had a valid one.
  std::optional<std::string> trace_id;
};

/// Serialisation settings shared by every record of a process.
struct json_options {
  std::vector<std::string> redact_headers;  ///< lowercase names whose values become "[redacted]"
};

/// The record as one line of JSON (no trailing newline): "v":1, lowercase header
/// names, redacted values, body prefix as UTF-8 text or base64 with "body_encoding":"base64".
std::string to_json(const record& r, const json_options& opts);

/// Appends to_json(r, opts) to `out` (lets callers reuse a buffer).
void append_json(std::string& out, const record& r, const json_options& opts);

/// A short exchange id ("gyk"): base-36 of a per-process counter that starts at a random
/// 3-digit value, so ids are unique per process and rarely collide between pods.
std::string next_id();

/// RFC 3339 UTC with microseconds: "2026-11-21T20:47:09.700123Z".
std::string format_timestamp(std::chrono::system_clock::time_point ts);

/// True when `bytes` is shown as text: valid UTF-8 without control characters other than
/// tab, newline, carriage return, form feed and escape. With `cut_allowed`, an incomplete
/// multi-byte sequence at the very end (a prefix cut mid-character) is tolerated.
bool is_text(std::string_view bytes, bool cut_allowed);

/// Standard base64 with padding (RFC 4648 §4).
std::string base64_encode(std::string_view bytes);

}  // namespace devspaces::proxy::trace
