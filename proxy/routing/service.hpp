#pragma once

#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "proxy/config.hpp"
#include "proxy/metrics.hpp"
#include "proxy/routing/router.hpp"
#include "proxy/routing/space_tree.hpp"
#include "proxy/routing/spaces_source.hpp"

namespace devspaces::proxy::routing {

/// Process-wide routing state for main: the space tree (loaded at startup, then watched) and
/// the checked --resolver setting. It makes one router per worker (each with its own resolver
/// and cache on that worker's executor).
///
///   auto rs = routing_service::create(cfg, metrics);       // error → print, exit 2
///   rs.service->start_watcher(main_io.get_executor());     // --spaces-file reloads
///   per worker: auto r = rs.service->make_router(worker_io.get_executor(), &err);
class routing_service {
 public:
  /// create()'s answer: a service, or the startup error line.
  struct result {
    std::unique_ptr<routing_service> service;
    std::string error;
  };

  /// Loads the tree (own chain + --spaces-file) and checks --resolver.
  static result create(std::shared_ptr<const config> cfg, proxy_metrics& metrics);

  /// Starts polling --spaces-file and --spaces-url on `ex` (no-op without them). The service must
  /// then be destroyed (or stop_watcher called) on that executor's thread or after its loop
  /// stopped, and before its io_context is destroyed.
  void start_watcher(boost::asio::any_io_executor ex);

  /// Stops and drops the watcher (on the watcher executor's thread, or after its loop stopped).
  void stop_watcher() {
    watcher_.reset();
    poller_.reset();
  }

  /// A router for the worker whose io_context runs `worker_ex`; use it on that thread only and
  /// destroy it before that io_context.
  /// Null with `error` set when the resolver cannot start (c-ares init).
  std::unique_ptr<router> make_router(boost::asio::any_io_executor worker_ex,
                                      std::string* error = nullptr);

  /// The process's route memory (null when --route-memory-ttl is 0), shared by every router.
  const std::shared_ptr<route_memory>& memory() const { return memory_; }

  /// The current space tree (for /config).
  std::shared_ptr<const space_tree> tree() const { return holder_->get(); }
  /// The holder the routers read (tests swap trees through it).
  const std::shared_ptr<space_tree_holder>& holder() const { return holder_; }

  routing_service(std::shared_ptr<const config> cfg, proxy_metrics& metrics,
                  std::shared_ptr<const space_tree> tree);

 private:
  std::shared_ptr<const config> cfg_;
  proxy_metrics& metrics_;
  std::shared_ptr<space_tree_holder> holder_;
  std::unique_ptr<space_tree_watcher> watcher_;
  std::shared_ptr<route_memory> memory_;
  std::unique_ptr<spaces_url_poller> poller_;  ///< --spaces-url
};

}  // namespace devspaces::proxy::routing
