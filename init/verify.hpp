#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "init/config.hpp"
#include "init/rules.hpp"

namespace devspaces::init {

/// An address and port in text form ("198.18.255.1", 15002).
struct endpoint_text {
  std::string address;
  std::uint16_t port = 0;
};

/// True when `address` lies in `net` (pure).
bool cidr_contains(const cidr& net, std::string_view address);

/// The outbound test destination: 198.18.255.1 / fd00:198:18:ffff::1 (never routed outside: the
/// connection is redirected before it leaves), or an address inside the first include CIDR when
/// those do not cover it; a port that is not excluded. nullopt when the config captures no
/// outbound traffic of the family.
std::optional<endpoint_text> outbound_probe_target(const config& c, family f);

/// A captured inbound port for the inbound test (nullopt when inbound capture is off).
std::optional<std::uint16_t> inbound_probe_port(const config& c);

/// Outcome of one redirected test connection.
struct probe_outcome {
  enum class status { ok, skipped, failed } result = status::failed;
  std::string message;
};

/// Listens on `listen` (the capture port), connects to `target` from a socket created under the
/// file-system ids `fs_uid`/`fs_gid` (what -m owner matches), and checks that the accepted
/// connection's SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST is `target`. No route → skipped.
probe_outcome probe_redirect(family f, const endpoint_text& listen, const endpoint_text& target,
                             std::uint32_t fs_uid, std::uint32_t fs_gid,
                             std::chrono::milliseconds timeout);

/// A non-loopback, non-link-local address of the pod in the family (for the inbound test).
std::optional<std::string> pod_address(family f);

}  // namespace devspaces::init
