#include "proxy/trace/record.hpp"

#include <atomic>
#include <cstring>
#include <random>

namespace devspaces::proxy::trace {
namespace {

// Word-at-a-time tests on 8 bytes (bodies are scanned twice per serialised record: once to
// tell text from binary, once to escape; byte loops cost ~40 instructions per byte there).
constexpr std::uint64_t ones = 0x0101010101010101ULL;
constexpr std::uint64_t highs = 0x8080808080808080ULL;

std::uint64_t load8(const char* p) {
  std::uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}
// Some byte of w is zero.
bool any_zero(std::uint64_t w) {
  return ((w - ones) & ~w & highs) != 0;
}
// Some byte of w is below n (n <= 0x80).
bool any_below(std::uint64_t w, std::uint64_t n) {
  return ((w - ones * n) & ~w & highs) != 0;
}
// All 8 bytes are printable ASCII (0x20..0x7F).
bool printable_ascii(std::uint64_t w) {
  return (w & highs) == 0 && !any_below(w, 0x20);
}
// All 8 bytes go into a JSON string as they are: printable ASCII other than '"' and '\\'.
bool json_plain(std::uint64_t w) {
  return printable_ascii(w) && !any_zero(w ^ (ones * '"')) && !any_zero(w ^ (ones * '\\'));
}

// Length of the UTF-8 sequence starting at s[i] when it is well-formed (no overlongs, no
// surrogates, <= U+10FFFF); 0 when malformed; -1 when it is a valid start cut by the end.
int utf8_sequence(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  int len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (b0 < 0x80) return 1;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (int k = 1; k < len; ++k) {
    if (i + k >= s.size()) return -1;
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
  }
  return len;
}

bool allowed_control(unsigned char c) {
  return c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == 0x1B;
}

// Bytes of `s` shown as text, or npos when it is binary. A sequence cut at the end is left
// out of the count when `cut_allowed`.
std::size_t text_length(std::string_view s, bool cut_allowed) {
  std::size_t i = 0;
  while (i < s.size()) {
    if (s.size() - i >= 8 && printable_ascii(load8(s.data() + i))) {
      i += 8;
      continue;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 && !allowed_control(c)) return std::string_view::npos;
    const int len = utf8_sequence(s, i);
    if (len == 0) return std::string_view::npos;
    if (len < 0) return cut_allowed && s.size() - i < 4 ? i : std::string_view::npos;
    i += static_cast<std::size_t>(len);
  }
  return i;
}

constexpr char hex_digits[] = "0123456789abcdef";

// JSON string literal. Invalid UTF-8 bytes (obs-text in headers) are read as Latin-1 so the
// output is always valid JSON.
void append_string(std::string& out, std::string_view s) {
  out.push_back('"');
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      // Copy the run of plain ASCII at once.
      std::size_t j = i + 1;
      while (s.size() - j >= 8 && json_plain(load8(s.data() + j))) j += 8;
      while (j < s.size()) {
        const auto d = static_cast<unsigned char>(s[j]);
        if (d < 0x20 || d >= 0x80 || d == '"' || d == '\\') break;
        ++j;
      }
      out.append(s.data() + i, j - i);
      i = j;
      continue;
    }
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      default:
        if (c < 0x20) {
          out.append("\\u00");
          out.push_back(hex_digits[c >> 4]);
          out.push_back(hex_digits[c & 0xF]);
        } else {
          const int len = utf8_sequence(s, i);
          if (len > 0) {
            out.append(s.data() + i, static_cast<std::size_t>(len));
            i += static_cast<std::size_t>(len);
            continue;
          }
          // Latin-1 byte c -> U+00XX.
          out.push_back(static_cast<char>(0xC0 | (c >> 6)));
          out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
        }
    }
    ++i;
  }
  out.push_back('"');
}

void append_optional(std::string& out, const std::optional<std::string>& s) {
  if (s) {
    append_string(out, *s);
  } else {
    out.append("null");
  }
}

