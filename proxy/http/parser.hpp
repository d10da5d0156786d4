#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "common/ascii.hpp"

namespace devspaces::proxy::http {

/// Why a message was rejected. Request errors answer 400 (431 for head_too_large, 505 for
/// unsupported_version: see status_for()); response errors answer 502.
enum class parse_error {
  none = 0,
  malformed,              ///< start line or header syntax llhttp rejects
  bad_method,             ///< method token not understood
  bad_target,             ///< request target with invalid characters
  bad_version,            ///< version not of the form HTTP/DIGIT.DIGIT, or none (HTTP/0.9)
  unsupported_version,    ///< well-formed version whose major is not 1 (HTTP/2.0, HTTP/0.9)
  bad_request_line,       ///< not exactly "method SP target SP version CRLF"
  missing_host,           ///< HTTP/1.1 request without Host
  duplicate_host,         ///< more than one Host field
  bad_host,               ///< Host or target authority that is not host[:port]
  bad_connection_option,  ///< Connection names a field every hop needs (Host, framing)
  forbidden_trailer,      ///< request trailer field that may not appear in trailers
  bad_status,             ///< response status line
  invalid_header,         ///< bad or empty header name token (includes "Name : value")
  invalid_header_char,    ///< control character in a header value
  nul_byte,               ///< NUL anywhere in the head
  bare_cr,                ///< CR not followed by LF
  bare_lf,                ///< LF not preceded by CR
  obs_fold,               ///< header line continued with leading whitespace
  both_cl_te,             ///< Content-Length and Transfer-Encoding together
  duplicate_content_length,
  bad_content_length,
  bad_transfer_encoding,  ///< request Transfer-Encoding whose final coding is not chunked
  bad_chunk_size,         ///< not hex, over 63 bits, or more than 16 digits
  bad_chunk,              ///< chunk framing (missing CRLF after data, bad or overlong extension)
  head_too_large,         ///< head over --max-header-bytes
  unexpected_eof,         ///< connection closed mid-message
  internal,
};

/// Short reason phrase for error bodies ("both Content-Length and Transfer-Encoding").
std::string_view describe(parse_error e);

/// The status a request rejected with `e` is answered with: 431 for an oversized head, 505 for
/// an HTTP major version other than 1, else 400.
int status_for(parse_error e);

/// A byte range inside the connection buffer, as offsets from the buffer's base.
struct byte_span {
  std::uint32_t off = 0;
  std::uint32_t len = 0;
};

/// One header line of a head: name and value (value without surrounding whitespace).
struct header_field {
  byte_span name;
  byte_span value;
  byte_span line;  ///< whole "Name: value" line without its CRLF
};

/// A parsed message head, all fields as spans into the buffer the bytes were parsed in.
struct message_head {
  std::uint32_t start = 0;  ///< first byte of the start line
  std::uint32_t end = 0;    ///< one past the CRLF that ends the head
  byte_span method;         ///< requests
  byte_span target;         ///< requests
  byte_span version;        ///< "1.1"
  byte_span reason;         ///< responses
  int status = 0;           ///< responses
  int http_major = 1;
  int http_minor = 1;
  std::vector<header_field> headers;
  bool chunked = false;
  bool has_content_length = false;
  std::uint64_t content_length = 0;
  bool expect_continue = false;  ///< "Expect: 100-continue"
  /// Requests: the authority the origin will use. The target's authority for absolute-form and
  /// authority-form (CONNECT) targets, else the Host field's value (empty when none).
  byte_span authority;
  bool authority_from_target = false;  ///< `authority` lies in the target
  int host_index = -1;                 ///< index of the (single) Host field in `headers`
  /// Requests: the message asks to switch to a protocol other than h2c (Connection: upgrade
  /// and an Upgrade field naming one), or is a CONNECT.
  bool upgrade_requested = false;
};

/// What one feed() call ended on.
enum class parse_event {
  need_more,         ///< every byte consumed, message not done
  message_complete,  ///< parsing stopped right after the message; `consumed` ends it
  error,
};

/// Outcome of feed(): the event, how many input bytes were consumed and whether the head
/// completed during this call.
struct feed_result {
  parse_event event = parse_event::need_more;
  std::size_t consumed = 0;
  bool head_completed = false;
};

/// Streaming HTTP/1.x parser over llhttp in strict mode. The head is recorded as spans into
/// the caller's buffer (never copied); body bytes are reported as spans of the fed data.
/// Parsing stops at the end of each message so the bytes of a pipelined next message stay
/// with the caller. The per-message state (llhttp, header spans) lives in one allocation made
/// by begin_message() and freed by release(), so an idle keep-alive connection holds none.
class parser {
 public:
  enum class kind { request, response };

