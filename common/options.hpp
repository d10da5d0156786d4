#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace devspaces::common {

/// One command-line flag with its environment variable: flags beat env beat the default.
struct option_spec {
  std::string flag;           ///< "--outbound-port"
  std::string env;            ///< "DEVSPACES_OUTBOUND_PORT" (empty: no env variable)
  std::string default_value;  ///< text applied when neither flag nor env is given (empty: none)
  std::string help;           ///< one line for --help
  /// Applies a value; returns an error text ("is not a port (1-65535)") or nullopt.
  std::function<std::optional<std::string>(std::string_view)> apply;
};

/// What parse_options found besides the applied values.
struct parse_result {
  std::vector<std::string> positional;
  bool help = false;
  bool version = false;
  std::optional<std::string> error;  ///< one line naming the flag and the problem
};

/// Looks up an environment variable; main passes getenv, tests pass a map.
using env_lookup = std::function<std::optional<std::string>(const std::string&)>;

/// Applies defaults, then env, then flags (`--flag value` or `--flag=value`), in that order.
parse_result parse_options(std::span<const option_spec> specs, std::span<const std::string> args,
                           const env_lookup& env);

/// Renders the --help text: usage line, then one line per option with env and default.
std::string render_help(std::string_view usage, std::span<const option_spec> specs);

// Value parsers shared by both binaries. Each returns nullopt on malformed input.

/// A TCP port 1..65535.
std::optional<std::uint16_t> parse_port(std::string_view text);
/// A comma list of ports; empty text is an empty list.
std::optional<std::vector<std::uint16_t>> parse_port_list(std::string_view text);
/// A non-negative integer up to max.
std::optional<std::uint64_t> parse_uint(std::string_view text, std::uint64_t max);
/// Splits "a, b,c" into trimmed non-empty items.
std::vector<std::string> split_list(std::string_view text);
/// True for a DNS label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters (lowercase only).
bool is_dns_label(std::string_view text);
/// Lowercases ASCII.
std::string to_lower(std::string_view text);
/// True for a DNS domain: dot-separated DNS labels, at most 253 characters.
bool is_dns_domain(std::string_view text);

// Setters for the flags both binaries share (same checks, same error texts).

/// Signature of option_spec::apply.
using option_setter = std::function<std::optional<std::string>(std::string_view)>;
/// A port 1..65535.
option_setter port_setter(std::uint16_t& out);
/// A duration ("250ms", "5s", "2m", "1h").
option_setter duration_setter(std::chrono::milliseconds& out);
/// A space name (DNS label, lowercased).
option_setter space_setter(std::string& out);
/// --parent-spaces: up to two space names, parent then grandparent.
option_setter parent_spaces_setter(std::vector<std::string>& out);
/// --cluster-domain: a DNS domain, lowercased.
option_setter domain_setter(std::string& out);

}  // namespace devspaces::common
