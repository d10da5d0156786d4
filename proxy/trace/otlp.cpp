#include "proxy/trace/otlp.hpp"

#include <ctime>
#include <random>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "proxy/routing/carriers.hpp"

namespace devspaces::proxy::trace {

namespace json = boost::json;

namespace {

constexpr int span_kind_server = 2;
constexpr int span_kind_client = 3;
constexpr int status_unset = 0;
constexpr int status_error = 2;

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

std::string random_hex(std::size_t bytes) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  while (out.size() < bytes * 2) {
    auto v = rng();
    for (int i = 0; i < 16 && out.size() < bytes * 2; ++i, v >>= 4) out.push_back(digits[v & 0xF]);
  }
  if (out.find_first_not_of('0') == std::string::npos) out.back() = '1';  // never all zero
  return out;
}

json::object string_attr(std::string_view key, std::string_view value, json::storage_ptr sp) {
  json::object v(sp);
  v["stringValue"] = value;
  json::object a(sp);
  a["key"] = key;
  a["value"] = std::move(v);
  return a;
}

// OTLP/JSON carries 64-bit integers as decimal strings.
json::object int_attr(std::string_view key, std::int64_t value, json::storage_ptr sp) {
  json::object v(sp);
  v["intValue"] = std::to_string(value);
  json::object a(sp);
  a["key"] = key;
  a["value"] = std::move(v);
  return a;
}

std::string_view header(const json::object& msg, std::string_view name) {
  const auto* h = msg.if_contains("headers");
  if (!h || !h->is_array()) return {};
  for (const auto& pair : h->get_array()) {
    if (!pair.is_array() || pair.get_array().size() != 2) continue;
    const auto& a = pair.get_array();
    if (a[0].is_string() && a[1].is_string() && std::string_view(a[0].get_string()) == name) {
      return {a[1].get_string().data(), a[1].get_string().size()};
    }
  }
  return {};
}

// "host:port" / "[v6]:port" → host, port.
void split_host_port(std::string_view hp, std::string_view& host, std::string_view& port) {
  host = hp;
  port = {};
  if (hp.starts_with("[")) {
    const auto close = hp.find(']');
    if (close == std::string_view::npos) return;
    host = hp.substr(1, close - 1);
    if (close + 1 < hp.size() && hp[close + 1] == ':') port = hp.substr(close + 2);
    return;
  }
  const auto colon = hp.rfind(':');
  if (colon != std::string_view::npos && hp.find(':') == colon) {
    host = hp.substr(0, colon);
    port = hp.substr(colon + 1);
  }
}

}  // namespace

std::uint64_t unix_nanos(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS[.ffffff]Z
  if (t.size() < 20 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':' ||
      t.back() != 'Z') {
    return 0;
  }
  auto num = [&](std::size_t pos, std::size_t len) {
    int v = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
      if (t[i] < '0' || t[i] > '9') return -1;
      v = v * 10 + (t[i] - '0');
    }
    return v;
  };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(5, 2) - 1;
  tm.tm_mday = num(8, 2);
  tm.tm_hour = num(11, 2);
  tm.tm_min = num(14, 2);
  tm.tm_sec = num(17, 2);
  if (tm.tm_year < 0 || tm.tm_mon < 0 || tm.tm_mday < 0 || tm.tm_hour < 0 || tm.tm_min < 0 ||
      tm.tm_sec < 0) {
    return 0;
  }
  const auto secs = timegm(&tm);
  if (secs < 0) return 0;
  std::uint64_t frac_ns = 0;
  if (t[19] == '.') {
    std::uint64_t scale = 100'000'000;
    for (std::size_t i = 20; i + 1 < t.size() && scale > 0; ++i, scale /= 10) {
      if (t[i] < '0' || t[i] > '9') return 0;
      frac_ns += static_cast<std::uint64_t>(t[i] - '0') * scale;
    }
  }
  return static_cast<std::uint64_t>(secs) * 1'000'000'000ULL + frac_ns;
}

