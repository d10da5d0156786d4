#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/options.hpp"

namespace devspaces::proxy::inject {

/// How the proxy joins the pod: a native sidecar (an init container with restartPolicy Always,
/// Kubernetes 1.29 and later) or a plain container that blocks the app's start in postStart.
enum class sidecar_mode { native, classic };

/// Everything the mutation renders into a pod, shared by `inject` and `webhook`. Every port is
/// given once here and rendered into both containers, so the init and the proxy always agree.
struct injection_settings {
  std::string proxy_image = "devspaces-proxy:0.1.0";
  std::string init_image = "devspaces-proxy-init:0.1.0";
  std::string image_pull_policy = "IfNotPresent";
  sidecar_mode mode = sidecar_mode::native;
  std::uint32_t proxy_uid = 1337;
  std::uint32_t proxy_gid = 1337;
  std::uint16_t outbound_port = 15001;
  std::uint16_t inbound_port = 15006;
  std::uint16_t admin_port = 15090;
  // The init's capture settings (per pod overridable by annotation).
  std::string inbound_ports = "*";
  std::string exclude_inbound_ports;
  std::string exclude_outbound_ports;
  std::string include_outbound_cidrs = "*";
  std::string exclude_outbound_cidrs;
  std::string ipv6 = "auto";
  std::string iptables = "auto";
  // The proxy's settings.
  std::string cluster_domain = "cluster.local";
  std::string route_header = "azds-route-as";
  std::string opaque_ports;
  std::string trace_upstream;
  std::string otlp_endpoint;
  std::string spaces_url;
  std::string log_level = "info";
  std::string log_format = "json";
  unsigned workers = 2;
  std::string drain_timeout = "15s";
  /// JSON objects for the containers' `resources` (empty: none).
  std::string proxy_resources_json;
  std::string init_resources_json;
};

/// The flag table that fills `s` (`inject` and `webhook` both take it).
std::vector<common::option_spec> injection_options(injection_settings& s);

/// Checks what a flag setter cannot (e.g. the admin port clashing with a listener); nullopt
/// when fine.
std::optional<std::string> check_settings(const injection_settings& s);

}  // namespace devspaces::proxy::inject
