#include "proxy/http/parser.hpp"

#include <arpa/inet.h>
#include <llhttp.h>

#include <algorithm>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// The first byte in [p, e) that is a control character (below 0x20, or DEL): the only bytes
// scan_head has to look at when not at the start of a line. 16 bytes at a time.
const char* next_control(const char* p, const char* e) {
#if defined(__SSE2__)
  const __m128i below_space = _mm_set1_epi8(0x1f);
  const __m128i del = _mm_set1_epi8(0x7f);
  for (; e - p >= 16; p += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    // Unsigned v <= 0x1f exactly where min(v, 0x1f) == v.
    const __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, below_space), v);
    const int mask = _mm_movemask_epi8(_mm_or_si128(ctl, _mm_cmpeq_epi8(v, del)));
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
  }
#endif
  for (; p < e; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c < 0x20 || c == 0x7f) return p;
  }
  return e;
}

// Checks the raw head bytes in [b, e) for what llhttp may let through: NUL, control characters,
// bare CR, bare LF and obs-fold. Sets `head_len` when the terminating CRLFCRLF was found.
parse_error scan_head(const char* b, const char* e, std::size_t& head_len) {
  head_len = 0;
  bool line_start = false;  // true right after a CRLF that ended a non-empty line
  for (const char* p = b; p < e; ++p) {
    // Inside a line only control characters matter: skip to the next one.
    if (!line_start) {
      p = next_control(p, e);
      if (p == e) break;
    }
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

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 9110 tchar.
bool is_tchar(char c) {
  if (is_digit(c) || is_alpha(c)) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

// Longest chunk-size accepted: 16 hex digits hold every size that fits 63 bits.
constexpr std::size_t max_chunk_size_digits = 16;
// Extension bytes accepted on one chunk-size line.
constexpr std::uint32_t max_chunk_ext_bytes = 256;

// host [":" port] as RFC 9112 §3.2 allows in Host and in a target's authority, stricter on
// reg-name: only unreserved characters and percent-encodings (no sub-delims such as ',' that
// other parsers read as list separators), a non-empty host and, when present, a port of 1-5
// digits up to 65535.
bool valid_host_port(std::string_view v, bool port_required) {
  if (v.empty()) return false;
  std::string_view host;
  std::string_view rest;
  if (v.front() == '[') {
    const auto close = v.find(']');
    if (close == std::string_view::npos) return false;
    const auto lit = v.substr(1, close - 1);
    if (lit.empty() || lit.size() >= 64) return false;
    char tmp[64];
    std::memcpy(tmp, lit.data(), lit.size());
    tmp[lit.size()] = '\0';
    in6_addr a6{};
    if (::inet_pton(AF_INET6, tmp, &a6) != 1) return false;
    rest = v.substr(close + 1);
  } else {
    const auto colon = v.find(':');
    host = v.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view() : v.substr(colon);
    if (host.empty()) return false;
    for (std::size_t i = 0; i < host.size(); ++i) {
      const char c = host[i];
      if (is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~') continue;
      if (c == '%' && i + 2 < host.size() && is_hex(host[i + 1]) && is_hex(host[i + 2])) {
        i += 2;
        continue;
      }
      return false;
    }
  }
  if (rest.empty()) return !port_required;
  if (rest.front() != ':') return false;
  const auto port = rest.substr(1);
  if (port.empty() || port.size() > 5) return false;
  unsigned value = 0;
  for (char c : port) {
    if (!is_digit(c)) return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value <= 65535;
}

// What check_request_line() found in a request line.
struct request_line {
  parse_error error = parse_error::none;
  std::size_t authority_off = 0;  // within the line
  std::size_t authority_len = 0;
  bool authority_from_target = false;
};

// llhttp skips empty lines before a request line; each of them must end in CRLF too (a bare
// LF there is answered like one inside the head). [base, msg_start) holds those lines.
bool bare_lf_before(const char* base, const char* msg_start) {
  if (base == nullptr || msg_start == nullptr) return false;
  for (const char* q = base; q < msg_start; ++q)
    if (*q == '\n' && (q == base || q[-1] != '\r')) return true;
  return false;
}

// Checks a request line (without its CRLF) against RFC 9112 §3: method SP request-target SP
// HTTP-version, single spaces, a target form that fits the method, "HTTP/" DIGIT "." DIGIT
// with major 1. llhttp accepts double spaces, a missing version (HTTP/0.9) and any target on
// any method; this is the one place where the line is held to the grammar.
request_line check_request_line(std::string_view line) {
  request_line r;
  std::size_t i = 0;
  while (i < line.size() && is_tchar(line[i])) ++i;
  const auto method = line.substr(0, i);
  if (method.empty() || i >= line.size() || line[i] != ' ') {
    r.error = method.empty() ? parse_error::bad_method : parse_error::bad_request_line;
    return r;
  }
  ++i;
  const auto target_off = i;
  while (i < line.size() && line[i] != ' ') ++i;
  const auto target = line.substr(target_off, i - target_off);
  if (target.empty()) {
    r.error = parse_error::bad_request_line;
    return r;
  }
  if (i >= line.size()) {
    r.error = parse_error::bad_version;  // "GET /": an HTTP/0.9 simple request
    return r;
  }
  const auto version = line.substr(i + 1);
  if (version.empty() || version.front() == ' ') {
    r.error = parse_error::bad_request_line;
    return r;
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !is_digit(version[5]) ||
      version[6] != '.' || !is_digit(version[7])) {
    r.error = parse_error::bad_version;
    return r;
  }
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f ||
        c == '#') {
      r.error = parse_error::bad_target;
      return r;
    }
  }
  if (method == "CONNECT") {
    if (!valid_host_port(target, true)) {
      r.error = parse_error::bad_target;
      return r;
    }
    r.authority_off = target_off;
    r.authority_len = target.size();
    r.authority_from_target = true;
  } else if (target == "*") {
    if (method != "OPTIONS") r.error = parse_error::bad_target;
  } else if (target.front() != '/') {
    // absolute-form: only http and https URIs, with an authority and no userinfo.
    const auto colon = target.find(':');
    const auto scheme = target.substr(0, colon);
    if (colon == std::string_view::npos || !(iequals(scheme, "http") || iequals(scheme, "https")) ||
        target.substr(colon + 1, 2) != "//") {
      r.error = parse_error::bad_target;
      return r;
    }
    const auto auth_off = colon + 3;
    auto auth_end = target.find_first_of("/?", auth_off);
    if (auth_end == std::string_view::npos) auth_end = target.size();
    const auto authority = target.substr(auth_off, auth_end - auth_off);
    if (authority.find('@') != std::string_view::npos) {
      r.error = parse_error::bad_target;
      return r;
    }
    if (!valid_host_port(authority, false)) {
      r.error = parse_error::bad_host;
      return r;
    }
    r.authority_off = target_off + auth_off;
    r.authority_len = authority.size();
    r.authority_from_target = true;
  }
  if (version[5] != '1') r.error = parse_error::unsupported_version;
  return r;
}

// "Content_Length" / "Transfer_Encoding": other fields to us, but CGI-style servers map '_' to
// '-' and would frame the body by them.
bool framing_name_in_disguise(std::string_view name) {
  if (name.find('_') == std::string_view::npos) return false;
  const auto same = [name](std::string_view target) {
    if (name.size() != target.size()) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
      const char c = name[i] == '_' ? '-' : lower(name[i]);
      if (c != target[i]) return false;
    }
    return true;
  };
  return same("content-length") || same("transfer-encoding");
}

// Checks a status line (without its CRLF): "HTTP/" DIGIT "." DIGIT SP 3DIGIT, then SP and a
// reason or nothing, with the code in 100-599 (RFC 9112 §4, RFC 9110 §15). llhttp takes one to
// three digits ("HTTP/1.1 2").
bool valid_status_line(std::string_view line) {
  if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || !is_digit(line[5]) || line[6] != '.' ||
      !is_digit(line[7]) || line[8] != ' ') {
    return false;
  }
  if (!is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11])) return false;
  if (line.size() > 12 && line[12] != ' ') return false;
  return line[9] >= '1' && line[9] <= '5';
}

