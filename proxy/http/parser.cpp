#include "proxy/http/parser.hpp"

#include <llhttp.h>

#include <algorithm>
#include <cstring>

namespace devspaces::proxy::http {

namespace {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// Checks the raw head bytes in [b, e) for what llhttp may let through: NUL, control characters,
// bare CR, bare LF and obs-fold. Sets `head_len` when the terminating CRLFCRLF was found.
parse_error scan_head(const char* b, const char* e, std::size_t& head_len) {
  head_len = 0;
  bool line_start = false;  // true right after a CRLF that ended a non-empty line
  for (const char* p = b; p < e; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c == '\r') {
      if (p + 1 >= e) return parse_error::none;  // incomplete
      if (p[1] != '\n') return parse_error::bare_cr;
      ++p;
      if (line_start) {
        head_len = static_cast<std::size_t>(p + 1 - b);
        return parse_error::none;
      }
      line_start = true;
      continue;
    }
    if (c == '\n') return parse_error::bare_lf;
    if (line_start && (c == ' ' || c == '\t')) return parse_error::obs_fold;
    line_start = false;
    if (c == 0) return parse_error::nul_byte;
    if ((c < 0x20 && c != '\t') || c == 0x7f) return parse_error::invalid_header_char;
  }
  return parse_error::none;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view describe(parse_error e) {
  switch (e) {
    case parse_error::none:
      return "none";
    case parse_error::malformed:
      return "malformed message";
    case parse_error::bad_method:
      return "invalid method";
    case parse_error::bad_target:
      return "invalid request target";
    case parse_error::bad_version:
      return "invalid HTTP version";
    case parse_error::bad_status:
      return "invalid status line";
    case parse_error::invalid_header:
      return "invalid header name";
    case parse_error::invalid_header_char:
      return "invalid character in header";
    case parse_error::nul_byte:
      return "NUL byte in head";
    case parse_error::bare_cr:
      return "bare CR in head";
    case parse_error::bare_lf:
      return "bare LF in head";
    case parse_error::obs_fold:
      return "obsolete header line folding";
    case parse_error::both_cl_te:
      return "both Content-Length and Transfer-Encoding";
    case parse_error::duplicate_content_length:
      return "duplicate Content-Length";
    case parse_error::bad_content_length:
      return "invalid Content-Length";
    case parse_error::bad_transfer_encoding:
      return "unsupported Transfer-Encoding";
    case parse_error::bad_chunk_size:
      return "invalid chunk size";
    case parse_error::bad_chunk:
      return "invalid chunk framing";
    case parse_error::head_too_large:
      return "head too large";
    case parse_error::unexpected_eof:
      return "connection closed mid-message";
    case parse_error::internal:
      return "internal parser error";
  }
  return "unknown";
}

struct parser::impl : parser::message_state {
  llhttp_t p{};

  static impl& self(llhttp_t* p) { return *static_cast<impl*>(p->data); }

  std::string_view text(byte_span s) const { return {base + s.off, s.len}; }

  static std::uint32_t off(impl& s, const char* at) {
    return static_cast<std::uint32_t>(at - s.base);
  }
  static void extend(impl& s, byte_span& span, bool& open, const char* at, std::size_t len) {
    if (!open) {
      span.off = off(s, at);
      open = true;
    }
    span.len = static_cast<std::uint32_t>(at + len - (s.base + span.off));
  }
  static void extend_simple(impl& s, byte_span& span, const char* at, std::size_t len) {
    if (span.len == 0) span.off = off(s, at);
    span.len = static_cast<std::uint32_t>(at + len - (s.base + span.off));
  }

