#include "proxy/routing/service.hpp"

namespace devspaces::proxy::routing {

routing_service::result routing_service::create(std::shared_ptr<const config> cfg,
                                                proxy_metrics& metrics) {
  auto tree = load_space_tree(*cfg);
  if (!tree.tree) return {nullptr, tree.error};
  if (auto err = check_resolver_config(*cfg)) return {nullptr, *err};
  return {std::make_unique<routing_service>(std::move(cfg), metrics, std::move(tree.tree)), {}};
}

routing_service::routing_service(std::shared_ptr<const config> cfg, proxy_metrics& metrics,
                                 std::shared_ptr<const space_tree> tree)
    : cfg_(std::move(cfg)),
      metrics_(metrics),
      holder_(std::make_shared<space_tree_holder>(std::move(tree))) {
  if (cfg_->route_memory_ttl.count() > 0)
    memory_ = std::make_shared<route_memory>(cfg_->route_memory_ttl);
}

void routing_service::start_watcher(boost::asio::any_io_executor ex) {
  if (!cfg_->spaces_url.empty() && !poller_) {
    poller_ = std::make_unique<spaces_url_poller>(ex, cfg_, metrics_, holder_);
    poller_->start();
  }
  if (cfg_->spaces_file.empty() || watcher_) return;
  watcher_ = std::make_unique<space_tree_watcher>(std::move(ex), cfg_, metrics_, holder_);
  watcher_->start();
}

std::unique_ptr<router> routing_service::make_router(boost::asio::any_io_executor worker_ex,
                                                     std::string* error) {
  auto res = make_resolver(worker_ex, *cfg_, metrics_, error);
  if (!res) return nullptr;
  return std::make_unique<router>(std::move(worker_ex), cfg_, metrics_, holder_, std::move(res),
                                  memory_);
}

}  // namespace devspaces::proxy::routing