// A string, or null when empty.
void append_nullable(std::string& out, std::string_view s) {
  if (s.empty()) {
    out.append("null");
  } else {
    append_string(out, s);
  }
}

void append_address(std::string& out, const address_text& s) {
  append_nullable(out, s.view());
}

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  char* p = buf + sizeof buf;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  out.append(p, static_cast<std::size_t>(buf + sizeof buf - p));
}

void append_int(std::string& out, std::int64_t v) {
  if (v < 0) {
    out.push_back('-');
    append_uint(out, static_cast<std::uint64_t>(-(v + 1)) + 1);
  } else {
    append_uint(out, static_cast<std::uint64_t>(v));
  }
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool redacted(std::string_view lowered, const json_options& opts) {
  for (const auto& name : opts.redact_headers) {
    if (name == lowered) return true;
  }
  return false;
}

void append_headers(std::string& out, const header_list& headers, const json_options& opts) {
  out.push_back('[');
  std::string name;
  bool first = true;
  for (const auto& [n, v] : headers) {
    if (!first) out.push_back(',');
    first = false;
    name.assign(n);
    for (auto& c : name) c = lower(c);
    out.append("[");
    append_string(out, name);
    out.push_back(',');
    if (redacted(name, opts)) {
      out.append("\"[redacted]\"");
    } else {
      append_string(out, v);
    }
    out.push_back(']');
  }
  out.push_back(']');
}

void append_body(std::string& out, const body_capture& body) {
  out.append(",\"body_bytes\":");
  append_uint(out, body.total_bytes);
  out.append(",\"body\":");
  const std::size_t text = text_length(body.prefix, body.truncated);
  if (text != std::string_view::npos) {
    append_string(out, std::string_view(body.prefix).substr(0, text));
  } else {
    out.push_back('"');
    out.append(base64_encode(body.prefix));
    out.append("\",\"body_encoding\":\"base64\"");
  }
  out.append(",\"body_truncated\":");
  out.append(body.truncated ? "true" : "false");
  if (body.omitted) out.append(",\"body_omitted\":true");
}

}  // namespace