  /// A parser of `k` messages whose head may be at most `max_head_bytes` long. Allocates
  /// nothing until the first begin_message() (or feed()).
  parser(kind k, std::size_t max_head_bytes);
  ~parser();
  parser(const parser&) = delete;
  parser& operator=(const parser&) = delete;

  /// Starts a new message whose bytes are fed from buffer `base` onwards (offsets are relative
  /// to it). For responses, `head_request` / `connect_request` tell how to frame the body.
  void begin_message(const char* base, bool head_request = false, bool connect_request = false);

  /// Frees the per-message state. Until the next begin_message() the parser reads as a fresh
  /// one (no head, no body, no error).
  void release();

  /// True between begin_message() (or the first feed()) and release().
  bool active() const { return st_ != nullptr; }

  /// Parses `data` (which lies inside the buffer given to begin_message, contiguous with what
  /// was fed before for the current head).
  feed_result feed(const char* data, std::size_t len);

  /// The peer closed: completes a close-delimited message or reports unexpected_eof.
  parse_event finish();

  /// Body bytes seen by the last feed()/finish() call (spans of the fed data).
  std::span<const std::span<const char>> body() const {
    return st_ != nullptr ? std::span<const std::span<const char>>(st_->body)
                          : std::span<const std::span<const char>>();
  }

  bool head_complete() const { return st_ != nullptr && st_->head_complete; }
  bool message_done() const { return st_ != nullptr && st_->done; }
  const message_head& head() const { return st_ != nullptr ? st_->head : empty_head(); }
  parse_error error() const { return st_ != nullptr ? st_->error : parse_error::none; }

  /// After message_complete: may the connection carry another message.
  bool keep_alive() const { return st_ != nullptr && st_->keep_alive; }
  /// After message_complete: the message asks to switch protocols (Upgrade or CONNECT).
  bool upgrade() const { return st_ != nullptr && st_->upgrade; }
  /// The body runs until the peer closes (responses without length).
  bool body_until_eof() const;

  /// Bytes of the current head fed so far (for the --max-header-bytes check).
  std::size_t head_bytes_seen() const { return st_ != nullptr ? st_->head_seen : 0; }

  /// Text of a span of the current buffer.
  std::string_view text(byte_span s) const {
    return st_ != nullptr ? std::string_view(st_->base + s.off, s.len) : std::string_view();
  }
  /// First header named `name` (ASCII case-insensitive), or null.
  const header_field* find_header(std::string_view name) const;

  /// The state of one message; the llhttp part is added by the implementation.
  struct message_state {
    kind k = kind::request;
    std::size_t max_head = 0;
    const char* base = nullptr;
    const char* msg_start = nullptr;
    const char* fed_end = nullptr;
    bool head_request = false;
    bool connect_request = false;
    bool head_complete = false;
    bool done = false;
    bool keep_alive = false;
    bool upgrade = false;
    bool in_name = false;
    bool in_value = false;
    std::size_t head_seen = 0;
    bool line_checked = false;  // the request line passed check_request_line()
    // Chunk framing bounds: positions counted from the message's first fed byte.
    const char* feed_data = nullptr;  // start of the current feed()
    std::uint64_t fed_before = 0;     // message bytes fed before the current feed()
    std::uint64_t body_start = 0;     // position just past the head
    std::uint64_t last_data_end = 0;  // position just past the last chunk's data
    std::uint64_t ext_start = 0;      // position of the current chunk's first extension byte
    std::uint32_t ext_bytes = 0;      // extension bytes of the current chunk-size line
    bool chunk_data_pending = false;  // a chunk header was parsed, its data not yet seen
    bool seen_chunk = false;
    std::uint32_t trailer_name_len = 0;
    bool trailer_value_open = false;  // a trailer value's bytes are being reported
    std::uint64_t trailer_value_end = 0;
    char trailer_name[32] = {};
    message_head head;
    parse_error error = parse_error::none;
    std::vector<std::span<const char>> body;
  };
  struct impl;

 private:
  static const message_head& empty_head();
  impl& state();

  std::unique_ptr<impl> impl_;
  message_state* st_ = nullptr;  // the message_state part of *impl_
  kind kind_;
  std::size_t max_head_;
};

/// ASCII case-insensitive comparison of header names and tokens.
using common::iequals;

}  // namespace devspaces::proxy::http
