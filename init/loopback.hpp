#pragma once

#include <string>
#include <string_view>

namespace devspaces::init {

/// True when /proc/net/if_inet6-style text lists ::6 on lo (pure).
bool has_passthrough_v6(std::string_view if_inet6);

/// Adds ::6/128 to lo (IPv6 lo only has ::1, and the proxy binds ::6 as the source of its
/// connections to the app). Returns false and sets `error` on failure.
bool add_passthrough_v6(std::string& error);

/// Removes ::6/128 from lo. Returns false and sets `error` on failure.
bool remove_passthrough_v6(std::string& error);

}  // namespace devspaces::init
