#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace devspaces::common {

/// A parsed duration or the reason it was refused (one phrase, e.g. "is negative").
struct duration_parse {
  std::optional<std::chrono::milliseconds> value;
  std::string error;  ///< empty when value is set
};

/// Parses a Go-style duration (as Kubernetes manifests write them): one or more decimal numbers,
/// each with an optional fraction and a unit, e.g. "1m30s", "1.5s", "500ms", "2h45m"; units ns,
/// us (or µs), ms, s, m, h; a bare "0" is zero. The value must be a whole number of milliseconds
/// and at most 2562047h (the range of Go's time.Duration). Negative values are refused.
duration_parse parse_duration_checked(std::string_view text);

/// parse_duration_checked without the reason: nullopt when malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

/// Formats a duration in the largest unit that represents it exactly ("1500ms", "5s", "1h").
std::string format_duration(std::chrono::milliseconds d);

}  // namespace devspaces::common
