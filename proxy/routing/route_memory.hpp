#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "proxy/routing/carriers.hpp"

namespace devspaces::proxy::routing {

/// Trace id → space, remembered from inbound exchanges so that an outbound call of the same
/// trace that lost the route header is still routed (propagation assist). Shared by every
/// worker of the process: a pod's inbound request and the outbound calls it causes usually land
/// on different workers. Split into shards, each a mutex-protected LRU map, so workers rarely
/// meet on one lock; only requests that carry `traceparent` touch it at all.
class route_memory {
 public:
  using clock = std::chrono::steady_clock;
  /// The time source (tests pass a fake clock).
  using now_fn = std::function<clock::time_point()>;

  /// Entries kept at most by default (a few MiB in the worst case).
  static constexpr std::size_t default_capacity = 16384;

  /// `ttl` must be positive. `capacity` is split evenly over the shards (at least one entry
  /// each).
  explicit route_memory(std::chrono::milliseconds ttl, std::size_t capacity = default_capacity,
                        now_fn now = {});

  /// Remembers `space` for `id` for the ttl from now (replacing an older entry, which then
  /// counts as the most recently used). Evicts the least recently used entry of the shard when
  /// it is full.
  void store(const trace_id& id, std::string_view space);

  /// The space remembered for `id`, when not expired (a hit marks the entry recently used; an
  /// expired entry is removed).
  std::optional<std::string> lookup(const trace_id& id);

  /// Entries held now (expired ones not yet removed included).
  std::size_t size() const;
  /// Entries evicted because a shard was full.
  std::size_t evicted() const;

 private:
  static constexpr std::size_t shard_count = 16;

  struct id_hash {
    std::size_t operator()(const trace_id& id) const {
      // The low bits pick the shard: mix them out of the bucket index.
      return static_cast<std::size_t>(id.hash() >> 4);
    }
  };
  struct item {
    trace_id id;
    std::string space;
    clock::time_point expires;
  };
  struct shard {
    mutable std::mutex mutex;
    std::list<item> lru;  // front: most recently used
    std::unordered_map<trace_id, std::list<item>::iterator, id_hash> index;
    std::size_t evicted = 0;
  };

  shard& shard_of(const trace_id& id) { return shards_[id.hash() % shard_count]; }
  clock::time_point now() const { return now_ ? now_() : clock::now(); }

  const std::chrono::milliseconds ttl_;
  const std::size_t per_shard_;
  const now_fn now_;
  std::array<shard, shard_count> shards_;
};

}  // namespace devspaces::proxy::routing
