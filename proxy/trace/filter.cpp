#include "proxy/trace/filter.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace devspaces::proxy::trace {

namespace json = boost::json;

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::vector<std::string> split_values(std::string_view v, bool to_lower) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= v.size()) {
    auto comma = v.find(',', pos);
    if (comma == std::string_view::npos) comma = v.size();
    auto item = v.substr(pos, comma - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.push_back(to_lower ? lower(item) : std::string(item));
    pos = comma + 1;
  }
  return out;
}

std::string_view str(const json::object& o, std::string_view key) {
  if (const auto* v = o.if_contains(key); v && v->is_string()) {
    const auto& s = v->get_string();
    return {s.data(), s.size()};
  }
  return {};
}

const json::object* obj(const json::object& o, std::string_view key) {
  if (const auto* v = o.if_contains(key); v && v->is_object()) return &v->get_object();
  return nullptr;
}

bool any_of(const std::vector<std::string>& wanted, std::string_view have) {
  for (const auto& w : wanted) {
    if (w == have) return true;
  }
  return false;
}

bool status_matches(const std::string& want, std::int64_t status) {
  if (want.size() == 3 && want[1] == 'x' && want[2] == 'x') return status / 100 == want[0] - '0';
  return std::to_string(status) == want;
}

void append_encoded(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~' || c == '/' || c == ',') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xF]);
    }
  }
}

void append_param(std::string& out, std::string_view key, const std::vector<std::string>& v) {
  if (v.empty()) return;
  if (!out.empty()) out.push_back('&');
  out.append(key);
  out.push_back('=');
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i != 0) out.push_back(',');
    append_encoded(out, v[i]);
  }
}

}  // namespace

std::optional<std::string> url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hexv = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hexv(s[i + 1]);
      const int lo = hexv(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool record_filter::empty() const {
  return direction.empty() && method.empty() && status.empty() && !path && route_as.empty() &&
         decision.empty() && !error && trace_id.empty();
}

bool record_filter::set(std::string_view key, std::string_view value,
                        std::optional<std::string>& problem) {
  auto check = [&](const std::vector<std::string>& values,
                   std::initializer_list<std::string_view> allowed, const char* what) {
    for (const auto& v : values) {
      bool ok = false;
      for (auto a : allowed) ok = ok || v == a;
      if (!ok) problem = std::string(key) + " must be " + what;
    }
  };
  if (key == "direction") {
    direction = split_values(value, true);
    check(direction, {"inbound", "outbound"}, "inbound or outbound");
  } else if (key == "method") {
    method = split_values(value, false);
    for (auto& m : method) {
      for (auto& c : m) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    }
  } else if (key == "status") {
    status = split_values(value, true);
    for (const auto& s : status) {
      const bool cls = s.size() == 3 && s[0] >= '1' && s[0] <= '5' && s[1] == 'x' && s[2] == 'x';
      const bool code = s.size() == 3 && s.find_first_not_of("0123456789") == std::string::npos;
      if (!cls && !code) problem = "status must be a code (404) or a class (5xx)";
    }
  } else if (key == "path") {
    path = std::string(value);
  } else if (key == "route_as" || key == "route-as") {
    route_as = split_values(value, true);
  } else if (key == "decision") {
    decision = split_values(value, true);
    check(decision, {"own", "parent", "grandparent", "original"},
          "own, parent, grandparent or original");
  } else if (key == "error") {
    auto e = lower(value);
    error = (e.empty() || e == "1" || e == "true" || e == "yes") ? "any" : e;
  } else if (key == "trace_id" || key == "trace-id") {
    trace_id = split_values(value, true);
  } else {
    return false;
  }
  return true;
}

bool record_filter::matches(const json::object& rec) const {
  if (!direction.empty() && !any_of(direction, str(rec, "direction"))) return false;
  const auto* req = obj(rec, "request");
  if (!method.empty() && (!req || !any_of(method, str(*req, "method")))) return false;
  if (path && (!req || !str(*req, "target").starts_with(*path))) return false;
  if (!status.empty()) {
    const auto* res = obj(rec, "response");
    const auto* st = res ? res->if_contains("status") : nullptr;
    if (!st || !st->is_int64()) return false;
    bool ok = false;
    for (const auto& s : status) ok = ok || status_matches(s, st->get_int64());
    if (!ok) return false;
  }
  if (!route_as.empty() && !any_of(route_as, str(rec, "route_as"))) return false;
  if (!decision.empty()) {
    const auto* route = obj(rec, "route");
    if (!route || !any_of(decision, str(*route, "decision"))) return false;
  }
  if (error) {
    const auto e = str(rec, "error");
    if (e.empty()) return false;
    if (*error != "any" && e != *error) return false;
  }
  if (!trace_id.empty() && !any_of(trace_id, str(rec, "trace_id"))) return false;
  return true;
}

bool record_filter::matches_line(std::string_view json_line) const {
  if (empty()) return true;
  boost::system::error_code ec;
  auto v = json::parse(json_line, ec);
  if (ec || !v.is_object()) return false;
  return matches(v.get_object());
}

std::string record_filter::to_query() const {
  std::string out;
  append_param(out, "direction", direction);
  append_param(out, "method", method);
  append_param(out, "status", status);
  if (path) append_param(out, "path", {*path});
  append_param(out, "route_as", route_as);
  append_param(out, "decision", decision);
  if (error) append_param(out, "error", {*error});
  append_param(out, "trace_id", trace_id);
  return out;
}

}  // namespace devspaces::proxy::trace
