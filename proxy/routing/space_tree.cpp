#include "proxy/routing/space_tree.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "proxy/logging.hpp"
#include "proxy/routing/names.hpp"

namespace devspaces::proxy::routing {

namespace {

std::shared_ptr<spdlog::logger> logger() {
  return proxy::logger("routing");
}

// Checks that every chain ends at a root within max_chain_levels levels.
std::string validate(const space_tree::parent_map& parents) {
  for (const auto& [space, parent] : parents) {
    std::string path = space;
    std::string current = space;
    std::size_t levels = 1;
    while (true) {
      auto it = parents.find(current);
      if (it == parents.end() || it->second.empty()) break;
      current = it->second;
      path += " -> " + current;
      if (current == space) return "cycle in space tree: " + path;
      if (++levels > max_chain_levels) {
        return "space chain deeper than " + std::to_string(max_chain_levels) + " levels: " + path;
      }
    }
  }
  return {};
}

std::string parse_file(std::string_view text, space_tree::parent_map& parents) {
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(text, ec);
  if (ec) return "not valid JSON: " + ec.message();
  const auto* root = doc.if_object();
  if (root == nullptr) return R"(expected a JSON object {"spaces": {...}})";
  const auto* spaces_v = root->if_contains("spaces");
  if (spaces_v == nullptr || !spaces_v->is_object()) return R"(missing object "spaces")";
  space_tree::parent_map from_file;
  for (const auto& [key, value] : spaces_v->get_object()) {
    std::string name = to_lower(std::string_view(key.data(), key.size()));
    if (!is_dns_label(name)) return "space name \"" + std::string(key) + "\" is not a DNS label";
    const auto* entry = value.if_object();
    if (entry == nullptr) return "space \"" + name + "\": expected an object";
    std::string parent;
    if (const auto* p = entry->if_contains("parent"); p != nullptr && !p->is_null()) {
      const auto* s = p->if_string();
      if (s == nullptr) return "space \"" + name + "\": \"parent\" must be a string";
      parent = to_lower(std::string_view(s->data(), s->size()));
      if (!is_dns_label(parent)) {
        return "space \"" + name + "\": parent \"" + std::string(*s) + "\" is not a DNS label";
      }
    }
    if (from_file.contains(name)) return "space \"" + name + "\" listed twice";
    from_file.emplace(std::move(name), std::move(parent));
  }
  for (auto& [name, parent] : from_file) parents[name] = parent;
  return {};
}

}  // namespace

std::vector<std::string> space_tree::chain(std::string_view space) const {
  std::vector<std::string> out;
  out.emplace_back(space);
  while (out.size() < max_chain_levels) {
    auto it = parents_.find(out.back());
    if (it == parents_.end() || it->second.empty()) break;
    // A validated tree has no cycles; the check keeps a hand-built one from looping.
    if (std::find(out.begin(), out.end(), it->second) != out.end()) break;
    out.push_back(it->second);
  }
  return out;
}

std::string space_tree::to_json() const {
  boost::json::object spaces;
  for (const auto& [name, parent] : parents_) {
    boost::json::object entry;
    if (!parent.empty()) entry["parent"] = parent;
    spaces[name] = std::move(entry);
  }
  boost::json::object root;
  root["spaces"] = std::move(spaces);
  return boost::json::serialize(root);
}

space_tree_result build_space_tree(std::string_view own_space,
                                   std::span<const std::string> own_parents,
                                   std::string_view file_json) {
  space_tree_result r;
  std::string own = to_lower(own_space);
  if (!is_dns_label(own)) {
    r.error = "space \"" + std::string(own_space) + "\" is not a DNS label";
    return r;
  }
  if (own_parents.size() > max_chain_levels - 1) {
    r.error = "at most " + std::to_string(max_chain_levels - 1) +
              " parent spaces (parent, grandparent), got " + std::to_string(own_parents.size());
    return r;
  }
  space_tree::parent_map parents;
  std::string child = own;
  for (const auto& p : own_parents) {
    std::string parent = to_lower(p);
    if (!is_dns_label(parent)) {
      r.error = "parent space \"" + p + "\" is not a DNS label";
      return r;
    }
    parents[child] = parent;
    child = parent;
  }
  if (!file_json.empty()) {
    if (auto err = parse_file(file_json, parents); !err.empty()) {
      r.error = std::move(err);
      return r;
    }
  }
  if (auto err = validate(parents); !err.empty()) {
    r.error = std::move(err);
    return r;
  }
  r.tree = std::make_shared<const space_tree>(std::move(parents));
  return r;
}

space_tree_result load_space_tree(const config& cfg) {
  std::string text;
  if (!cfg.spaces_file.empty()) {
    std::ifstream in(cfg.spaces_file, std::ios::binary);
    if (!in) {
      return {nullptr, "--spaces-file " + cfg.spaces_file + ": cannot be read"};
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    text = ss.str();
    // An empty file is not a valid tree (it is what a half-written file looks like).
    if (text.empty()) return {nullptr, "--spaces-file " + cfg.spaces_file + ": empty file"};
  }
  auto r = build_space_tree(cfg.space, cfg.parent_spaces, text);
  if (!r.error.empty() && !cfg.spaces_file.empty()) {
    r.error = "--spaces-file " + cfg.spaces_file + ": " + r.error;
  }
  return r;
}

space_tree_watcher::space_tree_watcher(boost::asio::any_io_executor ex,
                                       std::shared_ptr<const config> cfg, proxy_metrics& metrics,
                                       std::shared_ptr<space_tree_holder> holder,
                                       std::chrono::milliseconds interval)
    : cfg_(std::move(cfg)),
      metrics_(metrics),
      holder_(std::move(holder)),
      interval_(interval),
      timer_(std::move(ex)) {
  if (!cfg_->spaces_file.empty()) last_ = stat_file(cfg_->spaces_file);
}

space_tree_watcher::~space_tree_watcher() {
  stop();
}

space_tree_watcher::file_id space_tree_watcher::stat_file(const std::string& path) {
  struct stat st {};
  file_id id;
  if (::stat(path.c_str(), &st) != 0) return id;
  id.exists = true;
  id.mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1'000'000'000LL + st.st_mtim.tv_nsec;
  id.ctime_ns = static_cast<long long>(st.st_ctim.tv_sec) * 1'000'000'000LL + st.st_ctim.tv_nsec;
  id.size = static_cast<long long>(st.st_size);
  id.inode = static_cast<unsigned long long>(st.st_ino);
  id.dev = static_cast<unsigned long long>(st.st_dev);
  return id;
}

void space_tree_watcher::start() {
  if (cfg_->spaces_file.empty() || running_) return;
  running_ = true;
  arm();
}

void space_tree_watcher::stop() {
  running_ = false;
  timer_.cancel();
}

void space_tree_watcher::arm() {
  timer_.expires_after(interval_);
  timer_.async_wait([this, alive = std::weak_ptr<int>(alive_)](boost::system::error_code ec) {
    if (ec || alive.expired() || !running_) return;
    check_now();
    arm();
  });
}

bool space_tree_watcher::check_now() {
  if (cfg_->spaces_file.empty()) return false;
  auto id = stat_file(cfg_->spaces_file);
  if (id == last_) return false;
  last_ = id;
  auto r = load_space_tree(*cfg_);
  if (r.tree) {
    holder_->set(std::move(r.tree));
    metrics_.config_reloads(true).Increment();
    logger()->info("space tree reloaded from {}", cfg_->spaces_file);
  } else {
    metrics_.config_reloads(false).Increment();
    logger()->error("space tree reload failed, keeping the last good tree: {}", r.error);
  }
  return true;
}

}  // namespace devspaces::proxy::routing
