#include "proxy/routing/router.hpp"

#include <algorithm>

#include "proxy/routing/names.hpp"

namespace devspaces::proxy::routing {

namespace asio = boost::asio;

router::router(asio::any_io_executor ex, std::shared_ptr<const config> cfg, proxy_metrics& metrics,
               std::shared_ptr<const space_tree_holder> tree, std::shared_ptr<resolver> resolver)
    : ex_(std::move(ex)),
      cfg_(std::move(cfg)),
      metrics_(metrics),
      tree_(std::move(tree)),
      resolver_(std::move(resolver)),
      cluster_domain_(to_lower(cfg_->cluster_domain)) {
  while (!cluster_domain_.empty() && cluster_domain_.back() == '.') cluster_domain_.pop_back();
}

route_result router::route_inbound(std::string_view host,
                                   std::span<const std::string_view> header_values) const {
  route_result r;
  auto header = parse_route_header(header_values);
  switch (header.status) {
    case route_header::state::valid:
      r.route_as = std::move(header.space);
      r.source = route_source::header;
      break;
    case route_header::state::invalid:
      // Forwarded untouched; adding a second, different header would only make it worse.
      r.metric = route_outcome::invalid_header;
      metrics_.route_decisions(route_outcome::invalid_header).Increment();
      break;
    case route_header::state::absent:
      if (auto space = inbound_host_space(host)) {
        r.route_as = std::move(*space);
        r.source = route_source::host;
        r.insert_header = true;
      }
      break;
  }
  return r;
}

asio::awaitable<route_result> router::route_outbound(
    std::string_view host, std::span<const std::string_view> header_values) {
  route_result r;
  auto header = parse_route_header(header_values);
  if (header.status != route_header::state::valid) {
    r.metric = header.status == route_header::state::absent ? route_outcome::no_header
                                                            : route_outcome::invalid_header;
    metrics_.route_decisions(*r.metric).Increment();
    co_return r;
  }
  r.route_as = header.space;
  r.source = route_source::header;
  r.metric = route_outcome::original;

  auto service = parse_service_host(host, cluster_domain_);
  std::vector<std::string> chain;
  if (service) {
    chain = tree_->get()->chain(header.space);
    // An explicit namespace outside S's chain is not one of "our" services: leave it alone.
    if (service->ns && std::find(chain.begin(), chain.end(), *service->ns) == chain.end()) {
      service.reset();
    }
  }
  if (!service) {
    metrics_.route_decisions(route_outcome::original).Increment();
    co_return r;
  }

  r.decision.service = service->service;
  auto names = candidate_names(service->service, chain, cluster_domain_);
  // Ask for every level at once; the answers are still taken in chain order.
  for (const auto& name : names) resolver_->prefetch(name);
  for (std::size_t level = 0; level < names.size(); ++level) {
    auto answer = co_await resolver_->lookup(names[level]);
    r.decision.tried.push_back({names[level], answer.describe()});
    if (answer.status == lookup_status::found && answer.address) {
      static constexpr decision_kind kinds[] = {decision_kind::own, decision_kind::parent,
                                                decision_kind::grandparent};
      static constexpr route_outcome outcomes[] = {route_outcome::own, route_outcome::parent,
                                                   route_outcome::grandparent};
      r.decision.decision = kinds[level];
      r.decision.level = static_cast<int>(level);
      r.target = answer.address;
      r.metric = outcomes[level];
      break;
    }
  }
  metrics_.route_decisions(*r.metric).Increment();
  co_return r;
}

}  // namespace devspaces::proxy::routing