  static int on_method(llhttp_t* p, const char* at, std::size_t len) {
    auto& s = self(p);
    if (s.msg_start == nullptr) s.msg_start = at;
    extend_simple(s, s.head.method, at, len);
    return 0;
  }
  static int on_url(llhttp_t* p, const char* at, std::size_t len) {
    auto& s = self(p);
    extend_simple(s, s.head.target, at, len);
    return 0;
  }
  static int on_version(llhttp_t* p, const char* at, std::size_t len) {
    auto& s = self(p);
    if (s.head_complete) return 0;
    if (s.msg_start == nullptr && at - s.base >= 5) s.msg_start = at - 5;  // "HTTP/"
    extend_simple(s, s.head.version, at, len);
    return 0;
  }
  static int on_status(llhttp_t* p, const char* at, std::size_t len) {
    auto& s = self(p);
    extend_simple(s, s.head.reason, at, len);
    return 0;
  }
  static int on_header_field(llhttp_t* p, const char* at, std::size_t len) {
    auto& s = self(p);
    if (s.head_complete) return 0;  // trailers are forwarded, not recorded
    if (!s.in_name) {
      s.head.headers.emplace_back();
      s.in_value = false;
    }
    extend(s, s.head.headers.back().name, s.in_name, at, len);
    return 0;
  }
  static int on_header_field_complete(llhttp_t* p) {
    auto& s = self(p);
    if (s.head_complete || s.head.headers.empty()) return 0;
    s.in_name = false;
    auto& h = s.head.headers.back();
    h.value = {h.name.off + h.name.len, 0};
    return 0;
  }
  static int on_header_value(llhttp_t* p, const char* at, std::size_t len) {
    auto& s = self(p);
    // llhttp reports an empty value as a zero-length span past the line end: ignore it, the
    // value's position is fixed in on_header_value_complete.
    if (s.head_complete || s.head.headers.empty() || len == 0) return 0;
    extend(s, s.head.headers.back().value, s.in_value, at, len);
    return 0;
  }
  static int on_header_value_complete(llhttp_t* p) {
    auto& s = self(p);
    if (s.head_complete || s.head.headers.empty()) return 0;
    s.in_value = false;
    auto& h = s.head.headers.back();
    while (h.value.len > 0 && is_ows(s.base[h.value.off + h.value.len - 1])) --h.value.len;
    if (h.value.len == 0) {
      // An empty value sits right before the line's CR (after ':' and any OWS), so an edit
      // that fills it in stays on its own line.
      auto pos = h.name.off + h.name.len + 1;
      while (is_ows(s.base[pos])) ++pos;
      h.value.off = pos;
    }
    h.line = {h.name.off, h.value.off + h.value.len - h.name.off};
    return 0;
  }

  static int fail(impl& s, parse_error e) {
    s.error = e;
    return -1;
  }

  static int on_headers_complete(llhttp_t* p) {
    auto& s = self(p);
    s.head_complete = true;
    const char* start = s.msg_start != nullptr ? s.msg_start : s.base;
    std::size_t head_len = 0;
    if (auto e = scan_head(start, s.fed_end, head_len); e != parse_error::none) return fail(s, e);
    if (head_len == 0) return fail(s, parse_error::malformed);
    s.head.start = off(s, start);
    s.head.end = static_cast<std::uint32_t>(s.head.start + head_len);
    if (head_len > s.max_head) return fail(s, parse_error::head_too_large);
    s.head.http_major = llhttp_get_http_major(p);
    s.head.http_minor = llhttp_get_http_minor(p);
    s.head.status = s.k == kind::response ? llhttp_get_status_code(p) : 0;
    s.head.chunked = (p->flags & F_CHUNKED) != 0;

    // Framing checks done here rather than trusted to llhttp alone (request smuggling).
    const header_field* cl = nullptr;
    int te_count = 0;
    bool chunked_last = false;
    int chunked_count = 0;
    for (const auto& h : s.head.headers) {
      const auto name = s.text(h.name);
      const auto value = s.text(h.value);
      if (iequals(name, "content-length")) {
        if (cl != nullptr) return fail(s, parse_error::duplicate_content_length);
        cl = &h;
      } else if (iequals(name, "transfer-encoding")) {
        ++te_count;
        std::string_view rest = value;
        while (true) {
          const auto comma = rest.find(',');
          const auto token = trim(rest.substr(0, comma));
          const bool is_chunked = iequals(token, "chunked");
          if (is_chunked) ++chunked_count;
          if (!token.empty()) chunked_last = is_chunked;
          if (comma == std::string_view::npos) break;
          rest.remove_prefix(comma + 1);
        }
      } else if (iequals(name, "expect") && iequals(trim(value), "100-continue")) {
        s.head.expect_continue = true;
      }
    }
    if (cl != nullptr && te_count > 0) return fail(s, parse_error::both_cl_te);
    if (te_count > 0) {
      const bool request = s.k == kind::request;
      if (chunked_count > 1 || (chunked_count == 1 && !chunked_last)) {
        return fail(s, parse_error::bad_transfer_encoding);
      }
      if (request && !chunked_last) return fail(s, parse_error::bad_transfer_encoding);
    }
    if (cl != nullptr) {
      s.head.has_content_length = true;
      s.head.content_length = p->content_length;
    }

    if (s.k == kind::response) {
      const int st = s.head.status;
      if (s.connect_request && st >= 200 && st < 300) return 2;
      if (st == 101) return 0;
      if (s.head_request || (st >= 100 && st < 200) || st == 204 || st == 304) return 1;
    }
    return 0;
  }

