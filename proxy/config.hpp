#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/options.hpp"

namespace devspaces::proxy {

using std::chrono::milliseconds;

/// The effective configuration of devspaces-proxy (README, "Configuration"), parsed once in main.
struct config {
  std::uint16_t outbound_port = 15001;
  std::uint16_t inbound_port = 15006;
  std::string admin_host = "0.0.0.0";  ///< from --admin-address
  std::uint16_t admin_port = 15090;    ///< 0 = any free port (tests)
  std::string space = "default";
  std::vector<std::string> parent_spaces;  ///< parent, grandparent
  std::string spaces_file;
  std::string cluster_domain = "cluster.local";
  std::string resolver = "dns";                ///< "dns" or "hosts:<path>"
  std::string route_header = "azds-route-as";  ///< lowercase
  std::vector<std::uint16_t> opaque_ports;
  milliseconds sniff_timeout{100};
  milliseconds connect_timeout{5000};
  milliseconds header_timeout{30000};
  milliseconds idle_timeout{3'600'000};
  milliseconds drain_timeout{15000};
  std::uint64_t max_header_bytes = 65536;
  unsigned workers = 2;
  std::string trace_upstream;
  std::uint64_t trace_buffer = 1000;
  std::uint64_t trace_body_bytes = 1024;
  std::vector<std::string> trace_redact_headers{"authorization", "proxy-authorization", "cookie",
                                                "set-cookie"};
  std::string log_level = "info";
  std::string log_format = "text";
  std::string pod_name;  ///< POD_NAME, else the hostname (filled by main)
};

/// The flag table of devspaces-proxy, bound to a config value it fills in.
std::vector<common::option_spec> proxy_options(config& cfg);

/// Outcome of parse_proxy_config: a config, a request for help/version, or an error line.
struct config_result {
  config cfg;
  std::vector<std::string> positional;
  bool help = false;
  bool help_markdown = false;
  bool version = false;
  std::optional<std::string> error;
};

/// Parses flags and env into a config (README, "Configuration"). `env` also supplies POD_NAMESPACE.
config_result parse_proxy_config(std::span<const std::string> args, const common::env_lookup& env);

/// The usage text for --help.
std::string proxy_help();

/// JSON of the effective configuration (for /config).
std::string config_to_json(const config& cfg);

}  // namespace devspaces::proxy
