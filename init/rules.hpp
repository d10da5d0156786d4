#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "init/config.hpp"

namespace devspaces::init {

/// The IP family a restore document is for (iptables vs ip6tables).
enum class family { v4, v6 };

/// "ipv4" / "ipv6", for messages.
std::string_view family_name(family f);

/// Prefix of every chain the init owns; only jumps into these live in built-in chains.
inline constexpr std::string_view chain_prefix = "DEVSPACES_";
/// Chain in the filter table that holds the DROP guardrails while drifted rules are swapped.
inline constexpr std::string_view guard_chain = "DEVSPACES_GUARD";
/// Source address the proxy uses to reach the app (inbound passthrough), per family.
std::string_view passthrough_source(family f);

/// One table's worth of rules: the chains to declare and the `-A` lines, in order.
/// The text is in the canonical form iptables-save prints, so the live state compares as text.
struct rule_set {
  std::string table;                ///< "nat"
  std::vector<std::string> chains;  ///< chains to declare (all DEVSPACES_*)
  std::vector<std::string> rules;   ///< "-A CHAIN ..." lines, jumps from built-ins first
};

/// Builds the capture rules of one family from the config (pure). `dns_servers` are the
/// nameserver addresses of that family read from resolv.conf: TCP port 53 to them is left alone.
rule_set build_rules(const config& c, family f, const std::vector<std::string>& dns_servers);

/// Renders a rule set as an `iptables-restore --noflush` document (what `print` shows).
std::string render_restore(const rule_set& rs);

/// What of ours is present in one table of an iptables-save dump.
struct table_state {
  /// DEVSPACES_* chains and their rules ("-A CHAIN ..." lines as saved).
  std::map<std::string, std::vector<std::string>> chains;
  /// Rules in other chains that jump to a DEVSPACES_* chain, sorted (duplicates kept).
  std::vector<std::string> jumps;
  bool empty() const { return chains.empty() && jumps.empty(); }
  bool operator==(const table_state&) const = default;
};

/// Parses an iptables-save dump (all tables) into our state per table name (pure).
std::map<std::string, table_state> parse_save(std::string_view save_text);

/// The state a rule set produces once applied.
table_state expected_state(const rule_set& rs);

/// One line per difference between the live and the expected state ("missing rule: ...").
std::vector<std::string> describe_drift(const table_state& actual, const table_state& expected);

/// Restore document that replaces whatever of ours is in `actual` with `rs`, in one commit:
/// declares (creates or flushes) our chains, deletes stale jumps and chains, appends the rules.
std::string reconcile_restore(const rule_set& rs, const table_state& actual);

/// Restore document that removes everything of ours from `table` (empty when nothing is there).
std::string cleanup_restore(std::string_view table, const table_state& actual);

/// Restore document that drops all TCP in the filter table (INPUT and OUTPUT) through
/// DEVSPACES_GUARD while the nat rules are swapped.
std::string guard_restore();

}  // namespace devspaces::init