  static int on_body(llhttp_t* p, const char* at, std::size_t len) {
    self(p).body.emplace_back(at, len);
    return 0;
  }

  static int on_message_complete(llhttp_t* p) {
    auto& s = self(p);
    s.done = true;
    s.keep_alive = llhttp_should_keep_alive(p) != 0;
    s.upgrade = llhttp_get_upgrade(p) != 0;
    return HPE_PAUSED;
  }

  static const llhttp_settings_t& settings() {
    static const llhttp_settings_t st = [] {
      llhttp_settings_t x;
      llhttp_settings_init(&x);
      x.on_method = &on_method;
      x.on_url = &on_url;
      x.on_version = &on_version;
      x.on_status = &on_status;
      x.on_header_field = &on_header_field;
      x.on_header_field_complete = &on_header_field_complete;
      x.on_header_value = &on_header_value;
      x.on_header_value_complete = &on_header_value_complete;
      x.on_headers_complete = &on_headers_complete;
      x.on_body = &on_body;
      x.on_message_complete = &on_message_complete;
      return x;
    }();
    return st;
  }

  static parse_error map(impl& s, llhttp_errno_t err) {
    if (s.error != parse_error::none) return s.error;
    if (!s.head_complete) {
      // llhttp stopped inside the head: name the precise shape when the raw bytes show it.
      const char* start = s.msg_start != nullptr ? s.msg_start : s.base;
      std::size_t ignored = 0;
      if (auto e = scan_head(start, s.fed_end, ignored); e != parse_error::none) return e;
    }
    const char* reason = llhttp_get_error_reason(&s.p);
    switch (err) {
      case HPE_INVALID_METHOD:
        return parse_error::bad_method;
      case HPE_INVALID_URL:
        return parse_error::bad_target;
      case HPE_INVALID_VERSION:
        return parse_error::bad_version;
      case HPE_INVALID_STATUS:
        return parse_error::bad_status;
      case HPE_INVALID_HEADER_TOKEN:
        return parse_error::invalid_header;
      case HPE_INVALID_CONTENT_LENGTH:
        return parse_error::bad_content_length;
      case HPE_UNEXPECTED_CONTENT_LENGTH:
        return (reason != nullptr && std::strstr(reason, "Duplicate") != nullptr)
                   ? parse_error::duplicate_content_length
                   : parse_error::both_cl_te;
      case HPE_INVALID_TRANSFER_ENCODING:
        return parse_error::bad_transfer_encoding;
      case HPE_INVALID_CHUNK_SIZE:
        return parse_error::bad_chunk_size;
      case HPE_INVALID_EOF_STATE:
        return parse_error::unexpected_eof;
      case HPE_STRICT:
      case HPE_LF_EXPECTED:
      case HPE_CR_EXPECTED:
      case HPE_UNEXPECTED_SPACE:
      case HPE_INVALID_CONSTANT:
        return s.head_complete ? parse_error::bad_chunk : parse_error::malformed;
      default:
        return s.head_complete ? parse_error::bad_chunk : parse_error::malformed;
    }
  }
};

parser::parser(kind k, std::size_t max_head_bytes) : kind_(k), max_head_(max_head_bytes) {}

parser::~parser() = default;

const message_head& parser::empty_head() {
  static const message_head h{};
  return h;
}

namespace {

// Released parser states wait in a small per-thread list (each worker is one thread) with their
// header and body vectors' capacity, so a busy keep-alive connection reuses one without
// allocating while an idle one holds none.
constexpr std::size_t max_spare_states = 64;
constexpr std::size_t max_kept_headers = 64;

std::vector<std::unique_ptr<parser::impl>>& spare_states() {
  thread_local std::vector<std::unique_ptr<parser::impl>> spare;
  return spare;
}

}  // namespace

parser::impl& parser::state() {
  if (!impl_) {
    auto& spare = spare_states();
    if (!spare.empty()) {
      impl_ = std::move(spare.back());
      spare.pop_back();
    } else {
      impl_ = std::make_unique<impl>();
      impl_->head.headers.reserve(16);
    }
    impl_->k = kind_;
    impl_->max_head = max_head_;
    st_ = impl_.get();
  }
  return *impl_;
}

void parser::release() {
  st_ = nullptr;
  if (!impl_) return;
  auto& spare = spare_states();
  if (spare.size() < max_spare_states && impl_->head.headers.capacity() <= max_kept_headers) {
    spare.push_back(std::move(impl_));
  }
  impl_.reset();
}

void parser::begin_message(const char* base, bool head_request, bool connect_request) {
  auto& s = state();
  llhttp_init(&s.p, kind_ == kind::request ? HTTP_REQUEST : HTTP_RESPONSE, &impl::settings());
  s.p.data = &s;
  s.base = base;
  s.msg_start = nullptr;
  s.fed_end = base;
  s.head_request = head_request;
  s.connect_request = connect_request;
  s.head_complete = false;
  s.done = false;
  s.keep_alive = false;
  s.upgrade = false;
  s.in_name = false;
  s.in_value = false;
  s.head_seen = 0;
  // Reset the head but keep the header vector's capacity while the state lives.
  auto headers = std::move(s.head.headers);
  headers.clear();
  s.head = message_head{};
  s.head.headers = std::move(headers);
  s.error = parse_error::none;
  s.body.clear();
}

feed_result parser::feed(const char* data, std::size_t len) {
  if (!impl_) begin_message(nullptr);
  auto& s = *impl_;
  s.body.clear();
  feed_result r;
  if (s.error != parse_error::none) {
    r.event = parse_event::error;
    return r;
  }
  if (s.done) {
    r.event = parse_event::message_complete;
    return r;
  }
  const bool had_head = s.head_complete;
  s.fed_end = data + len;
  const auto err = llhttp_execute(&s.p, data, len);
  r.head_completed = s.head_complete && !had_head;
  if (err == HPE_OK) {
    r.consumed = len;
    if (!s.head_complete) {
      s.head_seen += len;
      if (s.head_seen > max_head_) {
        s.error = parse_error::head_too_large;
        r.event = parse_event::error;
        return r;
      }
    }
    r.event = parse_event::need_more;
    return r;
  }
  const char* pos = llhttp_get_error_pos(&s.p);
  r.consumed = pos != nullptr ? static_cast<std::size_t>(pos - data) : len;
  if ((err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) && s.done) {
    r.event = parse_event::message_complete;
    return r;
  }
  s.error = impl::map(s, err);
  if (s.error == parse_error::none) s.error = parse_error::internal;
  r.event = parse_event::error;
  return r;
}

parse_event parser::finish() {
  if (!impl_) begin_message(nullptr);
  auto& s = *impl_;
  s.body.clear();
  if (s.error != parse_error::none) return parse_event::error;
  if (s.done) return parse_event::message_complete;
  const auto err = llhttp_finish(&s.p);
  if (s.done) return parse_event::message_complete;
  if (err == HPE_OK && s.head_seen == 0 && !s.head_complete) return parse_event::need_more;
  s.error = parse_error::unexpected_eof;
  return parse_event::error;
}

bool parser::body_until_eof() const {
  return impl_ && impl_->head_complete && !impl_->done && llhttp_message_needs_eof(&impl_->p) != 0;
}

const header_field* parser::find_header(std::string_view name) const {
  for (const auto& h : head().headers) {
    if (iequals(text(h.name), name)) return &h;
  }
  return nullptr;
}

}  // namespace devspaces::proxy::http
