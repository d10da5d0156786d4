#include "proxy/routing/route_memory.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace devspaces::proxy::routing {
namespace {

using namespace std::chrono_literals;

trace_id make_id(std::uint64_t n) {
  trace_id id;
  for (int i = 0; i < 8; ++i) id.bytes[i] = static_cast<std::uint8_t>(n >> (8 * i));
  id.bytes[15] = 1;
  return id;
}

struct fake_clock {
  route_memory::clock::time_point t{std::chrono::seconds(1000)};
  route_memory::now_fn fn() {
    return [this] { return t; };
  }
};

TEST(RouteMemory, StoreAndLookup) {
  fake_clock c;
  route_memory m(60s, 1024, c.fn());
  EXPECT_FALSE(m.lookup(make_id(1)));
  m.store(make_id(1), "azureuser");
  EXPECT_EQ(m.lookup(make_id(1)), "azureuser");
  EXPECT_FALSE(m.lookup(make_id(2)));
  // A later store replaces the space.
  m.store(make_id(1), "dev");
  EXPECT_EQ(m.lookup(make_id(1)), "dev");
  EXPECT_EQ(m.size(), 1u);
}

TEST(RouteMemory, EntriesExpireAfterTtl) {
  fake_clock c;
  route_memory m(60s, 1024, c.fn());
  m.store(make_id(7), "azureuser");
  c.t += 59s;
  EXPECT_EQ(m.lookup(make_id(7)), "azureuser");
  // A hit does not extend the ttl; a new store does.
  c.t += 1s;
  EXPECT_FALSE(m.lookup(make_id(7)));
  EXPECT_EQ(m.size(), 0u);  // the expired entry was removed
  m.store(make_id(7), "azureuser");
  c.t += 30s;
  m.store(make_id(7), "azureuser");
  c.t += 45s;
  EXPECT_EQ(m.lookup(make_id(7)), "azureuser");
}

TEST(RouteMemory, BoundedLeastRecentlyUsedGoesFirst) {
  fake_clock c;
  // 16 shards of 2 entries: ids that land in one shard (same low 4 bits of the hash).
  route_memory m(60s, 32, c.fn());
  auto id = [](std::uint64_t k) { return make_id(k << 4); };  // all in shard 0
  m.store(id(1), "a");
  m.store(id(2), "b");
  EXPECT_EQ(m.lookup(id(1)), "a");  // 1 is now the most recently used
  m.store(id(3), "c");              // evicts 2
  EXPECT_EQ(m.evicted(), 1u);
  EXPECT_FALSE(m.lookup(id(2)));
  EXPECT_EQ(m.lookup(id(1)), "a");
  EXPECT_EQ(m.lookup(id(3)), "c");
  // Never more than the capacity, however many trace ids pass.
  for (std::uint64_t k = 0; k < 10000; ++k) m.store(make_id(k * 7919), "x");
  EXPECT_LE(m.size(), 32u);
}

TEST(RouteMemory, SharedAcrossThreads) {
  route_memory m(60s, 16384);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&m, t] {
      for (std::uint64_t k = 0; k < 2000; ++k) {
        const auto id = make_id(static_cast<std::uint64_t>(t) * 100000 + k);
        m.store(id, "s" + std::to_string(t));
        (void)m.lookup(id);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(m.size(), 8000u);
  // The last ids stored by each thread are still there, with that thread's space.
  for (int t = 0; t < 4; ++t) {
    EXPECT_EQ(m.lookup(make_id(static_cast<std::uint64_t>(t) * 100000 + 1999)),
              "s" + std::to_string(t));
  }
}

}  // namespace
}  // namespace devspaces::proxy::routing
