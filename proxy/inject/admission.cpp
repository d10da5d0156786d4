#include "proxy/inject/admission.hpp"

#include <boost/json.hpp>

#include "proxy/inject/mutation.hpp"

namespace devspaces::proxy::inject {

namespace json = boost::json;

namespace {

admission_answer bad_request(std::string why) {
  admission_answer a;
  a.status = 400;
  a.content_type = "text/plain; charset=utf-8";
  a.body = "devspaces-proxy webhook: " + why + "\n";
  a.log_line = "rejected body: " + why;
  return a;
}

std::string string_at(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

}  // namespace

std::string base64_encode(std::string_view data) {
  static constexpr char table[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    unsigned n = (static_cast<unsigned char>(data[i]) << 16) |
                 (static_cast<unsigned char>(data[i + 1]) << 8) |
                 static_cast<unsigned char>(data[i + 2]);
    out += table[(n >> 18) & 63];
    out += table[(n >> 12) & 63];
    out += table[(n >> 6) & 63];
    out += table[n & 63];
  }
  if (i + 1 == data.size()) {
    unsigned n = static_cast<unsigned char>(data[i]) << 16;
    out += table[(n >> 18) & 63];
    out += table[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == data.size()) {
    unsigned n = (static_cast<unsigned char>(data[i]) << 16) |
                 (static_cast<unsigned char>(data[i + 1]) << 8);
    out += table[(n >> 18) & 63];
    out += table[(n >> 12) & 63];
    out += table[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

admission_answer answer_admission(std::string_view body, const routing::space_tree& tree,
                                  const injection_settings& settings) {
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  if (ec) return bad_request("body is not JSON (" + ec.message() + ")");
  const auto* review = doc.if_object();
  if (review == nullptr) return bad_request("body is not a JSON object");
  if (string_at(*review, "kind") != "AdmissionReview")
    return bad_request("kind is \"" + string_at(*review, "kind") + "\", expected AdmissionReview");
  const std::string api_version = string_at(*review, "apiVersion");
  if (api_version != "admission.k8s.io/v1")
    return bad_request("apiVersion is \"" + api_version + "\", expected admission.k8s.io/v1");
  const auto* req_v = review->if_contains("request");
  if (req_v == nullptr || !req_v->is_object()) return bad_request("no request object");
  const auto& req = req_v->get_object();
  const std::string uid = string_at(req, "uid");
  if (uid.empty()) return bad_request("request.uid is missing");
  const auto* kind = req.if_contains("kind");
  if (kind == nullptr || !kind->is_object() || string_at(kind->get_object(), "kind") != "Pod")
    return bad_request("request.kind is not Pod");
  const auto* object = req.if_contains("object");
  if (object == nullptr || !object->is_object())
    return bad_request("request.object is not a Pod object");

  std::string ns = string_at(req, "namespace");
  const auto* md = object->get_object().if_contains("metadata");
  if (ns.empty() && md != nullptr && md->is_object()) ns = string_at(md->get_object(), "namespace");
  pod_context ctx;
  ctx.space = ns;
  if (!ns.empty()) {
    auto chain = tree.chain(ns);
    ctx.parents.assign(chain.size() > 1 ? chain.begin() + 1 : chain.end(), chain.end());
  }
  auto patch = make_pod_patch(object->get_object(), ctx, settings);

  json::object response{{"uid", uid}, {"allowed", true}};
  if (!patch.ops.empty()) {
    response["patchType"] = "JSONPatch";
    response["patch"] = base64_encode(json::serialize(patch.ops));
  }
  if (!patch.outcome.warnings.empty()) {
    json::array w;
    for (const auto& line : patch.outcome.warnings) w.push_back(json::string(line));
    response["warnings"] = std::move(w);
  }
  admission_answer a;
  a.body = json::serialize(json::object{{"apiVersion", "admission.k8s.io/v1"},
                                        {"kind", "AdmissionReview"},
                                        {"response", std::move(response)}});
  std::string name = string_at(req, "name");
  if (name.empty() && md != nullptr && md->is_object())
    name = string_at(md->get_object(), "generateName");
  a.log_line = "pod " + ns + "/" + name + ": " + std::string(describe(patch.outcome.result));
  for (const auto& w : patch.outcome.warnings) a.log_line += "; " + w;
  return a;
}

}  // namespace devspaces::proxy::inject
