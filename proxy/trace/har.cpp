#include "proxy/trace/har.hpp"

#include <boost/json/serialize.hpp>

namespace devspaces::proxy::trace {

namespace json = boost::json;

namespace {

std::string_view str(const json::object& o, std::string_view key) {
  if (const auto* v = o.if_contains(key); v && v->is_string()) {
    const auto& s = v->get_string();
    return {s.data(), s.size()};
  }
  return {};
}

std::int64_t num(const json::object& o, std::string_view key, std::int64_t fallback) {
  if (const auto* v = o.if_contains(key)) {
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  }
  return fallback;
}

const json::object* obj(const json::object& o, std::string_view key) {
  if (const auto* v = o.if_contains(key); v && v->is_object()) return &v->get_object();
  return nullptr;
}

// [[name, value], ...] → [{"name":..., "value":...}, ...]; also finds one header's value.
json::array headers(const json::object& msg, std::string_view find, std::string& found) {
  json::array out;
  const auto* h = msg.if_contains("headers");
  if (!h || !h->is_array()) return out;
  for (const auto& pair : h->get_array()) {
    if (!pair.is_array() || pair.get_array().size() != 2) continue;
    const auto& a = pair.get_array();
    if (!a[0].is_string() || !a[1].is_string()) continue;
    json::object o;
    o["name"] = a[0].get_string();
    o["value"] = a[1].get_string();
    if (found.empty() && std::string_view(a[0].get_string()) == find) {
      found = std::string(a[1].get_string());
    }
    out.push_back(std::move(o));
  }
  return out;
}

std::string http_version(const json::object& msg) {
  auto v = str(msg, "version");
  if (v == "2" || v == "2.0") return "HTTP/2";
  return "HTTP/" + std::string(v.empty() ? "1.1" : v);
}

json::array query_string(std::string_view target) {
  json::array out;
  const auto q = target.find('?');
  if (q == std::string_view::npos) return out;
  auto rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const auto pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    json::object o;
    o["name"] = pair.substr(0, eq);
    o["value"] = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace

json::object har_entry(const json::object& rec) {
  json::object e;
  e["startedDateTime"] = str(rec, "ts");
  const double ms = static_cast<double>(num(rec, "duration_us", 0)) / 1000.0;
  e["time"] = ms;

  json::object request;
  const auto* req = obj(rec, "request");
  const json::object empty;
  const auto& q = req ? *req : empty;
  request["method"] = str(q, "method");
  std::string host_header;
  auto req_headers = headers(q, "host", host_header);
  auto host = str(q, "host");
  if (host.empty()) host = host_header;
  if (host.empty()) host = str(rec, "original_dst");
  const auto target = str(q, "target");
  std::string url = "http://" + std::string(host);
  url += target.starts_with("/") ? std::string(target) : "/" + std::string(target);
  request["url"] = url;
  request["httpVersion"] = http_version(q);
  request["cookies"] = json::array();
  std::string req_type;
  headers(q, "content-type", req_type);
  request["headers"] = std::move(req_headers);
  request["queryString"] = query_string(target);
  request["headersSize"] = -1;
  request["bodySize"] = num(q, "body_bytes", -1);
  if (num(q, "body_bytes", 0) > 0) {
    json::object post;
    post["mimeType"] = req_type.empty() ? "application/octet-stream" : req_type;
    post["params"] = json::array();
    post["text"] = str(q, "body");
    if (str(q, "body_encoding") == "base64") post["comment"] = "base64";
    e["request"] = std::move(request);
    e["request"].as_object()["postData"] = std::move(post);
  } else {
    e["request"] = std::move(request);
  }

  json::object response;
  const auto* res = obj(rec, "response");
  if (res) {
    response["status"] = num(*res, "status", 0);
    response["statusText"] = str(*res, "reason");
    response["httpVersion"] = http_version(*res);
    response["cookies"] = json::array();
    std::string type;
    std::string location;
    response["headers"] = headers(*res, "content-type", type);
    headers(*res, "location", location);
    json::object content;
    content["size"] = num(*res, "body_bytes", 0);
    content["mimeType"] = type.empty() ? "application/octet-stream" : type;
    content["text"] = str(*res, "body");
    if (str(*res, "body_encoding") == "base64") content["encoding"] = "base64";
    response["content"] = std::move(content);
    response["redirectURL"] = location;
    response["headersSize"] = -1;
    response["bodySize"] = num(*res, "body_bytes", -1);
  } else {
    response["status"] = 0;
    response["statusText"] = "";
    response["httpVersion"] = http_version(q);
    response["cookies"] = json::array();
    response["headers"] = json::array();
    json::object content;
    content["size"] = 0;
    content["mimeType"] = "x-unknown";
    response["content"] = std::move(content);
    response["redirectURL"] = "";
    response["headersSize"] = -1;
    response["bodySize"] = -1;
  }
  e["response"] = std::move(response);
  e["cache"] = json::object();
  json::object timings;
  timings["send"] = 0;
  timings["wait"] = ms;
  timings["receive"] = 0;
  e["timings"] = std::move(timings);
  if (auto up = str(rec, "upstream"); !up.empty()) {
    const auto colon = up.rfind(':');
    auto ip = up.substr(0, colon);
    if (ip.size() >= 2 && ip.front() == '[') ip = ip.substr(1, ip.size() - 2);
    e["serverIPAddress"] = ip;
  }
  e["comment"] = "id " + std::string(str(rec, "id"));
  if (const auto* v = rec.if_contains("direction")) e["_direction"] = *v;
  if (const auto* v = rec.if_contains("pod")) e["_pod"] = *v;
  if (const auto* v = rec.if_contains("route_as")) e["_route_as"] = *v;
  if (const auto* v = rec.if_contains("route")) e["_route"] = *v;
  if (const auto* v = rec.if_contains("trace_id")) e["_trace_id"] = *v;
  if (const auto* v = rec.if_contains("error")) e["_error"] = *v;
  return e;
}

std::string har_document(const std::vector<json::object>& records,
                         std::string_view creator_version) {
  json::object log;
  log["version"] = "1.2";
  json::object creator;
  creator["name"] = "devspaces-proxy";
  creator["version"] = creator_version;
  log["creator"] = std::move(creator);
  json::array entries;
  for (const auto& r : records) entries.push_back(har_entry(r));
  log["entries"] = std::move(entries);
  json::object doc;
  doc["log"] = std::move(log);
  return json::serialize(doc);
}

}  // namespace devspaces::proxy::trace
