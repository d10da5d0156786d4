#include "proxy/trace/render.hpp"

#include <cstdio>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace devspaces::proxy::trace {

namespace json = boost::json;

namespace {

constexpr std::size_t max_body_lines = 5;
constexpr std::size_t max_line_chars = 160;

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

// The space whose service answered: the second label of the tried name that resolved.
std::string served_space(const json::object& route) {
  const auto* tried = route.if_contains("tried");
  if (!tried || !tried->is_array()) return {};
  const auto& arr = tried->get_array();
  for (auto it = arr.rbegin(); it != arr.rend(); ++it) {
    if (!it->is_object()) continue;
    const auto result = str(it->get_object(), "result");
    if (result.empty() || result == "nxdomain" || result == "error" || result == "timeout") {
      continue;
    }
    const auto name = str(it->get_object(), "name");
    const auto dot = name.find('.');
    if (dot == std::string_view::npos) return {};
    const auto rest = name.substr(dot + 1);
    return std::string(rest.substr(0, rest.find('.')));
  }
  return {};
}

// Printable form of a body line: control characters (terminal escapes) become '.'.
void append_clean(std::string& out, std::string_view line) {
  for (char c : line) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 && c != '\t' ? '.' : c);
  }
}

void append_body(std::string& out, const json::object& msg) {
  const auto body = str(msg, "body");
  std::uint64_t total = 0;
  if (const auto* b = msg.if_contains("body_bytes"); b && b->is_number()) {
    total = b->is_uint64() ? b->get_uint64() : static_cast<std::uint64_t>(b->to_number<double>());
  }
  bool truncated = false;
  if (const auto* t = msg.if_contains("body_truncated"); t && t->is_bool())
    truncated = t->get_bool();
  if (str(msg, "body_encoding") == "base64") {
    out.append("   <binary body, ");
    out.append(std::to_string(total));
    out.append(" bytes>\n");
    return;
  }
  if (body.empty()) {
    if (total != 0) out.append("   ...<[TRUNCATED]>\n");
    return;
  }
  std::size_t pos = 0;
  std::size_t lines = 0;
  while (pos < body.size()) {
    auto end = body.find('\n', pos);
    if (end == std::string_view::npos) end = body.size();
    auto line = body.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = end + 1;
    bool cut = false;
    if (line.size() > max_line_chars) {
      line = line.substr(0, max_line_chars);
      cut = true;
    }
    ++lines;
    const bool last_shown = lines == max_body_lines;
    const bool more = cut || (last_shown && pos < body.size()) || (pos >= body.size() && truncated);
    out.append("   ");
    append_clean(out, line);
    if (more) out.append(" ...<[TRUNCATED]>");
    out.push_back('\n');
    if (cut || last_shown) break;
  }
}

// The value of the first [name, value] pair called `name` in the message's `key` list.
std::string_view field(const json::object& msg, std::string_view key, std::string_view name) {
  const auto* list = msg.if_contains(key);
  if (!list || !list->is_array()) return {};
  for (const auto& pair : list->get_array()) {
    if (!pair.is_array() || pair.get_array().size() != 2) continue;
    const auto& n = pair.get_array()[0];
    const auto& v = pair.get_array()[1];
    if (n.is_string() && v.is_string() && n.get_string() == name) {
      return {v.get_string().data(), v.get_string().size()};
    }
  }
  return {};
}

// gRPC status code names (https://grpc.github.io/grpc/core/md_doc_statuscodes.html).
std::string_view grpc_code_name(std::string_view code) {
  static constexpr std::string_view names[] = {"OK",
                                               "CANCELLED",
                                               "UNKNOWN",
                                               "INVALID_ARGUMENT",
                                               "DEADLINE_EXCEEDED",
                                               "NOT_FOUND",
                                               "ALREADY_EXISTS",
                                               "PERMISSION_DENIED",
                                               "RESOURCE_EXHAUSTED",
                                               "FAILED_PRECONDITION",
                                               "ABORTED",
                                               "OUT_OF_RANGE",
                                               "UNIMPLEMENTED",
                                               "INTERNAL",
                                               "UNAVAILABLE",
                                               "DATA_LOSS",
                                               "UNAUTHENTICATED"};
  if (code.empty() || code.size() > 2) return {};
  std::size_t n = 0;
  for (char c : code) {
    if (c < '0' || c > '9') return {};
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  return n < std::size(names) ? names[n] : std::string_view{};
}

// A gRPC answer's outcome, from its trailers (or, trailers-only, its headers):
// "   grpc-status: 14 UNAVAILABLE (message)". Nothing for other responses.
template <typename Paint>
void append_grpc_status(std::string& out, const json::object& res, const Paint& paint) {
  auto where = std::string_view("trailers");
  auto code = field(res, where, "grpc-status");
  if (code.empty()) {
    where = "headers";
    code = field(res, where, "grpc-status");
  }
  if (code.empty()) return;
  out.append("   ");
  paint(out, code == "0" ? std::string_view("\x1b[32m") : std::string_view("\x1b[31m"));
  out.append("grpc-status: ");
  append_clean(out, code.substr(0, 16));
  if (const auto name = grpc_code_name(code); !name.empty()) out.append(" ").append(name);
  if (const auto message = field(res, where, "grpc-message"); !message.empty()) {
    out.append(" (");
    append_clean(out, message.substr(0, max_line_chars));
    out.append(")");
  }
  paint(out, "\x1b[0m");
  out.push_back('\n');
}

}  // namespace

