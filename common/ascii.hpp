#pragma once

#include <cstddef>
#include <string_view>

namespace devspaces::common {

/// ASCII case-insensitive equality of header names and tokens. Inline: most calls compare a
/// field name with a constant of another length, which the size check ends at once.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const char x = a[i];
    const char y = b[i];
    if (x == y) continue;
    // Equal ignoring case only when they differ in the case bit and are letters.
    if ((x ^ y) != 0x20) return false;
    const char l = static_cast<char>(x | 0x20);
    if (l < 'a' || l > 'z') return false;
  }
  return true;
}

}  // namespace devspaces::common
