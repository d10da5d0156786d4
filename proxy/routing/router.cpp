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
  outbound_pending pending;
  auto now = route_outbound_now(host, headers, pending);
  if (now) co_return std::move(*now);
  co_return co_await finish_outbound(std::move(pending));
}

std::optional<route_result> router::route_outbound_now(std::string_view host,
                                                       std::span<const header_ref> headers,
                                                       outbound_pending& pending) {
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
    return r;
  }
  r.route_as = c.space;
  r.source = c.source;
  r.metric = route_outcome::original;
  // The hosts file is checked as often as a lookup would check it: an edit drops what the
  // remembered decisions were made from.
  resolver_->refresh();
  if (recall(r, c.space, host)) {
    // Routed by a space: the next hop reads it from the route header, whatever carried it.
    if (r.decision != no_decision()) r.insert_header = !c.route_header_present;
    return r;
  }
  pending.result = std::move(r);
  pending.space = std::move(c.space);
  pending.host.assign(host);
  pending.route_header_present = c.route_header_present;
  return std::nullopt;
}

asio::awaitable<route_result> router::finish_outbound(outbound_pending p) {
  route_result r = std::move(p.result);
  const auto tree = tree_->get();
  const auto epoch = resolver_->epoch();
  auto service = parse_service_host(p.host, cluster_domain_);
  std::vector<std::string> chain;
  if (service) {
    chain = tree->chain(p.space);
    // An explicit namespace outside S's chain is not one of "our" services: leave it alone.
    if (service->ns && std::find(chain.begin(), chain.end(), *service->ns) == chain.end()) {
      service.reset();
    }
  }
  if (!service) {
    metrics_.route_decisions(route_outcome::original).Increment();
    remember(p.space, p.host, r, tree, epoch, std::chrono::steady_clock::time_point::max());
    co_return r;
  }

  r.insert_header = !p.route_header_present;
  auto decision = std::make_shared<route_decision>();
  decision->service = service->service;
  auto names = candidate_names(service->service, chain, cluster_domain_);
  // Ask for every level at once; the answers are still taken in chain order.
  for (const auto& name : names) resolver_->prefetch(name);
  // The decision holds as long as every answer it read is cached.
  auto until = std::chrono::steady_clock::time_point::max();
  bool cached = true;
  for (std::size_t level = 0; level < names.size(); ++level) {
    auto answer = co_await resolver_->lookup(names[level]);
    decision->tried.push_back({names[level], answer.describe()});
    if (answer.expires == std::chrono::steady_clock::time_point{}) cached = false;
    until = std::min(until, answer.expires);
    if (answer.status == lookup_status::found && answer.address) {
      static constexpr decision_kind kinds[] = {decision_kind::own, decision_kind::parent,
                                                decision_kind::grandparent};
      static constexpr route_outcome outcomes[] = {route_outcome::own, route_outcome::parent,
                                                   route_outcome::grandparent};
      decision->decision = kinds[level];
      decision->level = static_cast<int>(level);
      r.target = answer.address;
      r.metric = outcomes[level];
      break;
    }
  }
  r.decision = std::move(decision);
  metrics_.route_decisions(*r.metric).Increment();
  if (cached && resolver_->epoch() == epoch) remember(p.space, p.host, r, tree, epoch, until);
  co_return r;
}

const std::string& router::memo_key(std::string_view space, std::string_view host) {
  key_.assign(space);
  key_.push_back('\n');
  key_.append(host);
  return key_;
}

bool router::recall(route_result& r, std::string_view space, std::string_view host) {
  auto it = memo_.find(memo_key(space, host));
  if (it == memo_.end()) return false;
  const auto& m = it->second;
  const bool stale =
      m.tree != tree_->get() || m.resolver_epoch != resolver_->epoch() ||
      (m.until != std::chrono::steady_clock::time_point::max() && resolver_->now() >= m.until);
  if (stale) {
    memo_.erase(it);
    return false;
  }
  r.decision = m.decision;
  r.target = m.target;
  r.metric = m.metric;
  // The same counts as the cached lookups this replaces.
  if (const auto n = m.decision->tried.size(); n > 0)
    metrics_.dns_lookups(dns_result::hit).Increment(static_cast<double>(n));
  metrics_.route_decisions(m.metric).Increment();
  return true;
}

void router::remember(std::string_view space, std::string_view host, const route_result& r,
                      std::shared_ptr<const space_tree> tree, std::uint64_t epoch,
                      std::chrono::steady_clock::time_point until) {
  if (memo_.size() >= max_remembered) memo_.clear();
  memo_[memo_key(space, host)] =
      remembered_route{std::move(tree), epoch, until, r.decision, r.target, *r.metric};
}

}  // namespace devspaces::proxy::routing