bool is_text(std::string_view bytes, bool cut_allowed) {
  return text_length(bytes, cut_allowed) != std::string_view::npos;
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(bytes[k]); };
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    out.push_back(alphabet[v & 63]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    const std::uint32_t v = (at(i) << 16) | (rest == 2 ? at(i + 1) << 8 : 0);
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? alphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::string format_timestamp(std::chrono::system_clock::time_point ts) {
  using namespace std::chrono;
  const auto us = duration_cast<microseconds>(ts.time_since_epoch()).count();
  auto secs = us / 1'000'000;
  auto frac = us % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    --secs;
  }
  auto days = secs / 86'400;
  auto sod = secs % 86'400;
  if (sod < 0) {
    sod += 86'400;
    --days;
  }
  const year_month_day ymd{sys_days{std::chrono::days{days}}};
  const int year = static_cast<int>(ymd.year());
  const auto month = static_cast<unsigned>(ymd.month());
  const auto day = static_cast<unsigned>(ymd.day());
  // "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" (years 0..9999, as RFC 3339 allows).
  char buf[27];
  auto put = [&buf](std::size_t at, std::int64_t v, int width) {
    for (int k = width - 1; k >= 0; --k) {
      buf[at + static_cast<std::size_t>(k)] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
  };
  put(0, year < 0 ? 0 : (year > 9999 ? 9999 : year), 4);
  buf[4] = '-';
  put(5, month, 2);
  buf[7] = '-';
  put(8, day, 2);
  buf[10] = 'T';
  put(11, sod / 3600, 2);
  buf[13] = ':';
  put(14, sod / 60 % 60, 2);
  buf[16] = ':';
  put(17, sod % 60, 2);
  buf[19] = '.';
  put(20, frac, 6);
  buf[26] = 'Z';
  return std::string(buf, sizeof buf);
}

std::string next_id() {
  // 36^2 = 1296 is "100": start between there and 36^3 so ids begin with 3 characters.
  static std::atomic<std::uint64_t> counter{[] {
    std::random_device rd;
    return 1296 + std::uint64_t{rd()} % (46656 - 1296);
  }()};
  std::uint64_t v = counter.fetch_add(1, std::memory_order_relaxed);
  char buf[16];
  char* p = buf + sizeof buf;
  do {
    *--p = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
    v /= 36;
  } while (v != 0);
  return std::string(p, static_cast<std::size_t>(buf + sizeof buf - p));
}

void append_json(std::string& out, const record& r, const json_options& opts) {
  out.append("{\"v\":1,\"id\":");
  append_string(out, r.id);
  out.append(",\"ts\":\"");
  out.append(format_timestamp(r.ts));
  out.append("\",\"duration_us\":");
  append_int(out, r.duration.count());
  out.append(r.outbound ? ",\"direction\":\"outbound\"" : ",\"direction\":\"inbound\"");
  out.append(",\"pod\":");
  append_string(out, r.pod);
  out.append(",\"space\":");
  append_string(out, r.space);
  out.append(",\"client\":");
  append_address(out, r.client);
  out.append(",\"original_dst\":");
  append_address(out, r.original_dst);
  out.append(",\"upstream\":");
  append_address(out, r.upstream);
  out.append(",\"route_as\":");
  append_optional(out, r.route_as);
  out.append(",\"route_as_source\":\"");
  out.append(routing::to_string(r.route_as_source));

  out.append("\",\"route\":{\"service\":");
  append_optional(out, r.route->service);
  out.append(",\"decision\":\"");
  out.append(routing::to_string(r.route->decision));
  out.append("\",\"level\":");
  if (r.route->level && r.route->decision != routing::decision_kind::original) {
    append_int(out, *r.route->level);
  } else {
    out.append("null");
  }
  out.append(",\"tried\":[");
  for (std::size_t i = 0; i < r.route->tried.size(); ++i) {
    if (i != 0) out.push_back(',');
    out.append("{\"name\":");
    append_string(out, r.route->tried[i].name);
    out.append(",\"result\":");
    append_string(out, r.route->tried[i].result);
    out.push_back('}');
  }
  out.append("]}");

  const auto& q = r.request;
  out.append(",\"request\":{\"method\":");
  append_string(out, q.method);
  out.append(",\"target\":");
  append_string(out, q.target);
  out.append(",\"version\":");
  append_string(out, q.version);
  out.append(",\"host\":");
  append_nullable(out, q.host);
  out.append(",\"headers\":");
  append_headers(out, q.headers, opts);
  append_body(out, q.body);
  out.push_back('}');

  out.append(",\"response\":");
  if (r.response) {
    const auto& s = *r.response;
    out.append("{\"status\":");
    append_int(out, s.status);
    out.append(",\"reason\":");
    append_string(out, s.reason);
    out.append(",\"version\":");
    append_string(out, s.version);
    out.append(",\"headers\":");
    append_headers(out, s.headers, opts);
    append_body(out, s.body);
    out.append(",\"trailers\":");
    append_headers(out, s.trailers, opts);
    out.push_back('}');
  } else {
    out.append("null");
  }
  out.append(",\"error\":");
  append_optional(out, r.error);
  out.append(",\"protocol\":");
  if (!r.protocol.empty()) {
    append_string(out, r.protocol);
  } else {
    append_string(out, "http/" + (q.version.empty() ? std::string("1.1") : q.version));
  }
  out.append(",\"stream_id\":");
  if (r.stream_id) {
    append_int(out, *r.stream_id);
  } else {
    out.append("null");
  }
  out.append(",\"trace_id\":");
  append_optional(out, r.trace_id);
  out.push_back('}');
}

std::string to_json(const record& r, const json_options& opts) {
  std::string out;
  out.reserve(512 + r.request.body.prefix.size() * 4 / 3 +
              (r.response ? r.response->body.prefix.size() * 4 / 3 : 0));
  append_json(out, r, opts);
  return out;
}

}  // namespace devspaces::proxy::trace
