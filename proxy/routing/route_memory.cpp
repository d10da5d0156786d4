#include "proxy/routing/route_memory.hpp"

namespace devspaces::proxy::routing {

route_memory::route_memory(std::chrono::milliseconds ttl, std::size_t capacity, now_fn now)
    : ttl_(ttl),
      per_shard_(capacity / shard_count == 0 ? 1 : capacity / shard_count),
      now_(std::move(now)) {}

void route_memory::store(const trace_id& id, std::string_view space) {
  const auto expires = now() + ttl_;
  auto& s = shard_of(id);
  std::lock_guard lock(s.mutex);
  if (auto it = s.index.find(id); it != s.index.end()) {
    it->second->space.assign(space);
    it->second->expires = expires;
    s.lru.splice(s.lru.begin(), s.lru, it->second);
    return;
  }
  if (s.index.size() >= per_shard_) {
    // Reuse the least recently used node for the new entry: no allocation once full.
    auto last = std::prev(s.lru.end());
    s.index.erase(last->id);
    ++s.evicted;
    last->id = id;
    last->space.assign(space);
    last->expires = expires;
    s.lru.splice(s.lru.begin(), s.lru, last);
    s.index.emplace(id, s.lru.begin());
    return;
  }
  s.lru.push_front(item{id, std::string(space), expires});
  s.index.emplace(id, s.lru.begin());
}

std::optional<std::string> route_memory::lookup(const trace_id& id) {
  const auto t = now();
  auto& s = shard_of(id);
  std::lock_guard lock(s.mutex);
  auto it = s.index.find(id);
  if (it == s.index.end()) return std::nullopt;
  if (it->second->expires <= t) {
    s.lru.erase(it->second);
    s.index.erase(it);
    return std::nullopt;
  }
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return it->second->space;
}

std::size_t route_memory::size() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mutex);
    n += s.index.size();
  }
  return n;
}

std::size_t route_memory::evicted() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mutex);
    n += s.evicted;
  }
  return n;
}

}  // namespace devspaces::proxy::routing
