#include "common/duration.hpp"

#include <cstdint>
#include <limits>

namespace devspaces::common {

namespace {

constexpr std::uint64_t max_ns =
    static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

/// Nanoseconds per unit, or 0 for an unknown unit.
std::uint64_t unit_ns(std::string_view unit) {
  if (unit == "ns") return 1;
  if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") return 1'000;  // µ or μ
  if (unit == "ms") return 1'000'000;
  if (unit == "s") return 1'000'000'000;
  if (unit == "m") return 60'000'000'000;
  if (unit == "h") return 3'600'000'000'000;
  return 0;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

duration_parse refuse(std::string reason) {
  return {std::nullopt, std::move(reason)};
}

}  // namespace

duration_parse parse_duration_checked(std::string_view text) {
  constexpr const char* example = " (e.g. 1m30s, 1.5s, 500ms, 2h45m)";
  if (text.empty()) return refuse(std::string("is not a duration") + example);
  if (text.front() == '-') return refuse("is negative (a duration is 0 or more)");
  if (text.front() == '+') text.remove_prefix(1);
  if (text == "0") return {std::chrono::milliseconds(0), {}};
  std::uint64_t total = 0;
  bool overflow = false;
  while (!text.empty()) {
    std::size_t i = 0;
    std::uint64_t whole = 0;
    bool big = false;
    while (i < text.size() && is_digit(text[i])) {
      if (whole > (max_ns - 9) / 10)
        big = true;
      else
        whole = whole * 10 + static_cast<std::uint64_t>(text[i] - '0');
      ++i;
    }
    const std::size_t int_digits = i;
    std::string_view fraction;
    if (i < text.size() && text[i] == '.') {
      const std::size_t start = ++i;
      while (i < text.size() && is_digit(text[i])) ++i;
      fraction = text.substr(start, i - start);
    }
    if (int_digits == 0 && fraction.empty())
      return refuse(std::string("is not a duration") + example);
    std::size_t u = i;
    while (u < text.size() && !is_digit(text[u]) && text[u] != '.') ++u;
    const std::string_view unit = text.substr(i, u - i);
    if (unit.empty())
      return refuse(std::string("has a number without a unit (ns, us, ms, s, m, h)") + example);
    const std::uint64_t scale = unit_ns(unit);
    if (scale == 0)
      return refuse("has an unknown unit '" + std::string(unit) + "' (ns, us, ms, s, m, h)");
    if (big || whole > max_ns / scale) {
      overflow = true;
    } else {
      std::uint64_t part = whole * scale;
      // The fraction, digit by digit, down to a nanosecond (more digits cannot matter).
      std::uint64_t f_scale = scale;
      for (char c : fraction) {
        f_scale /= 10;
        if (f_scale == 0) break;
        part += static_cast<std::uint64_t>(c - '0') * f_scale;
      }
      if (part > max_ns - total)
        overflow = true;
      else
        total += part;
    }
    text.remove_prefix(u);
  }
  if (overflow) return refuse("is too long (at most 2562047h)");
  if (total % 1'000'000 != 0) return refuse("is finer than the resolution of 1ms");
  return {std::chrono::milliseconds(static_cast<std::int64_t>(total / 1'000'000)), {}};
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  return parse_duration_checked(text).value;
}

std::string format_duration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace devspaces::common
