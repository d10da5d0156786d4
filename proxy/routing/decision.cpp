#include "proxy/routing/decision.hpp"

namespace devspaces::proxy::routing {

const std::shared_ptr<const route_decision>& no_decision() {
  static const auto none = std::make_shared<const route_decision>();
  return none;
}

const char* to_string(decision_kind d) {
  switch (d) {
    case decision_kind::own:
      return "own";
    case decision_kind::parent:
      return "parent";
    case decision_kind::grandparent:
      return "grandparent";
    case decision_kind::original:
      break;
  }
  return "original";
}

const char* to_string(route_source s) {
  switch (s) {
    case route_source::header:
      return "header";
    case route_source::baggage:
      return "baggage";
    case route_source::kubernetes_route_as:
      return "kubernetes-route-as";
    case route_source::host:
      return "host";
    case route_source::memory:
      return "memory";
    case route_source::none:
      break;
  }
  return "none";
}

}  // namespace devspaces::proxy::routing