std::string render_record(std::string_view json_line) {
  return render_record(json_line, render_options{});
}

std::string render_record(std::string_view json_line, const render_options& options) {
  constexpr std::string_view bold = "\x1b[1m";
  constexpr std::string_view reset = "\x1b[0m";
  const auto paint = [&](std::string& out, std::string_view code) {
    if (options.color) out.append(code);
  };
  boost::system::error_code ec;
  auto v = json::parse(json::string_view(json_line.data(), json_line.size()), ec);
  if (ec || !v.is_object()) {
    std::string out(json_line);
    out.push_back('\n');
    return out;
  }
  const auto& r = v.get_object();
  const auto id = str(r, "id");
  const bool outbound = str(r, "direction") == "outbound";
  const auto pod = str(r, "pod");
  const json::object empty;
  const auto* req = obj(r, "request");
  const auto& q = req ? *req : empty;
  auto host = str(q, "host");
  if (host.empty()) host = outbound ? str(r, "original_dst") : str(r, "client");

  std::string left;
  std::string right;
  if (outbound) {
    left = pod;
    right = host;
    if (const auto* route = obj(r, "route")) {
      const auto service = str(*route, "service");
      if (!service.empty() && str(*route, "decision") != "original") {
        right = service;
        const auto space = served_space(*route);
        if (!space.empty()) right += " (" + space + ")";
      }
    }
  } else {
    left = host;
    right = pod;
  }

  std::string out;
  paint(out, bold);
  out.append(left).append(" --").append(id).append("-> ").append(right).append(":");
  paint(out, reset);
  out.push_back('\n');
  out.append("   ")
      .append(str(q, "method"))
      .append(" ")
      .append(str(q, "target"))
      .append(" HTTP/")
      .append(str(q, "version"))
      .append("\n");
  append_body(out, q);

  const auto* res = obj(r, "response");
  const auto error = str(r, "error");
  if (res || !error.empty()) {
    paint(out, bold);
    out.append(left).append(" <-").append(id).append("-- ").append(right).append(":");
    paint(out, reset);
    if (options.duration) {
      if (const auto* d = r.if_contains("duration_us"); d && d->is_int64()) {
        char buf[48];
        std::snprintf(buf, sizeof buf, " %.3f ms", static_cast<double>(d->get_int64()) / 1000.0);
        out.append(buf);
      }
    }
    out.push_back('\n');
  }
  if (res) {
    std::int64_t status = 0;
    if (const auto* s = res->if_contains("status"); s && s->is_int64()) status = s->get_int64();
    auto version = str(*res, "version");
    out.append("   ");
    paint(out, status >= 500   ? std::string_view("\x1b[31m")
               : status >= 400 ? std::string_view("\x1b[33m")
               : status >= 300 ? std::string_view("\x1b[36m")
                               : std::string_view("\x1b[32m"));
    out.append("HTTP/")
        .append(version.empty() ? std::string_view("1.1") : version)
        .append(" ")
        .append(std::to_string(status));
    const auto reason = str(*res, "reason");
    if (!reason.empty()) out.append(" ").append(reason);
    paint(out, reset);
    out.push_back('\n');
    append_body(out, *res);
    append_grpc_status(out, *res, paint);
  }
  if (!error.empty()) {
    out.append("   ");
    paint(out, "\x1b[31m");
    out.append("error: ").append(error);
    paint(out, reset);
    out.push_back('\n');
  }
  return out;
}

}  // namespace devspaces::proxy::trace
