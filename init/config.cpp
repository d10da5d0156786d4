#include "init/config.hpp"

#include <arpa/inet.h>

#include <array>
#include <cstring>

#include "common/duration.hpp"

namespace devspaces::init {

namespace {

using common::option_spec;
using err = std::optional<std::string>;

auto port_list_setter(std::vector<std::uint16_t>& out) {
  return [&out](std::string_view v) -> err {
    auto l = common::parse_port_list(v);
    if (!l) return "is not a comma list of ports (1-65535)";
    out.clear();
    for (auto p : *l)
      if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
    return std::nullopt;
  };
}

auto id_setter(std::uint32_t& out) {
  return [&out](std::string_view v) -> err {
    // Numeric only: a name would need an NSS lookup inside the init container.
    auto n = common::parse_uint(v, 4294967294u);
    if (!n) return "is not a numeric id (names are not looked up)";
    out = static_cast<std::uint32_t>(*n);
    return std::nullopt;
  };
}

auto cidr_list_setter(std::vector<cidr>& out, bool* all) {
  return [&out, all](std::string_view v) -> err {
    out.clear();
    auto items = common::split_list(v);
    if (items.size() == 1 && items[0] == "*") {
      if (!all) return "cannot be '*' (that would exclude everything)";
      *all = true;
      return std::nullopt;
    }
    for (const auto& item : items) {
      auto c = parse_cidr(item);
      if (!c) return "has '" + item + "', not an IP address or CIDR";
      if (std::find(out.begin(), out.end(), *c) == out.end()) out.push_back(*c);
    }
    if (all) *all = false;
    return std::nullopt;
  };
}

}  // namespace

std::optional<cidr> parse_cidr(std::string_view text) {
  std::string addr(text);
  int prefix = -1;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    addr = std::string(text.substr(0, slash));
    auto n = common::parse_uint(text.substr(slash + 1), 128);
    if (!n) return std::nullopt;
    prefix = static_cast<int>(*n);
  }
  std::array<unsigned char, 16> bytes{};
  cidr out;
  int bits = 0;
  if (::inet_pton(AF_INET, addr.c_str(), bytes.data()) == 1) {
    bits = 32;
  } else if (::inet_pton(AF_INET6, addr.c_str(), bytes.data()) == 1) {
    bits = 128;
    out.v6 = true;
  } else {
    return std::nullopt;
  }
  if (prefix < 0) prefix = bits;
  if (prefix > bits) return std::nullopt;
  for (int i = 0; i < bits / 8; ++i) {
    int keep = std::clamp(prefix - i * 8, 0, 8);
    bytes[i] &= static_cast<unsigned char>(keep == 0 ? 0 : (0xff << (8 - keep)) & 0xff);
  }
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(out.v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  out.text = std::string(buf) + "/" + std::to_string(prefix);
  return out;
}

std::string_view init_usage() {
  return "usage: devspaces-proxy-init [apply|cleanup|print|verify] [flags]\n"
         "\n"
         "  apply    write the capture rules (chains DEVSPACES_*) for each IP family in one "
         "atomic\n"
         "           iptables-restore --noflush, and the space search list into resolv.conf;\n"
         "           a rerun is a no-op, drifted rules are replaced (default command)\n"
         "  cleanup  remove exactly what apply added (rules, ::6 on lo, resolv.conf entries)\n"
         "  print    write the restore text and the new resolv.conf to stdout, change nothing\n"
         "  verify   check the rules are in place and a redirected test connection reports its\n"
         "           original destination\n"
         "\n"
         "Exit codes: 0 done; 1 failed (nothing half-applied); 2 usage; 3 verify found a problem.\n"
         "Needs root with NET_ADMIN and NET_RAW (apply, cleanup, verify).";
}

std::vector<option_spec> init_options(config& c) {
  std::vector<option_spec> o;
  o.push_back({"--proxy-uid", "DEVSPACES_PROXY_UID", "1337",
               "numeric UID of the proxy; its traffic is never captured", id_setter(c.proxy_uid)});
  o.push_back({"--proxy-gid", "DEVSPACES_PROXY_GID", "1337",
               "numeric GID of the proxy; its traffic is never captured", id_setter(c.proxy_gid)});
  o.push_back({"--outbound-port", "DEVSPACES_OUTBOUND_PORT", "15001",
               "proxy listener that captured outbound TCP is redirected to",
               common::port_setter(c.outbound_port)});
  o.push_back({"--inbound-port", "DEVSPACES_INBOUND_PORT", "15006",
               "proxy listener that captured inbound TCP is redirected to",
               common::port_setter(c.inbound_port)});
  o.push_back({"--inbound-ports", "DEVSPACES_INBOUND_PORTS", "*",
               "inbound ports to capture: '*' (all) or a comma list (empty: none)",
               [&c](std::string_view v) -> err {
                 if (v == "*") {
                   c.inbound_all = true;
                   c.inbound_ports.clear();
                   return std::nullopt;
                 }
                 c.inbound_all = false;
                 return port_list_setter(c.inbound_ports)(v);
               }});
  o.push_back({"--exclude-inbound-ports", "DEVSPACES_EXCLUDE_INBOUND_PORTS", "15090",
               "inbound ports never captured (the proxy's own ports are always added)",
               port_list_setter(c.exclude_inbound_ports)});
  o.push_back({"--exclude-outbound-ports", "DEVSPACES_EXCLUDE_OUTBOUND_PORTS", "",
               "outbound destination ports never captured",
               port_list_setter(c.exclude_outbound_ports)});
  o.push_back({"--include-outbound-cidrs", "DEVSPACES_INCLUDE_OUTBOUND_CIDRS", "*",
               "outbound destinations to capture: '*' (all) or a comma list of CIDRs (v4 and v6)",
               cidr_list_setter(c.include_outbound_cidrs, &c.include_all_cidrs)});
  o.push_back({"--exclude-outbound-cidrs", "DEVSPACES_EXCLUDE_OUTBOUND_CIDRS", "",
               "outbound destinations never captured (exclusions win over inclusions)",
               cidr_list_setter(c.exclude_outbound_cidrs, nullptr)});
  o.push_back({"--ipv6", "DEVSPACES_IPV6", "auto",
               "IPv6 rules: auto (on when /proc/net/if_inet6 lists an address), on, off",
               [&c](std::string_view v) -> err {
                 if (v == "auto")
                   c.ipv6 = ipv6_mode::automatic;
                 else if (v == "on")
                   c.ipv6 = ipv6_mode::on;
                 else if (v == "off")
                   c.ipv6 = ipv6_mode::off;
                 else
                   return "is not auto, on or off";
                 return std::nullopt;
               }});
  o.push_back(
      {"--iptables", "DEVSPACES_IPTABLES", "auto",
       "backend: auto (what the namespace already uses, else nft, else legacy), legacy, nft",
       [&c](std::string_view v) -> err {
         if (v == "auto")
           c.iptables = backend_mode::automatic;
         else if (v == "legacy")
           c.iptables = backend_mode::legacy;
         else if (v == "nft")
           c.iptables = backend_mode::nft;
         else
           return "is not auto, legacy or nft";
         return std::nullopt;
       }});
  o.push_back({"--resolv-conf", "DEVSPACES_RESOLV_CONF", "/etc/resolv.conf",
               "resolv.conf to put the space search list into, in place (empty: leave DNS alone)",
               [&c](std::string_view v) -> err {
                 c.resolv_conf = std::string(v);
                 return std::nullopt;
               }});
  o.push_back({"--space", "DEVSPACES_SPACE", "",
               "the pod's own space (default: POD_NAMESPACE, else default)",
               common::space_setter(c.space)});
  o.push_back({"--parent-spaces", "DEVSPACES_PARENT_SPACES", "",
               "comma list: parent, grandparent of the own space",
               common::parent_spaces_setter(c.parent_spaces)});
  o.push_back({"--cluster-domain", "DEVSPACES_CLUSTER_DOMAIN", "cluster.local",
               "cluster DNS domain", common::domain_setter(c.cluster_domain)});
  o.push_back({"--command-timeout", "DEVSPACES_INIT_COMMAND_TIMEOUT", "30s",
               "limit for each iptables command (legacy lock wait included)",
               [&c](std::string_view v) -> err {
                 auto d = common::parse_duration(v);
                 if (!d || d->count() < 1000) return "is not a duration of at least 1s";
                 c.command_timeout = *d;
                 return std::nullopt;
               }});
  return o;
}

parse_outcome parse_config(std::span<const std::string> args, const common::env_lookup& env) {
  parse_outcome out;
  auto specs = init_options(out.cfg);
  auto r = common::parse_options(specs, args, env);
  out.help = r.help;
  out.help_markdown = r.help_markdown;
  out.version = r.version;
  if (r.error) {
    out.error = r.error;
    return out;
  }
  if (r.positional.size() > 1) {
    out.error = "more than one command given ('" + r.positional[1] + "')";
    return out;
  }
  if (!r.positional.empty()) {
    const auto& cmd = r.positional[0];
    if (cmd != "apply" && cmd != "cleanup" && cmd != "print" && cmd != "verify") {
      out.error = "unknown command '" + cmd + "' (apply, cleanup, print, verify)";
      return out;
    }
    out.cfg.command = cmd;
  }
  if (out.cfg.space.empty()) {
    auto ns = env ? env("POD_NAMESPACE") : std::nullopt;
    std::string s = ns ? common::to_lower(*ns) : "";
    out.cfg.space = common::is_dns_label(s) ? s : "default";
  }
  if (out.cfg.inbound_port == out.cfg.outbound_port) {
    out.error = "--inbound-port and --outbound-port must differ";
    return out;
  }
  return out;
}

}  // namespace devspaces::init
