#include "proxy/config.hpp"

#include <boost/json.hpp>

#include "common/duration.hpp"

namespace devspaces::proxy {

namespace {

using common::option_spec;
using err = std::optional<std::string>;

auto uint_setter(std::uint64_t& out, std::uint64_t min, std::uint64_t max) {
  return [&out, min, max](std::string_view v) -> err {
    auto n = common::parse_uint(v, max);
    if (!n || *n < min)
      return "is not a number from " + std::to_string(min) + " to " + std::to_string(max);
    out = *n;
    return std::nullopt;
  };
}

}  // namespace

std::vector<option_spec> proxy_options(config& c) {
  std::vector<option_spec> o;
  o.push_back({"--outbound-port", "DEVSPACES_OUTBOUND_PORT", "15001",
               "listener for redirected outbound TCP (loopback, v4 and v6)",
               common::port_setter(c.outbound_port)});
  o.push_back({"--inbound-port", "DEVSPACES_INBOUND_PORT", "15006",
               "listener for redirected inbound TCP (all addresses, v4 and v6)",
               common::port_setter(c.inbound_port)});
  o.push_back({"--admin-address", "DEVSPACES_ADMIN_ADDRESS", "0.0.0.0:15090",
               "admin HTTP server host:port (metrics, health, traces, config)",
               [&c](std::string_view v) -> err {
                 auto colon = v.rfind(':');
                 if (colon == std::string_view::npos || colon == 0)
                   return "is not host:port (e.g. 0.0.0.0:15090)";
                 std::string_view host = v.substr(0, colon);
                 if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
                   host = host.substr(1, host.size() - 2);
                 auto port = common::parse_uint(v.substr(colon + 1), 65535);
                 if (!port || host.empty()) return "is not host:port (e.g. 0.0.0.0:15090)";
                 c.admin_host = std::string(host);
                 c.admin_port = static_cast<std::uint16_t>(*port);
                 return std::nullopt;
               }});
  o.push_back({"--space", "DEVSPACES_SPACE", "",
               "the pod's own space (default: POD_NAMESPACE, else default)",
               common::space_setter(c.space)});
  o.push_back({"--parent-spaces", "DEVSPACES_PARENT_SPACES", "",
               "comma list: parent, grandparent of the own space",
               common::parent_spaces_setter(c.parent_spaces)});
  o.push_back({"--spaces-file", "DEVSPACES_SPACES_FILE", "",
               "JSON space tree, reloaded when it changes", [&c](std::string_view v) -> err {
                 c.spaces_file = std::string(v);
                 return std::nullopt;
               }});
  o.push_back({"--cluster-domain", "DEVSPACES_CLUSTER_DOMAIN", "cluster.local",
               "cluster DNS domain", common::domain_setter(c.cluster_domain)});
  o.push_back({"--resolver", "DEVSPACES_RESOLVER", "dns",
               "dns (system resolver, async, cached) or hosts:<path>",
               [&c](std::string_view v) -> err {
                 if (v != "dns" && !(v.starts_with("hosts:") && v.size() > 6))
                   return "is not 'dns' or 'hosts:<path>'";
                 c.resolver = std::string(v);
                 return std::nullopt;
               }});
  o.push_back({"--route-header", "DEVSPACES_ROUTE_HEADER", "azds-route-as",
               "header carrying the space", [&c](std::string_view v) -> err {
                 if (v.empty()) return "is not a header name";
                 for (char ch : v) {
                   bool tchar =
                       (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                       (ch >= '0' && ch <= '9') ||
                       std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
                   if (!tchar) return "is not a header name";
                 }
                 c.route_header = common::to_lower(v);
                 return std::nullopt;
               }});
  o.push_back({"--opaque-ports", "DEVSPACES_OPAQUE_PORTS", "",
               "destination ports never sniffed (always raw TCP)", [&c](std::string_view v) -> err {
                 auto l = common::parse_port_list(v);
                 if (!l) return "is not a comma list of ports";
                 c.opaque_ports = *l;
                 return std::nullopt;
               }});
  o.push_back({"--sniff-timeout", "DEVSPACES_SNIFF_TIMEOUT", "100ms",
               "wait for a client's first bytes before treating it as server-first TCP",
               common::duration_setter(c.sniff_timeout)});
  o.push_back({"--connect-timeout", "DEVSPACES_CONNECT_TIMEOUT", "5s", "upstream connect",
               common::duration_setter(c.connect_timeout)});
  o.push_back({"--header-timeout", "DEVSPACES_HEADER_TIMEOUT", "30s",
               "to receive a full request or response head",
               common::duration_setter(c.header_timeout)});
  o.push_back({"--idle-timeout", "DEVSPACES_IDLE_TIMEOUT", "1h",
               "TCP with no bytes either way; HTTP keep-alive idle",
               common::duration_setter(c.idle_timeout)});
  o.push_back({"--drain-timeout", "DEVSPACES_DRAIN_TIMEOUT", "15s", "after SIGTERM",
               common::duration_setter(c.drain_timeout)});
  o.push_back({"--max-header-bytes", "DEVSPACES_MAX_HEADER_BYTES", "65536",
               "largest request or response head (431 / 502 beyond)",
               uint_setter(c.max_header_bytes, 1024, 16u << 20)});
  o.push_back({"--workers", "DEVSPACES_WORKERS", "2", "event-loop threads",
               [&c](std::string_view v) -> err {
                 auto n = common::parse_uint(v, 256);
                 if (!n || *n == 0) return "is not a number from 1 to 256";
                 c.workers = static_cast<unsigned>(*n);
                 return std::nullopt;
               }});
  o.push_back({"--trace-upstream", "DEVSPACES_TRACE_UPSTREAM", "",
               "http://host:port/path to stream trace records to", [&c](std::string_view v) -> err {
                 if (!v.empty() && (!v.starts_with("http://") || v.size() <= 7))
                   return "is not an http://host:port/path URL";
                 c.trace_upstream = std::string(v);
                 return std::nullopt;
               }});
  o.push_back({"--trace-buffer", "DEVSPACES_TRACE_BUFFER", "1000",
               "records kept for /traces replay", uint_setter(c.trace_buffer, 0, 1'000'000)});
  o.push_back({"--trace-body-bytes", "DEVSPACES_TRACE_BODY_BYTES", "1024",
               "body prefix kept per message (0 = none)",
               uint_setter(c.trace_body_bytes, 0, 1 << 20)});
  o.push_back({"--trace-redact-headers", "DEVSPACES_TRACE_REDACT_HEADERS",
               "authorization,proxy-authorization,cookie,set-cookie",
               "header values replaced by [redacted]", [&c](std::string_view v) -> err {
                 c.trace_redact_headers.clear();
                 for (const auto& h : common::split_list(v))
                   c.trace_redact_headers.push_back(common::to_lower(h));
                 return std::nullopt;
               }});
  o.push_back({"--log-level", "DEVSPACES_LOG_LEVEL", "info",
               "trace, debug, info, warn (or warning), error, off; any case",
               common::log_level_setter(c.log_level)});
  o.push_back({"--log-format", "DEVSPACES_LOG_FORMAT", "text", "text or json (one object a line)",
               [&c](std::string_view v) -> err {
                 if (v != "text" && v != "json") return "is not 'text' or 'json'";
                 c.log_format = std::string(v);
                 return std::nullopt;
               }});
  return o;
}

config_result parse_proxy_config(std::span<const std::string> args, const common::env_lookup& env) {
  config_result r;
  if (env) {
    if (auto ns = env("POD_NAMESPACE")) {
      auto s = common::to_lower(*ns);
      if (common::is_dns_label(s)) r.cfg.space = s;
    }
    if (auto pod = env("POD_NAME")) r.cfg.pod_name = *pod;
  }
  auto specs = proxy_options(r.cfg);
  auto p = common::parse_options(specs, args, env);
  r.positional = std::move(p.positional);
  r.help = p.help;
  r.help_markdown = p.help_markdown;
  r.version = p.version;
  r.error = std::move(p.error);
  if (!r.error) {
    for (const auto& parent : r.cfg.parent_spaces) {
      if (parent == r.cfg.space) {
        r.error = "--parent-spaces: '" + parent + "' is the own space (a cycle)";
        break;
      }
    }
    if (r.cfg.parent_spaces.size() == 2 && r.cfg.parent_spaces[0] == r.cfg.parent_spaces[1])
      r.error = "--parent-spaces: '" + r.cfg.parent_spaces[0] + "' is named twice (a cycle)";
  }
  return r;
}

std::string proxy_help() {
  config scratch;
  auto specs = proxy_options(scratch);
  return common::render_help(
      "usage: devspaces-proxy [flags]\n"
      "       devspaces-proxy traces [URL]   follow a proxy's trace stream (default "
      "http://127.0.0.1:15090)\n\n"
      "The dev-spaces sidecar: relays every captured TCP connection, routes HTTP/1.x by the\n"
      "route header with parent-space fallback, records traces and exports metrics.",
      specs);
}

std::string config_to_json(const config& c) {
  namespace json = boost::json;
  json::object o;
  o["outbound_port"] = c.outbound_port;
  o["inbound_port"] = c.inbound_port;
  o["admin_address"] = c.admin_host + ":" + std::to_string(c.admin_port);
  o["space"] = c.space;
  json::array parents;
  for (const auto& p : c.parent_spaces) parents.emplace_back(p);
  o["parent_spaces"] = std::move(parents);
  o["spaces_file"] = c.spaces_file;
  o["cluster_domain"] = c.cluster_domain;
  o["resolver"] = c.resolver;
  o["route_header"] = c.route_header;
  json::array opaque;
  for (auto p : c.opaque_ports) opaque.emplace_back(p);
  o["opaque_ports"] = std::move(opaque);
  o["sniff_timeout"] = common::format_duration(c.sniff_timeout);
  o["connect_timeout"] = common::format_duration(c.connect_timeout);
  o["header_timeout"] = common::format_duration(c.header_timeout);
  o["idle_timeout"] = common::format_duration(c.idle_timeout);
  o["drain_timeout"] = common::format_duration(c.drain_timeout);
  o["max_header_bytes"] = c.max_header_bytes;
  o["workers"] = c.workers;
  o["trace_upstream"] = c.trace_upstream;
  o["trace_buffer"] = c.trace_buffer;
  o["trace_body_bytes"] = c.trace_body_bytes;
  json::array redact;
  for (const auto& h : c.trace_redact_headers) redact.emplace_back(h);
  o["trace_redact_headers"] = std::move(redact);
  o["log_level"] = c.log_level;
  o["log_format"] = c.log_format;
  o["pod"] = c.pod_name;
  return json::serialize(o);
}

}  // namespace devspaces::proxy
