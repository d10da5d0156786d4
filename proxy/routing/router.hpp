#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>

#include "proxy/config.hpp"
#include "proxy/metrics.hpp"
#include "proxy/routing/carriers.hpp"
#include "proxy/routing/decision.hpp"
#include "proxy/routing/resolver.hpp"
#include "proxy/routing/route_memory.hpp"
#include "proxy/routing/space_tree.hpp"

namespace devspaces::proxy::routing {

/// What the router decided for one HTTP request (proxy/routing/README.md).
struct route_result {
  /// The valid space from a carrier (or, inbound, from the Host; outbound, from route memory),
  /// lowercase.
  std::optional<std::string> route_as;
  /// Where route_as came from (trace field route_as_source).
  route_source source = route_source::none;
  /// The route_decisions_total label this request was counted under (already counted by the
  /// router; nullopt when the request was not counted: inbound requests without an invalid
  /// header).
  std::optional<route_outcome> metric;
  /// The explanation for the trace record (service, decision, level, tried names); never null.
  /// Shared: a remembered decision is handed out again without copying it.
  std::shared_ptr<const route_decision> decision = no_decision();
  /// Outbound: the chosen upstream address; connect to it on the original destination's port.
  /// nullopt: connect to the original destination.
  std::optional<boost::asio::ip::address> target;
  /// Add "<route-header>: <*route_as>" to the request head: inbound when the space came from
  /// the Host or a carrier other than the route header; outbound when the request is routed by
  /// a space that the route header did not carry (baggage, kubernetes-route-as, memory).
  bool insert_header = false;
  /// The trace id of the request's `traceparent`, when it has a valid one.
  std::optional<trace_id> trace;
};

/// Routes HTTP requests by their carriers (route header, `baggage`, `kubernetes-route-as`) and,
/// for outbound calls that lost them, by route memory. One router per worker: it is used from
/// the worker's io_context thread only. The space tree is shared between workers through
/// `space_tree_holder` (an atomically swapped snapshot); the resolver (and its cache) belongs to
/// the worker; the route memory (null when off) is shared by the process's routers.
class router {
 public:
  /// `resolver` must live on `ex` (make_resolver with the same executor).
  router(boost::asio::any_io_executor ex, std::shared_ptr<const config> cfg, proxy_metrics& metrics,
         std::shared_ptr<const space_tree_holder> tree, std::shared_ptr<resolver> resolver,
         std::shared_ptr<route_memory> memory = nullptr);

  /// Inbound request (listener --inbound-port). `host` is the Host header value (or h2
  /// `:authority`) as received, port allowed; `headers` is the request's whole header list.
  /// Never resolves anything: the request goes to the original destination. Counts
  /// route_decisions_total{decision="invalid_header"} for invalid carriers only. A valid space
  /// and a `traceparent` are remembered (route_memory_total{result="stored"}).
  route_result route_inbound(std::string_view host, std::span<const header_ref> headers);

  /// Outbound request (listener --outbound-port). Same arguments; they must stay valid until
  /// the returned awaitable completes (true when it is co_awaited at once). Never throws;
  /// lookups are bounded by the resolver's timeout. Counts exactly one route_decisions_total
  /// label per call (no_header, invalid_header, own, parent, grandparent or original); a
  /// request with no carrier but a remembered trace id is routed as that space.
  boost::asio::awaitable<route_result> route_outbound(std::string_view host,
                                                      std::span<const header_ref> headers);

  /// What route_outbound_now leaves to finish_outbound: the request's carriers, read once.
  struct outbound_pending {
    route_result result;
    std::string space;
    std::string host;
    bool route_header_present = false;
  };
  /// route_outbound without waiting, when nothing needs to be looked up: no valid carrier, a
  /// host that is not a service of the space's chain, or a decision remembered for this space
  /// and host. Otherwise nullopt, and `pending` holds what finish_outbound needs (the carriers
  /// were read and counted once: call finish_outbound exactly once then).
  std::optional<route_result> route_outbound_now(std::string_view host,
                                                 std::span<const header_ref> headers,
                                                 outbound_pending& pending);
  /// Looks up the candidates of a pending request and decides.
  boost::asio::awaitable<route_result> finish_outbound(outbound_pending pending);

  /// Remembered decisions (tests).
  std::size_t remembered() const { return memo_.size(); }

  /// The worker's resolver (for tests and /config).
  resolver& dns() { return *resolver_; }

 private:
  boost::asio::any_io_executor ex_;
  std::shared_ptr<const config> cfg_;
  proxy_metrics& metrics_;
  std::shared_ptr<const space_tree_holder> tree_;
  std::shared_ptr<resolver> resolver_;
  /// A decision made for one (space, host), kept while the space tree and every resolver
  /// answer it used stay the same. Each hit counts the same metrics as the lookups it saves.
  struct remembered_route {
    std::shared_ptr<const space_tree> tree;
    std::uint64_t resolver_epoch = 0;
    std::chrono::steady_clock::time_point until;
    std::shared_ptr<const route_decision> decision;
    std::optional<boost::asio::ip::address> target;
    route_outcome metric = route_outcome::original;
  };
  static constexpr std::size_t max_remembered = 4096;
  /// The memo's key for (space, host) in key_ (no allocation once it has grown).
  const std::string& memo_key(std::string_view space, std::string_view host);
  bool recall(route_result& r, std::string_view space, std::string_view host);
  void remember(std::string_view space, std::string_view host, const route_result& r,
                std::shared_ptr<const space_tree> tree, std::uint64_t epoch,
                std::chrono::steady_clock::time_point until);

  std::shared_ptr<route_memory> memory_;
  std::string cluster_domain_;  ///< lowercase, no trailing dot
  std::unordered_map<std::string, remembered_route> memo_;
  std::string key_;
};

}  // namespace devspaces::proxy::routing
