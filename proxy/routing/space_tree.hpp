#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "proxy/config.hpp"
#include "proxy/metrics.hpp"

namespace devspaces::proxy::routing {

/// At most this many levels: the space itself, its parent, its grandparent.
inline constexpr std::size_t max_chain_levels = 3;

/// The space tree: each known space and its parent (proxy/routing/README.md, "Space tree").
/// Immutable once built.
class space_tree {
 public:
  /// Space name → parent ("" for a root). Every name is a lowercase DNS label.
  using parent_map = std::map<std::string, std::string, std::less<>>;

  /// An empty tree (every space is a root).
  space_tree() = default;
  /// A validated tree; use build_space_tree to get one.
  explicit space_tree(parent_map parents) : parents_(std::move(parents)) {}

  /// The chain of `space` (lowercase): the space, its parent, its grandparent; unknown spaces
  /// are roots.
  std::vector<std::string> chain(std::string_view space) const;

  /// Every space with a known entry.
  const parent_map& parents() const { return parents_; }

  /// {"spaces": {"default": {}, "azureuser": {"parent": "default"}}} (for /config).
  std::string to_json() const;

 private:
  parent_map parents_;
};

/// A built tree, or the error text (one line) saying what is wrong.
struct space_tree_result {
  std::shared_ptr<const space_tree> tree;  ///< null on error
  std::string error;
};

/// Builds the tree from the own chain (`own_space`, then `own_parents` = parent, grandparent)
/// plus the --spaces-file JSON text (`file_json`, empty = no file). File entries win over the
/// own chain for the spaces they list (the file is the live source). Errors: bad JSON or shape,
/// names that are not DNS labels, more than two own parents, cycles, chains deeper than three
/// levels.
space_tree_result build_space_tree(std::string_view own_space,
                                   std::span<const std::string> own_parents,
                                   std::string_view file_json);

/// build_space_tree from the config, reading cfg.spaces_file if set. For startup: an error is
/// a startup error ("--spaces-file /x: ...").
space_tree_result load_space_tree(const config& cfg);

/// The current tree, shared by every worker. Read on each outbound request (one atomic
/// shared_ptr load), written only by the watcher.
class space_tree_holder {
 public:
  /// Holds `initial` (must not be null).
  explicit space_tree_holder(std::shared_ptr<const space_tree> initial)
      : tree_(std::move(initial)) {}

  /// The current snapshot.
  std::shared_ptr<const space_tree> get() const { return tree_.load(std::memory_order_acquire); }
  /// Replaces the snapshot.
  void set(std::shared_ptr<const space_tree> tree) {
    tree_.store(std::move(tree), std::memory_order_release);
  }

 private:
  std::atomic<std::shared_ptr<const space_tree>> tree_;
};

/// Reloads --spaces-file when it changes (polls mtime/ctime/size/inode on a timer, which also
/// catches ConfigMap symlink swaps). A good new version replaces the tree and counts
/// config_reloads_total{result="ok"}; a bad one (unparsable, invalid, missing) is logged, counted
/// {result="error"} once per version, and the last good tree stays.
class space_tree_watcher {
 public:
  /// Watches cfg->spaces_file (nothing to do when empty) and updates `holder`.
  space_tree_watcher(boost::asio::any_io_executor ex, std::shared_ptr<const config> cfg,
                     proxy_metrics& metrics, std::shared_ptr<space_tree_holder> holder,
                     std::chrono::milliseconds interval = std::chrono::seconds(1));
  ~space_tree_watcher();
  space_tree_watcher(const space_tree_watcher&) = delete;
  space_tree_watcher& operator=(const space_tree_watcher&) = delete;

  /// Starts polling on the executor (call once, after the startup load succeeded).
  void start();
  /// Stops polling (safe from the executor's thread; the destructor also stops).
  void stop();
  /// Checks the file now: returns true when it changed (reloaded, good or bad).
  bool check_now();

 private:
  struct file_id {
    bool exists = false;
    long long mtime_ns = 0, ctime_ns = 0, size = 0;
    unsigned long long inode = 0, dev = 0;
    bool operator==(const file_id&) const = default;
  };
  static file_id stat_file(const std::string& path);
  void arm();

  std::shared_ptr<const config> cfg_;
  proxy_metrics& metrics_;
  std::shared_ptr<space_tree_holder> holder_;
  std::chrono::milliseconds interval_;
  boost::asio::steady_timer timer_;
  file_id last_;
  bool running_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  ///< expires with *this
};

}  // namespace devspaces::proxy::routing
