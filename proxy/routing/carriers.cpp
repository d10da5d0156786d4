#include "proxy/routing/carriers.hpp"

#include <cstring>

#include <boost/container/small_vector.hpp>

#include "common/ascii.hpp"

namespace devspaces::proxy::routing {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

int hex_value_any_case(char c) {
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return hex_value(c);
}

bool lower_hex(std::string_view s) {
  for (char c : s) {
    if (hex_value(c) < 0) return false;
  }
  return true;
}

bool all_zero(std::string_view s) {
  return s.find_first_not_of('0') == std::string_view::npos;
}

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

bool is_tchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c == '\0' || !is_tchar(c)) return false;
  }
  return true;
}

// baggage-octet: %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
bool is_baggage_octet(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  return c == 0x21 || (c >= 0x23 && c <= 0x2B) || (c >= 0x2D && c <= 0x3A) ||
         (c >= 0x3C && c <= 0x5B) || (c >= 0x5D && c <= 0x7E);
}

// Percent-decodes a baggage value; nullopt when it holds a character outside baggage-octet or a
// broken %XX escape.
std::optional<std::string> decode_baggage_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const char c = v[i];
    if (!is_baggage_octet(c)) return std::nullopt;
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    if (i + 2 >= v.size()) return std::nullopt;
    const int hi = hex_value_any_case(v[i + 1]);
    const int lo = hex_value_any_case(v[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

using value_list = boost::container::small_vector<std::string_view, 2>;

// One carrier's verdict.
struct carrier_value {
  route_header::state status = route_header::state::absent;
  std::string space;
};

carrier_value from_values(const value_list& values) {
  const auto h =
      parse_route_header(std::span<const std::string_view>(values.data(), values.size()));
  return {h.status, h.space};
}

carrier_value from_baggage(const value_list& values, std::string_view key) {
  auto m =
      find_baggage_member(std::span<const std::string_view>(values.data(), values.size()), key);
  switch (m.status) {
    case baggage_member::state::absent:
      return {};
    case baggage_member::state::conflict:
      return {route_header::state::invalid, {}};
    case baggage_member::state::found:
      break;
  }
  const std::string_view one[] = {m.value};
  const auto h = parse_route_header(one);
  return {h.status, h.space};
}

}  // namespace

std::string trace_id::hex() const {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(32, '0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 0xF];
  }
  return out;
}

std::uint64_t trace_id::hash() const {
  std::uint64_t h = 0;
  std::memcpy(&h, bytes.data(), sizeof h);
  return h;
}

namespace {

// The four fields of a traceparent, checked; false when malformed.
bool split_traceparent(std::string_view v, std::string_view& trace, std::string_view& parent) {
  v = trim_ows(v);
  // version "-" trace-id "-" parent-id "-" flags: 2+1+32+1+16+1+2 = 55.
  if (v.size() < 55) return false;
  const auto version = v.substr(0, 2);
  if (!lower_hex(version) || version == "ff") return false;
  if (v[2] != '-' || v[35] != '-' || v[52] != '-') return false;
  trace = v.substr(3, 32);
  parent = v.substr(36, 16);
  const auto flags = v.substr(53, 2);
  if (!lower_hex(trace) || !lower_hex(parent) || !lower_hex(flags)) return false;
  if (all_zero(trace) || all_zero(parent)) return false;
  if (version == "00") return v.size() == 55;
  // Later versions may append fields: "-" and more.
  return v.size() == 55 || v[55] == '-';
}

}  // namespace

std::optional<trace_id> parse_traceparent(std::string_view value) {
  std::string_view trace;
  std::string_view parent;
  if (!split_traceparent(value, trace, parent)) return std::nullopt;
  trace_id id;
  for (std::size_t i = 0; i < id.bytes.size(); ++i) {
    id.bytes[i] =
        static_cast<std::uint8_t>(hex_value(trace[2 * i]) * 16 + hex_value(trace[2 * i + 1]));
  }
  return id;
}

std::string_view traceparent_span_id(std::string_view value) {
  std::string_view trace;
  std::string_view parent;
  if (!split_traceparent(value, trace, parent)) return {};
  return parent;
}

baggage_member find_baggage_member(std::span<const std::string_view> values, std::string_view key) {
  baggage_member result;
  std::size_t total = 0;
  for (auto v : values) total += v.size() + 1;
  if (total > max_baggage_bytes + 1) return result;
  for (auto field : values) {
    std::size_t pos = 0;
    while (pos <= field.size()) {
      auto comma = field.find(',', pos);
      if (comma == std::string_view::npos) comma = field.size();
      const auto member = trim_ows(field.substr(pos, comma - pos));
      pos = comma + 1;
      if (member.empty()) continue;  // empty list elements are allowed (RFC 9110 §5.6.1)
      // The first part is key=value; properties after ';' do not concern routing.
      const auto kv = member.substr(0, member.find(';'));
      const auto eq = kv.find('=');
      if (eq == std::string_view::npos) continue;  // malformed member: skipped
      const auto k = trim_ows(kv.substr(0, eq));
      if (!is_token(k) || !common::iequals(k, key)) continue;
      auto decoded = decode_baggage_value(trim_ows(kv.substr(eq + 1)));
      if (!decoded) {
        result.status = baggage_member::state::conflict;
        result.value.clear();
        return result;
      }
      if (result.status == baggage_member::state::found && result.value != *decoded) {
        result.status = baggage_member::state::conflict;
        result.value.clear();
        return result;
      }
      result.status = baggage_member::state::found;
      result.value = std::move(*decoded);
    }
  }
  return result;
}

carrier_result read_carriers(std::span<const header_ref> headers, std::string_view route_header) {
  value_list route_values;
  value_list baggage_values;
  value_list kube_values;
  std::string_view traceparent;
  int traceparents = 0;
  for (const auto& [name, value] : headers) {
    if (name.empty()) continue;
    if (common::iequals(name, route_header)) {
      route_values.push_back(value);
    } else if (common::iequals(name, "baggage")) {
      baggage_values.push_back(value);
    } else if (common::iequals(name, "kubernetes-route-as")) {
      kube_values.push_back(value);
    } else if (common::iequals(name, "traceparent")) {
      traceparent = value;
      ++traceparents;
    }
  }
  carrier_result r;
  // W3C Trace Context: several traceparent fields make the context unusable.
  if (traceparents == 1) r.trace = parse_traceparent(traceparent);

  const carrier_value carriers[] = {from_values(route_values),
                                    from_baggage(baggage_values, route_header),
                                    from_values(kube_values)};
  static constexpr route_source sources[] = {route_source::header, route_source::baggage,
                                             route_source::kubernetes_route_as};
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& c = carriers[i];
    if (c.status == route_header::state::absent) continue;
    if (c.status == route_header::state::invalid) {
      r.status = route_header::state::invalid;
      r.space.clear();
      r.source = route_source::none;
      r.route_header_present = false;
      return r;
    }
    if (r.status == route_header::state::absent) {
      r.status = route_header::state::valid;
      r.space = c.space;
      r.source = sources[i];
      r.route_header_present = i == 0;
    } else if (r.space != c.space) {
      r.status = route_header::state::invalid;
      r.space.clear();
      r.source = route_source::none;
      r.route_header_present = false;
      return r;
    }
  }
  return r;
}

}  // namespace devspaces::proxy::routing
