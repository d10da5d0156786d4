#include "init/rules.hpp"

#include <algorithm>

namespace devspaces::init {

namespace {

constexpr std::size_t multiport_limit = 15;  // xt_multiport takes at most 15 ports per rule

const std::string inbound_chain = "DEVSPACES_INBOUND";
const std::string in_redirect_chain = "DEVSPACES_IN_REDIRECT";
const std::string output_chain = "DEVSPACES_OUTPUT";
const std::string redirect_chain = "DEVSPACES_REDIRECT";

std::string join_ports(std::span<const std::uint16_t> ports) {
  std::string out;
  for (auto p : ports) {
    if (!out.empty()) out += ',';
    out += std::to_string(p);
  }
  return out;
}

/// TCP destination-port matches for a list, one per chunk of at most 15 ports.
std::vector<std::string> port_matches(const std::vector<std::uint16_t>& ports) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < ports.size(); i += multiport_limit) {
    auto chunk = std::span(ports).subspan(i, std::min(multiport_limit, ports.size() - i));
    if (chunk.size() == 1)
      out.push_back("-p tcp -m tcp --dport " + std::to_string(chunk[0]));
    else
      out.push_back("-p tcp -m multiport --dports " + join_ports(chunk));
  }
  return out;
}

bool starts_with_prefix(std::string_view chain) {
  return chain.starts_with(chain_prefix);
}

/// Splits "-A CHAIN rest" into CHAIN; empty when the line is not an append.
std::string_view append_chain(std::string_view line) {
  if (!line.starts_with("-A ")) return {};
  line.remove_prefix(3);
  return line.substr(0, line.find(' '));
}

bool jumps_to_ours(std::string_view line) {
  for (std::string_view flag : {" -j ", " -g "}) {
    auto pos = line.find(flag);
    if (pos != std::string_view::npos && line.substr(pos + 4).starts_with(chain_prefix))
      return true;
  }
  return false;
}

}  // namespace

std::string_view family_name(family f) {
  return f == family::v4 ? "ipv4" : "ipv6";
}

std::string_view passthrough_source(family f) {
  return f == family::v4 ? "127.0.0.6" : "::6";
}

rule_set build_rules(const config& c, family f, const std::vector<std::string>& dns_servers) {
  const bool v6 = f == family::v6;
  const std::string host_bits = v6 ? "/128" : "/32";
  const std::string loopback = std::string(v6 ? "::1" : "127.0.0.1") + host_bits;
  const std::string passthrough = std::string(passthrough_source(f)) + host_bits;
  const std::string uid = std::to_string(c.proxy_uid);
  const std::string gid = std::to_string(c.proxy_gid);

  rule_set rs;
  rs.table = "nat";
  rs.chains = {inbound_chain, in_redirect_chain, output_chain, redirect_chain};
  auto add = [&rs](const std::string& chain, const std::string& spec) {
    rs.rules.push_back("-A " + chain + " " + spec);
  };

  // Jumps from the built-in chains: the only rules outside our own chains.
  add("PREROUTING", "-p tcp -j " + inbound_chain);
  add("OUTPUT", "-p tcp -j " + output_chain);

  // Inbound: the proxy's own ports and the exclusions first, then the capture.
  std::vector<std::uint16_t> excluded{c.outbound_port, c.inbound_port};
  if (std::find(excluded.begin(), excluded.end(), c.admin_port) == excluded.end())
    excluded.push_back(c.admin_port);
  for (auto p : c.exclude_inbound_ports)
    if (std::find(excluded.begin(), excluded.end(), p) == excluded.end()) excluded.push_back(p);
  for (const auto& m : port_matches(excluded)) add(inbound_chain, m + " -j RETURN");
  if (c.inbound_all) {
    add(inbound_chain, "-p tcp -j " + in_redirect_chain);
  } else {
    std::vector<std::uint16_t> captured;
    for (auto p : c.inbound_ports)
      if (std::find(excluded.begin(), excluded.end(), p) == excluded.end()) captured.push_back(p);
    for (const auto& m : port_matches(captured)) add(inbound_chain, m + " -j " + in_redirect_chain);
  }
  add(in_redirect_chain, "-p tcp -j REDIRECT --to-ports " + std::to_string(c.inbound_port));

  // Outbound, in order. 1: the proxy's passthrough connections to the app.
  add(output_chain, "-s " + passthrough + " -o lo -j RETURN");
  // 2: the proxy reaching its own pod address over lo is inbound traffic for the pod.
  add(output_chain,
      "! -d " + loopback + " -o lo -m owner --uid-owner " + uid + " -j " + inbound_chain);
  add(output_chain,
      "! -d " + loopback + " -o lo -m owner --gid-owner " + gid + " -j " + inbound_chain);
  // 3: everything else the proxy sends is never captured (loop prevention, numeric ids).
  add(output_chain, "-m owner --uid-owner " + uid + " -j RETURN");
  add(output_chain, "-m owner --gid-owner " + gid + " -j RETURN");
  // 4: the app talking to itself (127.0.0.1, ::1, its own pod address) stays direct.
  add(output_chain, "-o lo -j RETURN");
  // 5: DNS over TCP to the configured nameservers is left alone.
  for (const auto& ns : dns_servers)
    add(output_chain, "-d " + ns + host_bits + " -p tcp -m tcp --dport 53 -j RETURN");
  // 6: exclusions before inclusions.
  for (const auto& m : port_matches(c.exclude_outbound_ports)) add(output_chain, m + " -j RETURN");
  for (const auto& n : c.exclude_outbound_cidrs)
    if (n.v6 == v6) add(output_chain, "-d " + n.text + " -j RETURN");
  if (c.include_all_cidrs) {
    add(output_chain, "-j " + redirect_chain);
  } else {
    for (const auto& n : c.include_outbound_cidrs)
      if (n.v6 == v6) add(output_chain, "-d " + n.text + " -j " + redirect_chain);
  }
  add(redirect_chain, "-p tcp -j REDIRECT --to-ports " + std::to_string(c.outbound_port));
  return rs;
}

