#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "proxy/routing/space_tree.hpp"

namespace devspaces::proxy::inject {

/// How to reach the Kubernetes API server (in a cluster: the service account's files).
struct kube_options {
  std::string api_url;  ///< https://10.96.0.1:443 (http:// for a local stand-in)
  std::string token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
};

/// Namespaces labelled azds.io/space=true → the space tree (parent from the label
/// azds.io/parent-space). Pure; an invalid tree (cycle, too deep) is an error.
routing::space_tree_result tree_from_namespaces(const std::map<std::string, std::string>& spaces);

/// Keeps the space tree in step with the cluster's namespaces: list, then watch from the list's
/// resourceVersion (with bookmarks); a watch that ends is resumed from the last resourceVersion
/// seen, `410 Gone` (as a status or as an ERROR event) relists. While the API server cannot be
/// reached it retries with backoff and the last good tree stays. Runs on `io`'s thread.
class namespace_watch {
 public:
  /// Called on io's thread with each new valid tree.
  using tree_callback = std::function<void(std::shared_ptr<const routing::space_tree>)>;

  namespace_watch(boost::asio::io_context& io, kube_options opts, tree_callback on_tree);
  ~namespace_watch();
  namespace_watch(const namespace_watch&) = delete;
  namespace_watch& operator=(const namespace_watch&) = delete;

  /// Starts listing and watching.
  void start();
  /// Stops (the coroutine ends at its next step).
  void stop();

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace devspaces::proxy::inject