json::object otlp_span(const json::object& rec, json::storage_ptr sp) {
  const json::object empty;
  const auto* reqp = obj(rec, "request");
  const auto& req = reqp ? *reqp : empty;
  const auto* res = obj(rec, "response");
  const bool outbound = str(rec, "direction") == "outbound";

  json::object span(sp);
  const auto traceparent = header(req, "traceparent");
  auto trace_id = str(rec, "trace_id");
  const auto parent = routing::traceparent_span_id(traceparent);
  if (trace_id.size() == 32) {
    span["traceId"] = trace_id;
    if (!parent.empty()) span["parentSpanId"] = parent;
  } else {
    span["traceId"] = random_hex(16);
  }
  span["spanId"] = random_hex(8);
  const auto method = str(req, "method");
  span["name"] = method.empty() ? std::string_view("HTTP") : method;
  span["kind"] = outbound ? span_kind_client : span_kind_server;
  const auto start = unix_nanos(str(rec, "ts"));
  std::uint64_t dur_us = 0;
  if (const auto* d = rec.if_contains("duration_us"); d && d->is_int64() && d->get_int64() > 0) {
    dur_us = static_cast<std::uint64_t>(d->get_int64());
  }
  span["startTimeUnixNano"] = std::to_string(start);
  span["endTimeUnixNano"] = std::to_string(start + dur_us * 1000);

  json::array attrs(sp);
  if (!method.empty()) attrs.push_back(string_attr("http.request.method", method, sp));
  const auto target = str(req, "target");
  const auto qm = target.find('?');
  attrs.push_back(string_attr("url.path", target.substr(0, qm), sp));
  if (qm != std::string_view::npos)
    attrs.push_back(string_attr("url.query", target.substr(qm + 1), sp));
  std::string_view host;
  std::string_view port;
  split_host_port(str(req, "host"), host, port);
  if (!host.empty()) attrs.push_back(string_attr("server.address", host, sp));
  if (!port.empty() && port.find_first_not_of("0123456789") == std::string_view::npos &&
      port.size() <= 5) {
    attrs.push_back(int_attr("server.port", std::stoll(std::string(port)), sp));
  }
  if (auto v = str(req, "version"); !v.empty()) {
    attrs.push_back(string_attr("network.protocol.name", "http", sp));
    attrs.push_back(string_attr("network.protocol.version", v, sp));
  }
  std::string_view ip;
  std::string_view ip_port;
  split_host_port(str(rec, "client"), ip, ip_port);
  if (!ip.empty()) attrs.push_back(string_attr("client.address", ip, sp));
  split_host_port(str(rec, "upstream"), ip, ip_port);
  if (!ip.empty()) attrs.push_back(string_attr("network.peer.address", ip, sp));
  std::int64_t status = 0;
  if (res) {
    if (const auto* s = res->if_contains("status"); s && s->is_int64()) status = s->get_int64();
    attrs.push_back(int_attr("http.response.status_code", status, sp));
  }
  const auto error = str(rec, "error");
  if (!error.empty()) {
    attrs.push_back(string_attr("error.type", error, sp));
  } else if (status >= (outbound ? 400 : 500)) {
    attrs.push_back(string_attr("error.type", std::to_string(status), sp));
  }
  if (auto v = str(rec, "route_as"); !v.empty())
    attrs.push_back(string_attr("devspaces.route_as", v, sp));
  if (auto v = str(rec, "route_as_source"); !v.empty()) {
    attrs.push_back(string_attr("devspaces.route_as_source", v, sp));
  }
  if (const auto* route = obj(rec, "route")) {
    if (auto d = str(*route, "decision"); !d.empty()) {
      attrs.push_back(string_attr("devspaces.decision", d, sp));
    }
    if (const auto* l = route->if_contains("level"); l && l->is_int64()) {
      attrs.push_back(int_attr("devspaces.level", l->get_int64(), sp));
    }
    if (auto svc = str(*route, "service"); !svc.empty()) {
      attrs.push_back(string_attr("devspaces.service", svc, sp));
    }
  }
  if (auto id = str(rec, "id"); !id.empty())
    attrs.push_back(string_attr("devspaces.exchange_id", id, sp));
  span["attributes"] = std::move(attrs);

  json::object st(sp);
  const bool failed = !error.empty() || status >= (outbound ? 400 : 500);
  st["code"] = failed ? status_error : status_unset;
  if (!error.empty()) st["message"] = error;
  span["status"] = std::move(st);
  return span;
}

std::string otlp_export_body(const std::vector<entry>& entries, const otlp_resource& resource) {
  // Every value of the body lives in one arena, dropped at once after serialising.
  json::monotonic_resource batch;
  const json::storage_ptr sp(&batch);
  json::array spans(sp);
  spans.reserve(entries.size());
  for (const auto& e : entries) {
    // The parsed record lives in one arena on the stack (spilling to the heap when larger),
    // dropped at once: without it, allocating and freeing each of its values is a third of
    // the export's cost. The span takes copies of what it keeps.
    unsigned char arena[16384];
    json::monotonic_resource mr(arena, sizeof arena);
    boost::system::error_code ec;
    auto v = json::parse(e.json->text(), ec, &mr);
    if (ec || !v.is_object()) continue;
    spans.push_back(otlp_span(v.get_object(), sp));
  }
  json::array rattrs(sp);
  rattrs.push_back(string_attr("service.name", resource.service_name, sp));
  if (!resource.version.empty())
    rattrs.push_back(string_attr("service.version", resource.version, sp));
  if (!resource.pod.empty()) rattrs.push_back(string_attr("k8s.pod.name", resource.pod, sp));
  if (!resource.space.empty()) {
    rattrs.push_back(string_attr("k8s.namespace.name", resource.space, sp));
    rattrs.push_back(string_attr("devspaces.space", resource.space, sp));
  }
  json::object res(sp);
  res["attributes"] = std::move(rattrs);
  json::object scope(sp);
  scope["name"] = "devspaces-proxy";
  if (!resource.version.empty()) scope["version"] = resource.version;
  json::object scope_spans(sp);
  scope_spans["scope"] = std::move(scope);
  scope_spans["spans"] = std::move(spans);
  json::array scope_list(sp);
  scope_list.push_back(std::move(scope_spans));
  json::object resource_spans(sp);
  resource_spans["resource"] = std::move(res);
  resource_spans["scopeSpans"] = std::move(scope_list);
  json::array rs(sp);
  rs.push_back(std::move(resource_spans));
  json::object body(sp);
  body["resourceSpans"] = std::move(rs);
  return json::serialize(body);
}

std::optional<std::string> start_otlp_exporter(hub& h, boost::asio::any_io_executor executor,
                                               uploader_options options, otlp_resource resource,
                                               proxy_metrics* metrics) {
  auto url = parse_http_url(options.url);
  if (!url) return options.url + " is not an http://host[:port][/path] URL";
  options.encode = [resource = std::move(resource)](const std::vector<entry>& batch) {
    return otlp_export_body(batch, resource);
  };
  options.content_type = "application/json";
  options.what = "OTLP endpoint";
  if (metrics != nullptr) {
    options.sent_counter = &metrics->otlp_spans(true);
    options.dropped_counter = &metrics->otlp_spans(false);
  }
  auto u = std::make_shared<uploader>(executor, std::move(options), std::move(*url), metrics);
  h.set_span_exporter(u);
  u->start();
  return std::nullopt;
}

}  // namespace devspaces::proxy::trace
