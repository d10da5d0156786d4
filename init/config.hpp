#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/options.hpp"

namespace devspaces::init {

/// An IP network in canonical form (address masked to the prefix, as iptables-save prints it).
struct cidr {
  bool v6 = false;   ///< address family
  std::string text;  ///< "10.0.0.0/8", "fd00::/8"
  auto operator<=>(const cidr&) const = default;
};

/// Parses "10.1.2.3/8" (→ "10.0.0.0/8"), "fd00::1/64", or a bare address (→ /32, /128).
std::optional<cidr> parse_cidr(std::string_view text);

/// `--ipv6`: auto = on when the namespace has IPv6 addresses (/proc/net/if_inet6 lists one).
enum class ipv6_mode { automatic, on, off };
/// `--iptables`: auto = the backend the namespace already uses, else the one that works.
enum class backend_mode { automatic, legacy, nft };

/// Everything the init needs, parsed once from flags, env and defaults (README, "Flags").
struct config {
  std::string command = "apply";  ///< apply | cleanup | print | verify
  std::uint32_t proxy_uid = 1337;
  std::uint32_t proxy_gid = 1337;
  std::uint16_t outbound_port = 15001;
  std::uint16_t inbound_port = 15006;
  bool inbound_all = true;                           ///< `--inbound-ports '*'`
  std::vector<std::uint16_t> inbound_ports;          ///< when not all; empty = no inbound capture
  std::vector<std::uint16_t> exclude_inbound_ports;  ///< user list (own ports added by rules)
  std::vector<std::uint16_t> exclude_outbound_ports;
  bool include_all_cidrs = true;             ///< `--include-outbound-cidrs '*'`
  std::vector<cidr> include_outbound_cidrs;  ///< when not all; empty = no outbound capture
  std::vector<cidr> exclude_outbound_cidrs;
  ipv6_mode ipv6 = ipv6_mode::automatic;
  backend_mode iptables = backend_mode::automatic;
  std::string resolv_conf = "/etc/resolv.conf";  ///< empty = leave DNS alone
  std::string space;                             ///< empty until finalised (POD_NAMESPACE, default)
  std::vector<std::string> parent_spaces;
  std::string cluster_domain = "cluster.local";
  std::chrono::milliseconds command_timeout{30000};  ///< per iptables command
};

/// The flag table of devspaces-proxy-init, bound to `c`.
std::vector<common::option_spec> init_options(config& c);

/// The usage line printed above the flags by --help.
std::string_view init_usage();

/// Parses args (without argv[0]) and env into a config. On error `error` names the problem
/// (exit 2); `help`/`version` are set when asked for.
struct parse_outcome {
  config cfg;
  bool help = false;
  bool help_markdown = false;
  bool version = false;
  std::optional<std::string> error;
};
parse_outcome parse_config(std::span<const std::string> args, const common::env_lookup& env);

}  // namespace devspaces::init
