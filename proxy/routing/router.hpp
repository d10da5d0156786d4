#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>

#include "proxy/config.hpp"
#include "proxy/metrics.hpp"
#include "proxy/routing/decision.hpp"
#include "proxy/routing/resolver.hpp"
#include "proxy/routing/space_tree.hpp"

namespace devspaces::proxy::routing {

/// What the router decided for one HTTP request (proxy/routing/README.md).
struct route_result {
  /// The valid space from the route header (or, inbound, from the Host), lowercase.
  std::optional<std::string> route_as;
  /// Where route_as came from (trace field route_as_source).
  route_source source = route_source::none;
  /// The route_decisions_total label this request was counted under (already counted by the
  /// router; nullopt when the request was not counted: inbound requests without an invalid
  /// header).
  std::optional<route_outcome> metric;
  /// The explanation for the trace record (service, decision, level, tried names).
  route_decision decision;
  /// Outbound: the chosen upstream address; connect to it on the original destination's port.
  /// nullopt: connect to the original destination.
  std::optional<boost::asio::ip::address> target;
  /// Inbound: add "<route-header>: <*route_as>" to the request head.
  bool insert_header = false;
};

/// Routes HTTP requests by the route header. One router per worker: it is used from the
/// worker's io_context thread only and takes no locks. The space tree is shared between
/// workers through `space_tree_holder` (an atomically swapped snapshot); the resolver (and its
/// cache) belongs to the worker.
class router {
 public:
  /// `resolver` must live on `ex` (make_resolver with the same executor).
  router(boost::asio::any_io_executor ex, std::shared_ptr<const config> cfg, proxy_metrics& metrics,
         std::shared_ptr<const space_tree_holder> tree, std::shared_ptr<resolver> resolver);

  /// Inbound request (listener --inbound-port). `host` is the Host header value as received
  /// (port allowed); `header_values` holds every value of the route header in the request
  /// (0, 1 or more). Never resolves anything: the request goes to the original destination.
  /// Counts route_decisions_total{decision="invalid_header"} for an invalid header only.
  route_result route_inbound(std::string_view host,
                             std::span<const std::string_view> header_values) const;

  /// Outbound request (listener --outbound-port). Same arguments; they must stay valid until
  /// the returned awaitable completes (true when it is co_awaited at once). Never throws;
  /// lookups are bounded by the resolver's timeout. Counts exactly one route_decisions_total
  /// label per call (no_header, invalid_header, own, parent, grandparent or original).
  boost::asio::awaitable<route_result> route_outbound(
      std::string_view host, std::span<const std::string_view> header_values);

  /// The worker's resolver (for tests and /config).
  resolver& dns() { return *resolver_; }

 private:
  boost::asio::any_io_executor ex_;
  std::shared_ptr<const config> cfg_;
  proxy_metrics& metrics_;
  std::shared_ptr<const space_tree_holder> tree_;
  std::shared_ptr<resolver> resolver_;
  std::string cluster_domain_;  ///< lowercase, no trailing dot
};

}  // namespace devspaces::proxy::routing