// Trailer fields a request may not carry (RFC 9110 §6.5.1): framing, routing, connection
// management, request modifiers, authentication and content metadata. A request with one is
// rejected rather than forwarded (the body is relayed as received, so dropping a field would
// mean re-framing it).
bool forbidden_in_trailer(std::string_view name) {
  static constexpr std::string_view names[] = {
      "content-length",
      "transfer-encoding",
      "host",
      "connection",
      "keep-alive",
      "proxy-connection",
      "te",
      "upgrade",
      "trailer",
      "content-encoding",
      "content-type",
      "content-range",
      "expect",
      "max-forwards",
      "range",
      "authorization",
      "proxy-authorization",
      "cookie",
      "cache-control",
      "pragma",
      "http2-settings",
      "age",
      "expires",
      "date",
      "location",
      "retry-after",
      "vary",
      "warning",
      "www-authenticate",
      "proxy-authenticate",
      "set-cookie",
      "content-location",
  };
  for (auto n : names) {
    if (iequals(name, n)) return true;
  }
  return name.size() >= 3 && iequals(name.substr(0, 3), "if-");
}
}  // namespace

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
    case parse_error::unsupported_version:
      return "HTTP version not supported";
    case parse_error::bad_request_line:
      return "malformed request line";
    case parse_error::missing_host:
      return "missing Host";
    case parse_error::duplicate_host:
      return "more than one Host";
    case parse_error::bad_host:
      return "invalid Host";
    case parse_error::bad_connection_option:
      return "Connection names an end-to-end field";
    case parse_error::forbidden_trailer:
      return "field not allowed in trailers";
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

