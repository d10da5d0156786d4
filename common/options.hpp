#pragma once

#include <chrono>
#include <cstddef>
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
  bool help = false;                 ///< -h / --help
  bool help_markdown = false;        ///< --help-markdown: the flag table as Markdown (docs/)
  bool version = false;              ///< --version
  std::optional<std::string> error;  ///< one line naming the flag and the problem
};

/// Looks up an environment variable; main passes getenv, tests pass a map.
using env_lookup = std::function<std::optional<std::string>(const std::string&)>;

/// Applies defaults, then env, then flags (`--flag value` or `--flag=value`; the last of a
/// repeated flag wins), in that order. The command line is tokenised by CLI11; the values go
/// through each spec's apply. With --help, --help-markdown or --version nothing but the
/// defaults is applied, so a bad environment cannot hide the help. An unknown flag's error
/// suggests the flag meant ("did you mean --idle-timeout?").
parse_result parse_options(std::span<const option_spec> specs, std::span<const std::string> args,
                           const env_lookup& env);

/// The flag of `specs` closest to the unknown `name` (a typo, `_` for `-`, a unique prefix), or
/// nullopt when none is close.
std::optional<std::string> suggest_flag(std::span<const option_spec> specs, std::string_view name);

/// Columns of the terminal help is written for: COLUMNS when set, else the width of the
/// terminal on stdout, else 80; kept within 40..120 so lines stay readable.
std::size_t terminal_width();

/// Renders the --help text wrapped to `width` columns: the usage text, then each option with its
/// help, environment variable and default.
std::string render_help(std::string_view usage, std::span<const option_spec> specs,
                        std::size_t width = terminal_width());

/// Renders the same table as a Markdown table (flag, env, default, meaning) for docs/.
std::string render_markdown(std::span<const option_spec> specs);

/// The --version line: "<program> <version> (commit <commit>, <build type> build)".
std::string version_text(std::string_view program, std::string_view version,
                         std::string_view commit, std::string_view build_type);

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
/// A Go-style duration ("1m30s", "1.5s", "500ms", "0"; see parse_duration_checked).
option_setter duration_setter(std::chrono::milliseconds& out);
/// A log level name in any case, stored by its canonical name ("WARNING" -> "warn").
option_setter log_level_setter(std::string& out);
/// A space name (DNS label, lowercased).
option_setter space_setter(std::string& out);
/// --parent-spaces: up to two space names, parent then grandparent.
option_setter parent_spaces_setter(std::vector<std::string>& out);
/// --cluster-domain: a DNS domain, lowercased.
option_setter domain_setter(std::string& out);

}  // namespace devspaces::common