std::string render_restore(const rule_set& rs) {
  std::string out = "*" + rs.table + "\n";
  for (const auto& ch : rs.chains) out += ":" + ch + " - [0:0]\n";
  for (const auto& r : rs.rules) out += r + "\n";
  out += "COMMIT\n";
  return out;
}

std::map<std::string, table_state> parse_save(std::string_view text) {
  std::map<std::string, table_state> out;
  std::string table;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.starts_with("*")) {
      table = std::string(line.substr(1));
      out[table];
    } else if (line.starts_with(":")) {
      auto name = line.substr(1, line.find(' ') - 1);
      if (starts_with_prefix(name)) out[table].chains[std::string(name)];
    } else if (auto chain = append_chain(line); !chain.empty()) {
      if (starts_with_prefix(chain))
        out[table].chains[std::string(chain)].emplace_back(line);
      else if (jumps_to_ours(line))
        out[table].jumps.emplace_back(line);
    }
  }
  for (auto& [name, st] : out) std::sort(st.jumps.begin(), st.jumps.end());
  return out;
}

table_state expected_state(const rule_set& rs) {
  table_state st;
  for (const auto& ch : rs.chains) st.chains[ch];
  for (const auto& r : rs.rules) {
    auto chain = std::string(append_chain(r));
    if (starts_with_prefix(chain))
      st.chains[chain].push_back(r);
    else
      st.jumps.push_back(r);
  }
  std::sort(st.jumps.begin(), st.jumps.end());
  return st;
}

std::vector<std::string> describe_drift(const table_state& actual, const table_state& expected) {
  std::vector<std::string> out;
  for (const auto& [name, rules] : expected.chains) {
    auto it = actual.chains.find(name);
    if (it == actual.chains.end()) {
      out.push_back("missing chain " + name);
      continue;
    }
    const auto before = out.size();
    for (const auto& r : rules)
      if (std::find(it->second.begin(), it->second.end(), r) == it->second.end())
        out.push_back("missing rule: " + r);
    for (const auto& r : it->second)
      if (std::find(rules.begin(), rules.end(), r) == rules.end())
        out.push_back("unexpected rule: " + r);
    if (out.size() == before && it->second != rules) out.push_back("rules out of order in " + name);
  }
  for (const auto& [name, rules] : actual.chains)
    if (!expected.chains.contains(name)) out.push_back("unexpected chain " + name);
  for (const auto& j : expected.jumps)
    if (std::count(actual.jumps.begin(), actual.jumps.end(), j) == 0)
      out.push_back("missing jump: " + j);
  for (const auto& j : actual.jumps) {
    auto n = std::count(expected.jumps.begin(), expected.jumps.end(), j);
    auto m = std::count(actual.jumps.begin(), actual.jumps.end(), j);
    if (n == 0)
      out.push_back("unexpected jump: " + j);
    else if (m > n && &j == &*std::find(actual.jumps.begin(), actual.jumps.end(), j))
      out.push_back("duplicate jump: " + j);
  }
  return out;
}

std::string reconcile_restore(const rule_set& rs, const table_state& actual) {
  std::string out = "*" + rs.table + "\n";
  // A chain declaration creates the chain, or flushes it when it exists (--noflush).
  for (const auto& ch : rs.chains) out += ":" + ch + " - [0:0]\n";
  for (const auto& j : actual.jumps) out += "-D" + j.substr(2) + "\n";
  std::vector<std::string> stale;
  for (const auto& [name, rules] : actual.chains)
    if (std::find(rs.chains.begin(), rs.chains.end(), name) == rs.chains.end())
      stale.push_back(name);
  for (const auto& s : stale) out += "-F " + s + "\n";
  for (const auto& s : stale) out += "-X " + s + "\n";
  for (const auto& r : rs.rules) out += r + "\n";
  out += "COMMIT\n";
  return out;
}

std::string cleanup_restore(std::string_view table, const table_state& actual) {
  if (actual.empty()) return {};
  std::string out = "*" + std::string(table) + "\n";
  for (const auto& j : actual.jumps) out += "-D" + j.substr(2) + "\n";
  for (const auto& [name, rules] : actual.chains) out += "-F " + name + "\n";
  for (const auto& [name, rules] : actual.chains) out += "-X " + name + "\n";
  out += "COMMIT\n";
  return out;
}

std::string guard_restore() {
  const std::string g(guard_chain);
  return "*filter\n:" + g + " - [0:0]\n-I INPUT 1 -p tcp -j " + g + "\n-I OUTPUT 1 -p tcp -j " + g +
         "\n-A " + g + " -j DROP\nCOMMIT\n";
}

}  // namespace devspaces::init
