#include "proxy/inject/mutation.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/json.hpp>

#include "common/options.hpp"

namespace devspaces::proxy::inject {

namespace json = boost::json;

namespace {

json::object env_value(std::string_view name, std::string_view value) {
  return json::object{{"name", name}, {"value", value}};
}

json::object env_field(std::string_view name, std::string_view field_path) {
  return json::object{
      {"name", name},
      {"valueFrom", json::object{{"fieldRef", json::object{{"fieldPath", field_path}}}}}};
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
  return out;
}

bool has_container(const json::object& spec, std::string_view key, std::string_view name) {
  const auto* list = spec.if_contains(key);
  if (list == nullptr || !list->is_array()) return false;
  for (const auto& c : list->get_array()) {
    const auto* obj = c.if_object();
    if (obj == nullptr) continue;
    const auto* n = obj->if_contains("name");
    if (n != nullptr && n->is_string() && n->get_string() == name) return true;
  }
  return false;
}

const json::string* annotation(const json::object& metadata, std::string_view key) {
  const auto* ann = metadata.if_contains("annotations");
  if (ann == nullptr || !ann->is_object()) return nullptr;
  const auto* v = ann->get_object().if_contains(key);
  return v != nullptr ? v->if_string() : nullptr;
}

json::array& array_member(json::object& obj, std::string_view key) {
  auto& v = obj[key];
  if (!v.is_array()) v = json::array();
  return v.get_array();
}

/// The init's capture settings after the pod's override annotations.
struct capture_settings {
  std::string inbound_ports, exclude_inbound_ports, exclude_outbound_ports, include_outbound_cidrs,
      exclude_outbound_cidrs;
};

capture_settings capture_for(const json::object& metadata, const injection_settings& s,
                             std::vector<std::string>& warnings) {
  capture_settings c{s.inbound_ports, s.exclude_inbound_ports, s.exclude_outbound_ports,
                     s.include_outbound_cidrs, s.exclude_outbound_cidrs};
  auto take = [&](std::string_view key, std::string& out,
                  std::optional<std::string> (*check)(std::string_view)) {
    const auto* v = annotation(metadata, key);
    if (v == nullptr) return;
    std::string_view text(v->data(), v->size());
    if (auto e = check(text)) {
      warnings.push_back("annotation " + std::string(key) + " ignored: " + *e);
      return;
    }
    out = std::string(text);
  };
  take(inbound_ports_annotation, c.inbound_ports, &check_inbound_ports);
  take(exclude_inbound_ports_annotation, c.exclude_inbound_ports, &check_port_list);
  take(exclude_outbound_ports_annotation, c.exclude_outbound_ports, &check_port_list);
  take(include_outbound_cidrs_annotation, c.include_outbound_cidrs, &check_include_cidrs);
  take(exclude_outbound_cidrs_annotation, c.exclude_outbound_cidrs, &check_cidr_list);
  return c;
}

json::value resources(const std::string& text) {
  if (text.empty()) return json::object();
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  return ec ? json::value(json::object()) : v;
}

json::object space_env(std::string_view name, const pod_context& ctx) {
  return ctx.space.empty() ? env_field(name, "metadata.namespace") : env_value(name, ctx.space);
}

json::object init_container(const pod_context& ctx, const capture_settings& c,
                            const injection_settings& s) {
  json::array env{
      env_value("DEVSPACES_PROXY_UID", std::to_string(s.proxy_uid)),
      env_value("DEVSPACES_PROXY_GID", std::to_string(s.proxy_gid)),
      env_value("DEVSPACES_OUTBOUND_PORT", std::to_string(s.outbound_port)),
      env_value("DEVSPACES_INBOUND_PORT", std::to_string(s.inbound_port)),
      env_value("DEVSPACES_ADMIN_PORT", std::to_string(s.admin_port)),
      env_value("DEVSPACES_INBOUND_PORTS", c.inbound_ports),
      env_value("DEVSPACES_EXCLUDE_INBOUND_PORTS", c.exclude_inbound_ports),
      env_value("DEVSPACES_EXCLUDE_OUTBOUND_PORTS", c.exclude_outbound_ports),
      env_value("DEVSPACES_INCLUDE_OUTBOUND_CIDRS", c.include_outbound_cidrs),
      env_value("DEVSPACES_EXCLUDE_OUTBOUND_CIDRS", c.exclude_outbound_cidrs),
      env_value("DEVSPACES_IPV6", s.ipv6),
      env_value("DEVSPACES_IPTABLES", s.iptables),
      env_value("DEVSPACES_CLUSTER_DOMAIN", s.cluster_domain),
      space_env("DEVSPACES_SPACE", ctx),
      env_value("DEVSPACES_PARENT_SPACES", join(ctx.parents)),
  };
  json::object sc{
      {"runAsUser", 0},
      {"runAsGroup", 0},
      {"runAsNonRoot", false},
      {"privileged", false},
      {"allowPrivilegeEscalation", false},
      // iptables takes its lock in /run/xtables.lock.
      {"readOnlyRootFilesystem", false},
      {"capabilities",
       json::object{{"add", json::array{"NET_ADMIN", "NET_RAW"}}, {"drop", json::array{"ALL"}}}},
  };
  json::object c_obj{
      {"name", init_container_name},
      {"image", s.init_image},
      {"imagePullPolicy", s.image_pull_policy},
      {"args", json::array{"apply"}},
      {"env", std::move(env)},
      {"securityContext", std::move(sc)},
  };
  if (!s.init_resources_json.empty()) c_obj["resources"] = resources(s.init_resources_json);
  return c_obj;
}

json::object http_probe(std::string_view path, std::uint16_t port, int period, int failures) {
  return json::object{{"httpGet", json::object{{"path", path}, {"port", port}}},
                      {"periodSeconds", period},
                      {"timeoutSeconds", 1},
                      {"failureThreshold", failures}};
}

json::object proxy_container(const pod_context& ctx, const injection_settings& s) {
  json::array env{
      env_field("POD_NAME", "metadata.name"),
      env_field("POD_NAMESPACE", "metadata.namespace"),
      space_env("DEVSPACES_SPACE", ctx),
      env_value("DEVSPACES_PARENT_SPACES", join(ctx.parents)),
      env_value("DEVSPACES_OUTBOUND_PORT", std::to_string(s.outbound_port)),
      env_value("DEVSPACES_INBOUND_PORT", std::to_string(s.inbound_port)),
      env_value("DEVSPACES_ADMIN_ADDRESS", "0.0.0.0:" + std::to_string(s.admin_port)),
      env_value("DEVSPACES_CLUSTER_DOMAIN", s.cluster_domain),
      env_value("DEVSPACES_ROUTE_HEADER", s.route_header),
      env_value("DEVSPACES_WORKERS", std::to_string(s.workers)),
      env_value("DEVSPACES_DRAIN_TIMEOUT", s.drain_timeout),
      env_value("DEVSPACES_LOG_LEVEL", s.log_level),
      env_value("DEVSPACES_LOG_FORMAT", s.log_format),
  };
  // Optional settings appear only when set: an empty value means the proxy's default.
  auto optional = [&env](std::string_view name, const std::string& value) {
    if (!value.empty()) env.push_back(env_value(name, value));
  };
  optional("DEVSPACES_OPAQUE_PORTS", s.opaque_ports);
  optional("DEVSPACES_TRACE_UPSTREAM", s.trace_upstream);
  optional("DEVSPACES_OTLP_ENDPOINT", s.otlp_endpoint);
  optional("DEVSPACES_SPACES_URL", s.spaces_url);

  json::object sc{
      {"runAsUser", s.proxy_uid},
      {"runAsGroup", s.proxy_gid},
      {"runAsNonRoot", true},
      {"privileged", false},
      {"allowPrivilegeEscalation", false},
      {"readOnlyRootFilesystem", true},
      {"capabilities", json::object{{"drop", json::array{"ALL"}}}},
      {"seccompProfile", json::object{{"type", "RuntimeDefault"}}},
  };
  json::object c{
      {"name", proxy_container_name},
      {"image", s.proxy_image},
      {"imagePullPolicy", s.image_pull_policy},
      {"ports", json::array{json::object{
                    {"name", "ds-admin"}, {"containerPort", s.admin_port}, {"protocol", "TCP"}}}},
      {"env", std::move(env)},
      {"securityContext", std::move(sc)},
      {"readinessProbe", http_probe("/readyz", s.admin_port, 2, 3)},
      {"livenessProbe", http_probe("/healthz", s.admin_port, 10, 3)},
  };
  if (!s.proxy_resources_json.empty()) c["resources"] = resources(s.proxy_resources_json);
  if (s.mode == sidecar_mode::native) {
    c["restartPolicy"] = "Always";
    c["startupProbe"] = http_probe("/readyz", s.admin_port, 1, 120);
  } else {
    c["lifecycle"] = json::object{
        {"postStart",
         json::object{
             {"exec",
              json::object{{"command", json::array{"/usr/local/bin/devspaces-proxy", "wait-ready",
                                                   "--admin-port", std::to_string(s.admin_port),
                                                   "--timeout", "120s"}}}}}}};
  }
  return c;
}

std::string pointer_escape(std::string_view key) {
  std::string out;
  for (char ch : key) {
    if (ch == '~')
      out += "~0";
    else if (ch == '/')
      out += "~1";
    else
      out += ch;
  }
  return out;
}

std::string pointer_unescape(std::string_view token) {
  std::string out;
  for (std::size_t i = 0; i < token.size(); ++i) {
    if (token[i] == '~' && i + 1 < token.size()) {
      out += token[i + 1] == '1' ? '/' : '~';
      ++i;
    } else {
      out += token[i];
    }
  }
  return out;
}

void diff_section(const json::object& before, const json::object& after, std::string_view name,
                  json::array& ops) {
  const auto* b = before.if_contains(name);
  const auto* a = after.if_contains(name);
  if (a == nullptr || (b != nullptr && *a == *b)) return;
  if (b == nullptr || !b->is_object() || !a->is_object()) {
    ops.push_back(json::object{{"op", "add"}, {"path", "/" + pointer_escape(name)}, {"value", *a}});
    return;
  }
  for (const auto& [key, value] : a->get_object()) {
    const auto* old = b->get_object().if_contains(key);
    if (old != nullptr && *old == value) continue;
    ops.push_back(json::object{
        {"op", "add"},
        {"path", "/" + pointer_escape(name) + "/" + pointer_escape(std::string_view(key))},
        {"value", value}});
  }
}

}  // namespace

std::string_view describe(outcome o) {
  switch (o) {
    case outcome::injected:
      return "injected";
    case outcome::already_injected:
      return "already injected";
    case outcome::opted_out:
      return "opted out (devspaces.io/inject: \"false\")";
    case outcome::host_network:
      return "hostNetwork pod (not injected)";
  }
  return "unknown";
}

inject_outcome inject_template(json::object& metadata, json::object& spec, const pod_context& ctx,
                               const injection_settings& s) {
  inject_outcome out;
  if (const auto* v = annotation(metadata, inject_annotation); v != nullptr && *v == "false") {
    out.result = outcome::opted_out;
    return out;
  }
  if (const auto* hn = spec.if_contains("hostNetwork");
      hn != nullptr && hn->is_bool() && hn->get_bool()) {
    out.result = outcome::host_network;
    return out;
  }
  const auto* status = annotation(metadata, status_annotation);
  if ((status != nullptr && *status == "injected") ||
      has_container(spec, "initContainers", init_container_name) ||
      has_container(spec, "initContainers", proxy_container_name) ||
      has_container(spec, "containers", proxy_container_name)) {
    out.result = outcome::already_injected;
    return out;
  }

  const auto capture = capture_for(metadata, s, out.warnings);

  auto& ann_v = metadata["annotations"];
  if (!ann_v.is_object()) ann_v = json::object();
  auto& ann = ann_v.get_object();
  ann[status_annotation] = "injected";
  // The app's own scrape annotations win: the proxy's metrics are announced only when the app
  // announces none (the proxy's /metrics stays reachable on the ds-admin port either way).
  if (!ann.contains("prometheus.io/scrape") && !ann.contains("prometheus.io/port") &&
      !ann.contains("prometheus.io/path")) {
    ann["prometheus.io/scrape"] = "true";
    ann["prometheus.io/port"] = std::to_string(s.admin_port);
    ann["prometheus.io/path"] = "/metrics";
  }
  // kubectl logs/exec keep defaulting to the app, not to the injected container.
  if (!ann.contains("kubectl.kubernetes.io/default-container")) {
    if (const auto* cs = spec.if_contains("containers"); cs != nullptr && cs->is_array()) {
      for (const auto& c : cs->get_array()) {
        const auto* n = c.is_object() ? c.get_object().if_contains("name") : nullptr;
        if (n != nullptr && n->is_string()) {
          ann["kubectl.kubernetes.io/default-container"] = n->get_string();
          break;
        }
      }
    }
  }

  auto& inits = array_member(spec, "initContainers");
  if (s.mode == sidecar_mode::native) {
    // Capture first, then the proxy (ready before anything else starts), then the app's own
    // init containers, whose traffic is then relayed like the app's.
    inits.insert(inits.begin(), proxy_container(ctx, s));
    inits.insert(inits.begin(), init_container(ctx, capture, s));
  } else {
    // Without a native sidecar nothing relays during the init phase: capture starts last, so
    // the app's init containers keep working uncaptured.
    inits.push_back(init_container(ctx, capture, s));
    auto& containers = array_member(spec, "containers");
    containers.insert(containers.begin(), proxy_container(ctx, s));
  }
  return out;
}

pod_patch make_pod_patch(const json::object& pod, const pod_context& ctx,
                         const injection_settings& s) {
  pod_patch p;
  json::object after = pod;
  auto& md = after["metadata"];
  if (!md.is_object()) md = json::object();
  auto& sp = after["spec"];
  if (!sp.is_object()) sp = json::object();
  p.outcome = inject_template(md.get_object(), sp.get_object(), ctx, s);
  if (p.outcome.result != outcome::injected) return p;
  diff_section(pod, after, "metadata", p.ops);
  diff_section(pod, after, "spec", p.ops);
  return p;
}

std::optional<std::string> apply_simple_patch(json::object& doc, const json::array& ops) {
  for (const auto& op_v : ops) {
    const auto* op = op_v.if_object();
    if (op == nullptr) return "patch operation is not an object";
    const auto* kind = op->if_contains("op");
    const auto* path = op->if_contains("path");
    const auto* value = op->if_contains("value");
    if (kind == nullptr || *kind != "add" || path == nullptr || !path->is_string() ||
        value == nullptr)
      return "only add operations with a path and a value are supported";
    std::string_view p(path->get_string().data(), path->get_string().size());
    if (!p.starts_with("/")) return "path must start with /";
    p.remove_prefix(1);
    auto slash = p.find('/');
    if (slash == std::string_view::npos) {
      doc[pointer_unescape(p)] = *value;
      continue;
    }
    auto& section = doc[pointer_unescape(p.substr(0, slash))];
    if (!section.is_object()) return "path " + std::string(path->get_string()) + ": not an object";
    section.get_object()[pointer_unescape(p.substr(slash + 1))] = *value;
  }
  return std::nullopt;
}

std::optional<std::string> check_port_list(std::string_view v) {
  if (!common::parse_port_list(v)) return "is not a comma list of ports (1-65535)";
  return std::nullopt;
}

std::optional<std::string> check_inbound_ports(std::string_view v) {
  if (v == "*") return std::nullopt;
  return check_port_list(v);
}

std::optional<std::string> check_cidr_list(std::string_view v) {
  for (const auto& item : common::split_list(v)) {
    auto slash = item.find('/');
    boost::system::error_code ec;
    auto addr = boost::asio::ip::make_address(item.substr(0, slash), ec);
    if (ec) return "\"" + item + "\" is not an address or CIDR";
    if (slash != std::string::npos) {
      auto bits = common::parse_uint(std::string_view(item).substr(slash + 1), 128);
      if (!bits || (addr.is_v4() && *bits > 32) || item.size() == slash + 1)
        return "\"" + item + "\" has a bad prefix length";
    }
  }
  return std::nullopt;
}

std::optional<std::string> check_include_cidrs(std::string_view v) {
  if (v == "*") return std::nullopt;
  return check_cidr_list(v);
}

}  // namespace devspaces::proxy::inject
