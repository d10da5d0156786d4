#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace devspaces::common {

/// Parses "250ms", "5s", "2m", "1h" (an integer and a unit, nothing else); nullopt when malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

/// Formats a duration in the largest unit that represents it exactly ("1500ms", "5s", "1h").
std::string format_duration(std::chrono::milliseconds d);

}  // namespace devspaces::common
