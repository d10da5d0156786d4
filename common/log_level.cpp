#include "common/log_level.hpp"

#include <array>
#include <utility>

#include "common/options.hpp"

namespace devspaces::common {

std::optional<log_level> parse_log_level(std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, log_level>, 8> names{{
      {"trace", log_level::trace},
      {"debug", log_level::debug},
      {"info", log_level::info},
      {"warn", log_level::warn},
      {"warning", log_level::warn},  // what JSON log lines print
      {"error", log_level::error},
      {"err", log_level::error},
      {"off", log_level::off},
  }};
  const std::string lower = to_lower(text);
  for (const auto& [name, level] : names)
    if (lower == name) return level;
  return std::nullopt;
}

std::string_view log_level_name(log_level level) {
  switch (level) {
    case log_level::trace:
      return "trace";
    case log_level::debug:
      return "debug";
    case log_level::info:
      return "info";
    case log_level::warn:
      return "warn";
    case log_level::error:
      return "error";
    case log_level::off:
      return "off";
  }
  return "info";
}

std::string_view log_level_names() {
  return "trace, debug, info, warn, error, off";
}

}  // namespace devspaces::common