int status_for(parse_error e) {
  switch (e) {
    case parse_error::head_too_large:
      return 431;
    case parse_error::unsupported_version:
      return 505;
    default:
      return 400;
  }
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
    if (s.head_complete) {
      // Trailers are forwarded, not recorded; their names are checked.
      for (std::size_t i = 0; i < len; ++i, ++s.trailer_name_len) {
        if (s.trailer_name_len < sizeof s.trailer_name) s.trailer_name[s.trailer_name_len] = at[i];
      }
      return 0;
    }
    if (!s.in_name) {
      s.head.headers.emplace_back();
      s.in_value = false;
    }
    extend(s, s.head.headers.back().name, s.in_name, at, len);
    return 0;
  }
  static int on_header_field_complete(llhttp_t* p) {
    auto& s = self(p);
    if (s.head_complete) {
      const auto n = s.trailer_name_len;
      s.trailer_name_len = 0;
      if (n == 0) return fail(s, parse_error::invalid_header);
      if (s.k == kind::request && n <= sizeof s.trailer_name &&
          forbidden_in_trailer(std::string_view(s.trailer_name, n))) {
        return fail(s, parse_error::forbidden_trailer);
      }
      return 0;
    }
    if (!s.in_name || s.head.headers.empty() || s.head.headers.back().name.len == 0) {
      return fail(s, parse_error::invalid_header);  // empty field name
    }
    s.in_name = false;
    auto& h = s.head.headers.back();
    h.value = {h.name.off + h.name.len, 0};
    return 0;
  }
  static int on_header_value(llhttp_t* p, const char* at, std::size_t len) {
    auto& s = self(p);
    if (s.head_complete) {
      // Trailer values: llhttp passes an obs-fold through as a second piece of the value, not
      // contiguous with the first (the CRLF lies between them).
      const auto pos = s.pos_of(at);
      if (s.trailer_value_open && pos != s.trailer_value_end) return fail(s, parse_error::obs_fold);
      s.trailer_value_open = true;
      s.trailer_value_end = pos + len;
      for (std::size_t i = 0; i < len; ++i) {
        const auto c = static_cast<unsigned char>(at[i]);
        if (c == '\r' || c == '\n') return fail(s, parse_error::obs_fold);
        if (c == 0) return fail(s, parse_error::nul_byte);
        if ((c < 0x20 && c != '\t') || c == 0x7f) return fail(s, parse_error::invalid_header_char);
      }
      return 0;
    }
    // llhttp reports an empty value as a zero-length span past the line end: ignore it, the
    // value's position is fixed in on_header_value_complete.
    if (s.head.headers.empty() || len == 0) return 0;
    extend(s, s.head.headers.back().value, s.in_value, at, len);
    return 0;
  }
  static int on_header_value_complete(llhttp_t* p) {
    auto& s = self(p);
    s.trailer_value_open = false;
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
    if (s.k == kind::response) {
      const std::string_view head_text(start, head_len);
      if (!valid_status_line(head_text.substr(0, head_text.find("\r\n")))) {
        return fail(s, parse_error::bad_status);
      }
    }
    if (s.k == kind::request) {
      if (bare_lf_before(s.base, start)) return fail(s, parse_error::bare_lf);
      const std::string_view head_text(start, head_len);
      const auto line = head_text.substr(0, head_text.find("\r\n"));
      const auto rl = check_request_line(line);
      if (rl.error != parse_error::none) return fail(s, rl.error);
      s.line_checked = true;
      if (rl.authority_from_target) {
        s.head.authority = {static_cast<std::uint32_t>(s.head.start + rl.authority_off),
                            static_cast<std::uint32_t>(rl.authority_len)};
        s.head.authority_from_target = true;
      }
    }
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
      if (framing_name_in_disguise(name)) return fail(s, parse_error::invalid_header);
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
    if (s.k == kind::request) {
      if (auto e = check_request_fields(s); e != parse_error::none) return fail(s, e);
      if (te_count > 0 && s.head.http_minor == 0) {
        // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing.
        return fail(s, parse_error::bad_transfer_encoding);
      }
    }
    if (cl != nullptr && te_count > 0) return fail(s, parse_error::both_cl_te);
    if (te_count > 0) {
      const bool request = s.k == kind::request;
      if (chunked_count > 1 || (chunked_count == 1 && !chunked_last)) {
        return fail(s, parse_error::bad_transfer_encoding);
      }
      if (request && !chunked_last) return fail(s, parse_error::bad_transfer_encoding);
      // Our reading and llhttp's must agree on chunked framing: llhttp does not take
      // "chunked<HTAB>" for chunked, and with an Upgrade it then frames no body at all, while an
      // origin reads a chunked body (HTAB is optional whitespace): reject rather than desync.
      if (chunked_last != s.head.chunked) return fail(s, parse_error::bad_transfer_encoding);
    }
    if (cl != nullptr) {
      if (p->content_length >
          static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return fail(s, parse_error::bad_content_length);
      }
      s.head.has_content_length = true;
      s.head.content_length = p->content_length;
    }
    s.body_start = s.fed_before + static_cast<std::uint64_t>(s.base + s.head.end - s.feed_data);

    if (s.k == kind::response) {
      const int st = s.head.status;
      if (s.connect_request && st >= 200 && st < 300) return 2;
      if (st == 101) return 0;
      if (s.head_request || (st >= 100 && st < 200) || st == 204 || st == 304) return 1;
    }
    return 0;
  }

  // Host, Connection and Upgrade rules of a request head (RFC 9110 §7.2, §7.6.1, §7.8;
  // RFC 9112 §3.2).
  static parse_error check_request_fields(impl& s) {
    int hosts = 0;
    bool connection_upgrade = false;
    bool upgrade_other_than_h2c = false;
    for (std::size_t i = 0; i < s.head.headers.size(); ++i) {
      const auto& h = s.head.headers[i];
      const auto name = s.text(h.name);
      const auto value = s.text(h.value);
      if (iequals(name, "host")) {
        if (++hosts > 1) return parse_error::duplicate_host;
        s.head.host_index = static_cast<int>(i);
        if (!value.empty() && !valid_host_port(value, false)) return parse_error::bad_host;
      } else if (iequals(name, "connection")) {
        bool bad = false;
        for_each_token(value, [&](std::string_view t) {
          if (iequals(t, "upgrade")) connection_upgrade = true;
          if (iequals(t, "host") || iequals(t, "content-length") ||
              iequals(t, "transfer-encoding")) {
            bad = true;
          }
        });
        if (bad) return parse_error::bad_connection_option;
      } else if (iequals(name, "upgrade")) {
        for_each_token(value, [&](std::string_view t) {
          if (!iequals(t, "h2c")) upgrade_other_than_h2c = true;
        });
      }
    }
    const bool http11 = s.head.http_major == 1 && s.head.http_minor >= 1;
    if (hosts == 0 && http11) return parse_error::missing_host;
    if (!s.head.authority_from_target && s.head.host_index >= 0) {
      s.head.authority = s.head.headers[static_cast<std::size_t>(s.head.host_index)].value;
    }
    s.head.upgrade_requested =
        (connection_upgrade && upgrade_other_than_h2c) || s.text(s.head.method) == "CONNECT";
    return parse_error::none;
  }

  template <class F>
  static void for_each_token(std::string_view list, F&& f) {
    while (true) {
      const auto comma = list.find(',');
      const auto t = trim(list.substr(0, comma));
      if (!t.empty()) f(t);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }

  std::uint64_t pos_of(const char* at) const {
    return fed_before + static_cast<std::uint64_t>(at - feed_data);
  }

  static int on_body(llhttp_t* p, const char* at, std::size_t len) {
    auto& s = self(p);
    if (s.head.chunked && s.chunk_data_pending) {
      // The first data byte of a chunk: the chunk-size line lies between the previous chunk's
      // data (and its CRLF) or the head's end, and this byte (minus the line's CRLF).
      s.chunk_data_pending = false;
      const auto data_pos = s.pos_of(at);
      const auto line_start = s.seen_chunk ? s.last_data_end + 2 : s.body_start;
      const auto size_end = s.ext_bytes > 0 ? s.ext_start - 1 : data_pos - 2;
      s.seen_chunk = true;
      if (size_end > line_start + max_chunk_size_digits) {
        return fail(s, parse_error::bad_chunk_size);
      }
    }
    if (s.head.chunked) s.last_data_end = s.pos_of(at) + len;
    s.body.emplace_back(at, len);
    return 0;
  }

  static int on_chunk_extension(llhttp_t* p, const char* at, std::size_t len) {
    auto& s = self(p);
    if (s.ext_bytes == 0) s.ext_start = s.pos_of(at);
    s.ext_bytes += static_cast<std::uint32_t>(std::min<std::size_t>(len, max_chunk_ext_bytes + 1));
    if (s.ext_bytes > max_chunk_ext_bytes) return fail(s, parse_error::bad_chunk);
    return 0;
  }

  static int on_chunk_header(llhttp_t* p) {
    auto& s = self(p);
    if (p->content_length > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return fail(s, parse_error::bad_chunk_size);
    }
    s.chunk_data_pending = p->content_length > 0;
    return 0;
  }

  static int on_chunk_complete(llhttp_t* p) {
    auto& s = self(p);
    s.ext_bytes = 0;
    s.ext_start = 0;
    return 0;
  }

  static int on_message_complete(llhttp_t* p) {
    auto& s = self(p);
    s.done = true;
    s.keep_alive = llhttp_should_keep_alive(p) != 0;
    // A request asking only for h2c is not an upgrade: the proxy removes the offer.
    s.upgrade = llhttp_get_upgrade(p) != 0 && (s.k == kind::response || s.head.upgrade_requested);
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
      x.on_chunk_extension_name = &on_chunk_extension;
      x.on_chunk_extension_value = &on_chunk_extension;
      x.on_chunk_header = &on_chunk_header;
      x.on_chunk_complete = &on_chunk_complete;
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
  // Any DIGIT.DIGIT version reaches check_request_line(), which answers 505 for majors other
  // than 1 and processes HTTP/1.2+ as HTTP/1.1 (RFC 9110 §2.5).
  if (kind_ == kind::request) s.p.lenient_flags |= LENIENT_VERSION;
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
  s.line_checked = false;
  s.feed_data = base;
  s.fed_before = 0;
  s.body_start = 0;
  s.last_data_end = 0;
  s.ext_start = 0;
  s.ext_bytes = 0;
  s.chunk_data_pending = false;
  s.seen_chunk = false;
  s.trailer_name_len = 0;
  s.trailer_value_open = false;
  s.trailer_value_end = 0;
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
  s.feed_data = data;
  const auto err = llhttp_execute(&s.p, data, len);
  s.fed_before += len;
  r.head_completed = s.head_complete && !had_head;
  if (err == HPE_OK && !s.head_complete && s.k == kind::request && !s.line_checked &&
      s.msg_start != nullptr) {
    // A complete request line is checked at once: "GET /" + CRLF (HTTP/0.9) would otherwise
    // wait for a head that never comes.
    const std::string_view seen(s.msg_start, static_cast<std::size_t>(s.fed_end - s.msg_start));
    const auto lf = seen.find('\n');
    if (lf != std::string_view::npos) {
      parse_error e = parse_error::none;
      if (bare_lf_before(s.base, s.msg_start) || lf == 0 || seen[lf - 1] != '\r') {
        e = parse_error::bare_lf;
      } else {
        e = check_request_line(seen.substr(0, lf - 1)).error;
      }
      s.line_checked = true;
      if (e != parse_error::none) {
        s.error = e;
        r.consumed = len;
        r.event = parse_event::error;
        return r;
      }
    }
  }
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
