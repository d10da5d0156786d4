#include "proxy/trace/access_log.hpp"

#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include <spdlog/spdlog.h>

#include "common/ascii.hpp"

namespace devspaces::proxy::trace {

namespace {

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out.append(buf);
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
}

void append_text_value(std::string& out, std::string_view s) {
  if (s.empty()) {
    out.push_back('-');
    return;
  }
  bool plain = true;
  for (char c : s) {
    if (c == ' ' || c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) plain = false;
  }
  if (plain) {
    out.append(s);
  } else {
    append_json_string(out, s);
  }
}

struct line_builder {
  bool json;
  std::string out;
  bool first = true;

  void sep(std::string_view key) {
    if (json) {
      out.append(first ? "{" : ",");
      append_json_string(out, key);
      out.push_back(':');
    } else {
      if (!first) out.push_back(' ');
      out.append(key);
      out.push_back('=');
    }
    first = false;
  }
  void str(std::string_view key, std::string_view v) {
    sep(key);
    json ? append_json_string(out, v) : append_text_value(out, v);
  }
  void opt(std::string_view key, const std::optional<std::string>& v) {
    if (v) return str(key, *v);
    sep(key);
    out.append(json ? "null" : "-");
  }
  void raw(std::string_view key, std::string_view v) {
    sep(key);
    out.append(v);
  }
  std::string finish() {
    if (json) out.push_back('}');
    return std::move(out);
  }
};

std::string_view media_type(std::string_view v) {
  v = v.substr(0, v.find(';'));
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

void apply(const header_list& headers, body_capture& body,
           const std::vector<std::string>& omit_types) {
  if (body.prefix.empty()) return;
  for (const auto& [name, value] : headers) {
    if (!is_content_type(name)) continue;
    if (omitted_type(value, omit_types)) {
      body.prefix.clear();
      body.prefix.shrink_to_fit();
      body.omitted = true;
      body.truncated = body.total_bytes > 0;
    }
    return;
  }
}

}  // namespace

// common::iequals(name, "content-type") a word at a time: every record with a body asks it of each
// of its header names. Only the letters' case bit is ignored.
bool is_content_type(std::string_view name) {
  if (name.size() != 12) return false;
  std::uint64_t head;
  std::uint32_t tail;
  std::memcpy(&head, name.data(), sizeof head);
  std::memcpy(&tail, name.data() + 8, sizeof tail);
  static constexpr char want[] = "content-type";
  std::uint64_t want_head;
  std::uint32_t want_tail;
  std::memcpy(&want_head, want, sizeof want_head);
  std::memcpy(&want_tail, want + 8, sizeof want_tail);
  // The case bit of every byte but the '-' (the 8th) is ignored.
  constexpr std::uint64_t letters_head = 0x2020202020202020ULL & ~(0xFFULL << (7 * 8));
  constexpr std::uint64_t letters_head_be = 0x2020202020202020ULL & ~0xFFULL;
  const std::uint64_t mask =
      std::endian::native == std::endian::little ? letters_head : letters_head_be;
  return (head | mask) == want_head && (tail | 0x20202020U) == want_tail;
}

bool omitted_type(std::string_view content_type, const std::vector<std::string>& omit_types) {
  const auto type = media_type(content_type);
  for (const auto& t : omit_types) {
    if (common::iequals(type, t)) return true;
  }
  return false;
}

std::string access_log_line(const record& r, bool json) {
  line_builder b{json, {}};
  b.str("direction", r.outbound ? "outbound" : "inbound");
  b.str("method", r.request.method);
  b.str("authority", r.request.host);
  b.str("path", r.request.target);
  if (r.response) {
    b.raw("status", std::to_string(r.response->status));
  } else {
    b.raw("status", json ? "null" : "-");
  }
  char dur[32];
  std::snprintf(dur, sizeof dur, "%.3f", static_cast<double>(r.duration.count()) / 1000.0);
  b.raw("duration_ms", dur);
  b.str("upstream", r.upstream.view());
  b.opt("route_as", r.route_as);
  b.str("route_as_source", routing::to_string(r.route_as_source));
  b.str("decision", routing::to_string(r.route->decision));
  b.opt("error", r.error);
  b.str("id", r.id);
  b.opt("trace_id", r.trace_id);
  return b.finish();
}

void write_access_log(const record& r, bool json) {
  auto l = spdlog::get("access");
  if (!l) return;
  if (!l->should_log(spdlog::level::info)) return;
  l->info("{}", access_log_line(r, json));
}

void apply_body_policy(record& r, const std::vector<std::string>& omit_types) {
  if (omit_types.empty()) return;
  apply(r.request.headers, r.request.body, omit_types);
  if (r.response) apply(r.response->headers, r.response->body, omit_types);
}

}  // namespace devspaces::proxy::trace
