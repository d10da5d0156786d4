#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devspaces::init {

/// Comment line that records what apply changed, so reruns and cleanup know what is ours.
inline constexpr std::string_view resolv_marker = "# devspaces-proxy-init added:";

/// Limits kept for the search list. Classic glibc (before 2.26) keeps 6 domains and 256
/// characters; musl reads resolv.conf lines into a 256-byte buffer and ignores a longer line
/// entirely. Modern glibc has no limit, but one musl-based container would then lose the whole
/// list, so the classic limits are kept.
struct search_limits {
  std::size_t max_domains = 6;
  std::size_t max_chars = 247;  ///< of the space-joined list: "search " + list + "\n" <= 255
};

/// The search domains the pod's space chain needs: own space first, then the parents.
std::vector<std::string> space_search_domains(std::string_view space,
                                              const std::vector<std::string>& parents,
                                              std::string_view cluster_domain);

/// Result of editing resolv.conf text.
struct resolv_edit {
  std::string text;                  ///< the new file content
  bool changed = false;              ///< text differs from the input
  std::vector<std::string> search;   ///< the effective search list afterwards
  std::vector<std::string> added;    ///< entries this edit put there (recorded in the marker)
  std::vector<std::string> dropped;  ///< existing entries left out to respect the limits
};

/// Puts `wanted` first in the search list, then the entries that were there, without
/// duplicates; keeps nameservers, options and comments. Rerunning on its own output changes
/// nothing (pure).
resolv_edit add_search_domains(std::string_view text, const std::vector<std::string>& wanted,
                               search_limits limits = {});

/// Removes what add_search_domains added; restores the original search line when nobody
/// edited it since (pure).
resolv_edit remove_search_domains(std::string_view text);

/// The nameserver addresses in resolv.conf text, in order (IPv6 scope ids stripped).
std::vector<std::string> resolv_nameservers(std::string_view text);

/// Reads a whole file; nullopt and `error` set when it cannot.
std::optional<std::string> read_text_file(const std::string& path, std::string& error);

/// Rewrites a file in place (truncate + write, same inode): resolv.conf is a bind mount, so a
/// rename over it would fail. Returns false and sets `error` on failure.
bool write_in_place(const std::string& path, std::string_view text, std::string& error);

}  // namespace devspaces::init
