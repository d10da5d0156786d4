#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace devspaces::proxy::routing {

/// Where the route space came from (trace field route_as_source).
enum class route_source { header, baggage, kubernetes_route_as, host, memory, none };

/// Which level of the space chain served the request (trace field route.decision).
enum class decision_kind { own, parent, grandparent, original };

/// One candidate name and what the resolver said: "nxdomain", "error", "timeout" or an address.
struct tried_name {
  std::string name;
  std::string result;
};

/// The explanation of one routing decision, kept with the exchange for its trace record.
struct route_decision {
  std::optional<std::string> service;  ///< null when no routing was attempted
  decision_kind decision = decision_kind::original;
  std::optional<int> level;  ///< 0, 1, 2; null for original
  std::vector<tried_name> tried;
};

/// The explanation of a request that was not routed by a space (decision "original", nothing
/// looked up). Decisions are shared, not copied: a remembered one goes to every record it
/// explains.
const std::shared_ptr<const route_decision>& no_decision();

/// "own", "parent", "grandparent", "original".
const char* to_string(decision_kind d);
/// "header", "baggage", "kubernetes-route-as", "host", "memory", "none".
const char* to_string(route_source s);

}  // namespace devspaces::proxy::routing
