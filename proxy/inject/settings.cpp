#include "proxy/inject/settings.hpp"

#include <boost/json.hpp>

#include "proxy/inject/mutation.hpp"

namespace devspaces::proxy::inject {

namespace {

using err = std::optional<std::string>;
using common::option_spec;

common::option_setter non_empty_setter(std::string& out) {
  return [&out](std::string_view v) -> err {
    if (v.empty()) return "must not be empty";
    out = std::string(v);
    return std::nullopt;
  };
}

common::option_setter id_setter(std::uint32_t& out) {
  return [&out](std::string_view v) -> err {
    auto n = common::parse_uint(v, 2147483647);
    if (!n) return "is not a numeric id";
    out = static_cast<std::uint32_t>(*n);
    return std::nullopt;
  };
}

common::option_setter choice_setter(std::string& out, std::vector<std::string> choices) {
  return [&out, choices = std::move(choices)](std::string_view v) -> err {
    for (const auto& c : choices)
      if (v == c) {
        out = c;
        return std::nullopt;
      }
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
    return "must be one of " + list;
  };
}

common::option_setter checked_setter(std::string& out, err (*check)(std::string_view)) {
  return [&out, check](std::string_view v) -> err {
    if (auto e = check(v)) return e;
    out = std::string(v);
    return std::nullopt;
  };
}

common::option_setter resources_setter(std::string& out) {
  return [&out](std::string_view v) -> err {
    if (v.empty()) {
      out.clear();
      return std::nullopt;
    }
    boost::system::error_code ec;
    auto doc = boost::json::parse(v, ec);
    if (ec || !doc.is_object()) return "must be a JSON object ({\"requests\":{...}})";
    out = std::string(v);
    return std::nullopt;
  };
}

err check_duration(std::string_view v) {
  std::chrono::milliseconds ignored{};
  return common::duration_setter(ignored)(v);
}

err check_url(std::string_view v) {
  if (v.empty() || v.starts_with("http://") || v.starts_with("https://")) return std::nullopt;
  return "must be an http:// or https:// URL";
}

err check_http_url(std::string_view v) {
  if (v.empty() || v.starts_with("http://")) return std::nullopt;
  return "must be an http:// URL";
}

}  // namespace

std::vector<option_spec> injection_options(injection_settings& s) {
  std::vector<option_spec> o;
  o.push_back({"--proxy-image", "DEVSPACES_PROXY_IMAGE", "devspaces-proxy:0.1.0",
               "image of the devspaces-proxy sidecar", non_empty_setter(s.proxy_image)});
  o.push_back({"--init-image", "DEVSPACES_INIT_IMAGE", "devspaces-proxy-init:0.1.0",
               "image of the devspaces-proxy-init container", non_empty_setter(s.init_image)});
  o.push_back({"--image-pull-policy", "DEVSPACES_IMAGE_PULL_POLICY", "IfNotPresent",
               "imagePullPolicy of both injected containers",
               choice_setter(s.image_pull_policy, {"Always", "IfNotPresent", "Never"})});
  o.push_back({"--sidecar-mode", "DEVSPACES_SIDECAR_MODE", "native",
               "native (init container with restartPolicy Always, Kubernetes >= 1.29) or "
               "classic (a container whose postStart waits for /readyz)",
               [&s](std::string_view v) -> err {
                 if (v == "native")
                   s.mode = sidecar_mode::native;
                 else if (v == "classic")
                   s.mode = sidecar_mode::classic;
                 else
                   return "must be native or classic";
                 return std::nullopt;
               }});
  o.push_back({"--proxy-uid", "DEVSPACES_PROXY_UID", "1337", "UID the proxy runs as",
               id_setter(s.proxy_uid)});
  o.push_back({"--proxy-gid", "DEVSPACES_PROXY_GID", "1337", "GID the proxy runs as",
               id_setter(s.proxy_gid)});
  o.push_back({"--outbound-port", "DEVSPACES_OUTBOUND_PORT", "15001",
               "the proxy's outbound listener", common::port_setter(s.outbound_port)});
  o.push_back({"--inbound-port", "DEVSPACES_INBOUND_PORT", "15006", "the proxy's inbound listener",
               common::port_setter(s.inbound_port)});
  o.push_back({"--admin-port", "DEVSPACES_ADMIN_PORT", "15090",
               "the proxy's admin port (probes, metrics; never captured inbound)",
               common::port_setter(s.admin_port)});
  o.push_back({"--inbound-ports", "DEVSPACES_INBOUND_PORTS", "*",
               "inbound ports to capture: '*' or a comma list",
               checked_setter(s.inbound_ports, &check_inbound_ports)});
  o.push_back({"--exclude-inbound-ports", "DEVSPACES_EXCLUDE_INBOUND_PORTS", "",
               "inbound ports never captured",
               checked_setter(s.exclude_inbound_ports, &check_port_list)});
  o.push_back({"--exclude-outbound-ports", "DEVSPACES_EXCLUDE_OUTBOUND_PORTS", "",
               "outbound destination ports never captured",
               checked_setter(s.exclude_outbound_ports, &check_port_list)});
  o.push_back({"--include-outbound-cidrs", "DEVSPACES_INCLUDE_OUTBOUND_CIDRS", "*",
               "outbound destinations to capture: '*' or a comma list of CIDRs",
               checked_setter(s.include_outbound_cidrs, &check_include_cidrs)});
  o.push_back({"--exclude-outbound-cidrs", "DEVSPACES_EXCLUDE_OUTBOUND_CIDRS", "",
               "outbound destinations never captured (comma list of CIDRs)",
               checked_setter(s.exclude_outbound_cidrs, &check_cidr_list)});
  o.push_back({"--ipv6", "DEVSPACES_IPV6", "auto", "the init's IPv6 mode: auto, on, off",
               choice_setter(s.ipv6, {"auto", "on", "off"})});
  o.push_back({"--iptables", "DEVSPACES_IPTABLES", "auto", "the init's backend: auto, legacy, nft",
               choice_setter(s.iptables, {"auto", "legacy", "nft"})});
  o.push_back({"--cluster-domain", "DEVSPACES_CLUSTER_DOMAIN", "cluster.local",
               "the cluster's DNS domain", common::domain_setter(s.cluster_domain)});
  o.push_back({"--route-header", "DEVSPACES_ROUTE_HEADER", "azds-route-as",
               "header carrying the space", non_empty_setter(s.route_header)});
  o.push_back({"--opaque-ports", "DEVSPACES_OPAQUE_PORTS", "",
               "destination ports the proxy never sniffs",
               checked_setter(s.opaque_ports, &check_port_list)});
  o.push_back({"--trace-upstream", "DEVSPACES_TRACE_UPSTREAM", "",
               "URL the proxies stream trace records to",
               checked_setter(s.trace_upstream, &check_http_url)});
  o.push_back({"--otlp-endpoint", "DEVSPACES_OTLP_ENDPOINT", "",
               "OTLP/HTTP traces endpoint of the proxies",
               checked_setter(s.otlp_endpoint, &check_url)});
  o.push_back({"--spaces-url", "DEVSPACES_SPACES_URL", "",
               "URL the proxies poll for the space tree (the webhook's /spaces)",
               checked_setter(s.spaces_url, &check_http_url)});
  o.push_back(
      {"--proxy-log-level", "DEVSPACES_PROXY_LOG_LEVEL", "info",
       "the proxies' log level: trace, debug, info, warn (or warning), error, off; any case",
       common::log_level_setter(s.log_level)});
  o.push_back({"--proxy-log-format", "DEVSPACES_PROXY_LOG_FORMAT", "json",
               "the proxies' log format", choice_setter(s.log_format, {"text", "json"})});
  o.push_back({"--proxy-workers", "DEVSPACES_PROXY_WORKERS", "2", "the proxies' worker threads",
               [&s](std::string_view v) -> err {
                 auto n = common::parse_uint(v, 64);
                 if (!n || *n == 0) return "must be 1..64";
                 s.workers = static_cast<unsigned>(*n);
                 return std::nullopt;
               }});
  o.push_back({"--drain-timeout", "DEVSPACES_DRAIN_TIMEOUT", "15s",
               "the proxies' drain timeout after SIGTERM",
               checked_setter(s.drain_timeout, &check_duration)});
  o.push_back({"--proxy-resources", "DEVSPACES_PROXY_RESOURCES", "",
               "JSON resources of the proxy container", resources_setter(s.proxy_resources_json)});
  o.push_back({"--init-resources", "DEVSPACES_INIT_RESOURCES", "",
               "JSON resources of the init container", resources_setter(s.init_resources_json)});
  return o;
}

std::optional<std::string> check_settings(const injection_settings& s) {
  if (s.outbound_port == s.inbound_port) return "--outbound-port and --inbound-port must differ";
  if (s.admin_port == s.outbound_port || s.admin_port == s.inbound_port)
    return "--admin-port must differ from the proxy's listeners";
  return std::nullopt;
}

}  // namespace devspaces::proxy::inject
