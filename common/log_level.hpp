#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace devspaces::common {

/// Log levels, least to most severe; `off` logs nothing.
enum class log_level { trace, debug, info, warn, error, off };

/// Parses a level name in any case: trace, debug, info, warn (or warning), error (or err), off.
std::optional<log_level> parse_log_level(std::string_view text);

/// The canonical name: "trace", "debug", "info", "warn", "error", "off".
std::string_view log_level_name(log_level level);

/// The names --help shows, e.g. "trace, debug, info, warn, error, off".
std::string_view log_level_names();

}  // namespace devspaces::common
