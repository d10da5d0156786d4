#include "proxy/routing/router.hpp"

#include <algorithm>

#include "proxy/routing/names.hpp"

namespace devspaces::proxy::routing {

namespace asio = boost::asio;

router::router(asio::any_io_executor ex, std::shared_ptr<const config> cfg, proxy_metrics& metrics,
               std::shared_ptr<const space_tree_holder> tree, std::shared_ptr<resolver> resolver,
               std::shared_ptr<route_memory> memory)
    : ex_(std::move(ex)),
      cfg_(std::move(cfg)),
      metrics_(metrics),
      tree_(std::move(tree)),
      resolver_(std::move(resolver)),
      memory_(std::move(memory)),
      cluster_domain_(to_lower(cfg_->cluster_domain)) {
  while (!cluster_domain_.empty() && cluster_domain_.back() == '.') cluster_domain_.pop_back();
}

route_result router::route_inbound(std::string_view host, std::span<const header_ref> headers) {
  route_result r;
  auto c = read_carriers(headers, cfg_->route_header);
  r.trace = c.trace;
  switch (c.status) {
    case route_header::state::valid:
      r.route_as = std::move(c.space);
      r.source = c.source;
      // The app sees the space the usual way, whichever carrier brought it.
      r.insert_header = !c.route_header_present;
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
  if (memory_ && r.route_as && r.trace) {
    memory_->store(*r.trace, *r.route_as);
    metrics_.route_memory(memory_result::stored).Increment();
  }
  return r;
}

asio::awaitable<route_result> router::route_outbound(std::string_view host,
                                                     std::span<const header_ref> headers) {
  route_result r;
  auto c = read_carriers(headers, cfg_->route_header);
  r.trace = c.trace;
  if (c.status == route_header::state::absent && memory_ && c.trace) {
    if (auto space = memory_->lookup(*c.trace)) {
      metrics_.route_memory(memory_result::hit).Increment();
      c.status = route_header::state::valid;
      c.space = std::move(*space);
      c.source = route_source::memory;
    } else {
      metrics_.route_memory(memory_result::miss).Increment();
    }
  }
  if (c.status != route_header::state::valid) {
    r.metric = c.status == route_header::state::absent ? route_outcome::no_header
                                                       : route_outcome::invalid_header;
    metrics_.route_decisions(*r.metric).Increment();
    co_return r;
  }
  r.route_as = c.space;
  r.source = c.source;
  r.metric = route_outcome::original;

  auto service = parse_service_host(host, cluster_domain_);
  std::vector<std::string> chain;
  if (service) {
    chain = tree_->get()->chain(c.space);
    // An explicit namespace outside S's chain is not one of "our" services: leave it alone.
    if (service->ns && std::find(chain.begin(), chain.end(), *service->ns) == chain.end()) {
      service.reset();
    }
  }
  if (!service) {
    metrics_.route_decisions(route_outcome::original).Increment();
    co_return r;
  }

  // Routed by a space: the next hop reads it from the route header, whatever carried it here.
  r.insert_header = !c.route_header_present;
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
