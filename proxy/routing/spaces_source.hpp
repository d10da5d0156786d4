#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "proxy/config.hpp"
#include "proxy/metrics.hpp"
#include "proxy/routing/space_tree.hpp"

namespace devspaces::proxy::routing {

/// Polls --spaces-url (the injector's GET /spaces) with If-None-Match, so an unchanged tree
/// costs a 304. A new valid tree (own chain + the served tree) replaces the holder's and counts
/// config_reloads_total{result="ok"}; a bad body counts {result="error"} once per version; an
/// unreachable source or an HTTP error keeps the last good tree (logged once per outage).
class spaces_url_poller {
 public:
  /// Polls cfg->spaces_url every `interval` on `ex` once started.
  spaces_url_poller(boost::asio::any_io_executor ex, std::shared_ptr<const config> cfg,
                    proxy_metrics& metrics, std::shared_ptr<space_tree_holder> holder,
                    std::chrono::milliseconds interval = std::chrono::seconds(2));
  ~spaces_url_poller();
  spaces_url_poller(const spaces_url_poller&) = delete;
  spaces_url_poller& operator=(const spaces_url_poller&) = delete;

  /// Starts polling (the first poll runs at once).
  void start();
  /// Stops polling (on the executor's thread, or after its loop stopped).
  void stop();

 private:
  struct state;
  std::shared_ptr<state> state_;
};

/// Checks a --spaces-url value: nullopt when it is an http://host:port/path URL.
std::optional<std::string> check_spaces_url(const std::string& url);

}  // namespace devspaces::proxy::routing
