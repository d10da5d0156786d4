#include "proxy/routing/resolver.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <map>

namespace devspaces::proxy::routing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// A backend the test answers by hand: lookups wait in `queued` until answer() is called.
struct fake_backend : resolver_backend {
  struct state {
    std::multimap<std::string, std::function<void(backend_answer)>> queued;
    int calls = 0;
  };
  explicit fake_backend(std::shared_ptr<state> s) : s_(std::move(s)) {}
  void async_lookup(const std::string& name, std::function<void(backend_answer)> done) override {
    ++s_->calls;
    s_->queued.emplace(name, std::move(done));
  }
  std::shared_ptr<state> s_;
};

struct fake_clock {
  std::chrono::steady_clock::time_point t = std::chrono::steady_clock::time_point() + 1h;
};

struct resolver_fixture : ::testing::Test {
  asio::io_context io;
  proxy_metrics metrics;
  std::shared_ptr<fake_backend::state> backend = std::make_shared<fake_backend::state>();
  std::shared_ptr<fake_clock> clock = std::make_shared<fake_clock>();
  std::unique_ptr<resolver> res;

  void SetUp() override { make({}); }

  void make(resolver_options o) {
    if (!o.clock) o.clock = [c = clock] { return c->t; };
    res = std::make_unique<resolver>(io.get_executor(), std::make_unique<fake_backend>(backend),
                                     metrics, o);
  }

  // Runs every ready handler (the context stops whenever it runs out of work).
  void drain() {
    io.restart();
    while (io.poll() > 0) io.restart();
  }

  // Starts a lookup; its result lands in the returned slot.
  std::shared_ptr<std::optional<lookup_result>> start(std::string name) {
    auto slot = std::make_shared<std::optional<lookup_result>>();
    asio::co_spawn(io, res->lookup(std::move(name)), [slot](std::exception_ptr e, lookup_result r) {
      if (e) std::rethrow_exception(e);
      *slot = r;
    });
    drain();
    return slot;
  }

  void answer(const std::string& name, backend_answer a) {
    auto range = backend->queued.equal_range(name);
    ASSERT_NE(range.first, range.second) << name;
    auto done = std::move(range.first->second);
    backend->queued.erase(range.first);
    done(a);
    drain();
  }

  double count(dns_result r) { return metrics.dns_lookups(r).Value(); }
};

backend_answer found(const char* addr, int ttl) {
  return {lookup_status::found, asio::ip::make_address(addr), std::chrono::seconds(ttl)};
}

TEST_F(resolver_fixture, FoundIsCachedUpToTtl) {
  auto a = start("svc.default.svc.cluster.local");
  EXPECT_FALSE(*a);
  answer("svc.default.svc.cluster.local", found("10.0.0.7", 10));
  ASSERT_TRUE(*a);
  EXPECT_EQ((*a)->status, lookup_status::found);
  EXPECT_EQ((*a)->describe(), "10.0.0.7");
  EXPECT_FALSE((*a)->cached);
  EXPECT_EQ(count(dns_result::found), 1);

  clock->t += 9s;
  auto b = start("svc.default.svc.cluster.local");
  ASSERT_TRUE(*b);
  EXPECT_TRUE((*b)->cached);
  EXPECT_EQ((*b)->describe(), "10.0.0.7");
  EXPECT_EQ(count(dns_result::hit), 1);
  EXPECT_EQ(backend->calls, 1);

  clock->t += 2s;  // past the TTL
  auto c = start("svc.default.svc.cluster.local");
  EXPECT_FALSE(*c);
  EXPECT_EQ(backend->calls, 2);
  answer("svc.default.svc.cluster.local", found("10.0.0.8", 10));
  EXPECT_EQ((*c)->describe(), "10.0.0.8");
}

TEST_F(resolver_fixture, PositiveTtlCappedAt30s) {
  auto a = start("n");
  answer("n", found("10.0.0.7", 3600));
  clock->t += 29s;
  EXPECT_TRUE((*start("n"))->cached);
  clock->t += 2s;
  EXPECT_FALSE(*start("n"));
  EXPECT_EQ(backend->calls, 2);
}

TEST_F(resolver_fixture, ZeroTtlNotCached) {
  start("n");
  answer("n", found("10.0.0.7", 0));
  EXPECT_FALSE(*start("n"));
  EXPECT_EQ(backend->calls, 2);
}

TEST_F(resolver_fixture, NegativeCachedFiveSeconds) {
  auto a = start("n");
  answer("n", {lookup_status::nxdomain, std::nullopt, 0s});
  EXPECT_EQ((*a)->describe(), "nxdomain");
  EXPECT_EQ(count(dns_result::nxdomain), 1);
  clock->t += 4s;
  auto b = start("n");
  ASSERT_TRUE(*b);
  EXPECT_TRUE((*b)->cached);
  EXPECT_EQ((*b)->status, lookup_status::nxdomain);
  EXPECT_EQ(count(dns_result::hit), 1);
  clock->t += 2s;
  EXPECT_FALSE(*start("n"));
  EXPECT_EQ(backend->calls, 2);
}

TEST_F(resolver_fixture, ErrorsAreNotCached) {
  auto a = start("n");
  answer("n", {lookup_status::error, std::nullopt, 0s});
  EXPECT_EQ((*a)->describe(), "error");
  EXPECT_EQ(count(dns_result::error), 1);
  EXPECT_FALSE(*start("n"));
  EXPECT_EQ(backend->calls, 2);
}

TEST_F(resolver_fixture, ConcurrentLookupsShareOneQuery) {
  auto a = start("n");
  auto b = start("n");
  auto other = start("m");
  EXPECT_EQ(backend->calls, 2);
  answer("n", found("10.0.0.7", 30));
  ASSERT_TRUE(*a);
  ASSERT_TRUE(*b);
  EXPECT_FALSE(*other);
  EXPECT_EQ((*a)->describe(), "10.0.0.7");
  EXPECT_EQ((*b)->describe(), "10.0.0.7");
  EXPECT_EQ(count(dns_result::found), 2);
}

TEST_F(resolver_fixture, TimeoutDoesNotBlockOthers) {
  resolver_options o;
  o.timeout = 50ms;
  make(o);
  auto slow = start("slow");
  auto fast = start("fast");
  answer("fast", found("10.0.0.9", 30));
  ASSERT_TRUE(*fast);
  EXPECT_FALSE(*slow);
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!*slow && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_one_for(100ms);
  }
  ASSERT_TRUE(*slow);
  EXPECT_EQ((*slow)->status, lookup_status::timeout);
  EXPECT_EQ((*slow)->describe(), "timeout");
  EXPECT_EQ(count(dns_result::error), 1);
  // The late answer still fills the cache.
  answer("slow", found("10.0.0.10", 30));
  auto again = start("slow");
  ASSERT_TRUE(*again);
  EXPECT_TRUE((*again)->cached);
}

TEST_F(resolver_fixture, PrefetchStartsQueryLookupJoins) {
  res->prefetch("n");
  res->prefetch("n");
  EXPECT_EQ(backend->calls, 1);
  auto a = start("n");
  EXPECT_EQ(backend->calls, 1);
  answer("n", found("10.0.0.7", 30));
  ASSERT_TRUE(*a);
  EXPECT_EQ((*a)->describe(), "10.0.0.7");
  EXPECT_EQ(count(dns_result::found), 1);
}

TEST_F(resolver_fixture, PrefetchedAnswerFirstReadCountsAsFound) {
  res->prefetch("n");
  answer("n", found("10.0.0.7", 30));
  EXPECT_EQ(count(dns_result::found), 0);  // nobody asked yet
  auto a = start("n");
  ASSERT_TRUE(*a);
  EXPECT_FALSE((*a)->cached);
  auto b = start("n");
  EXPECT_TRUE((*b)->cached);
  EXPECT_EQ(count(dns_result::found), 1);
  EXPECT_EQ(count(dns_result::hit), 1);
  res->prefetch("n");  // cached: no new query
  EXPECT_EQ(backend->calls, 1);
}

TEST_F(resolver_fixture, DestroyedWithLookupInFlight) {
  auto a = start("n");
  res.reset();
  // The backend (and its queued callbacks' owner) went with the resolver; nothing to deliver.
  EXPECT_FALSE(*a);
}

// --- hosts backend ---

struct hosts_file {
  std::filesystem::path path = std::filesystem::temp_directory_path() /
                               ("routing-hosts-" + std::to_string(::getpid()) + "-" +
                                ::testing::UnitTest::GetInstance()->current_test_info()->name());
  ~hosts_file() { std::filesystem::remove(path); }
  void write(std::string_view text) const {
    auto tmp = path;
    tmp += ".tmp";
    std::ofstream(tmp, std::ios::trunc) << text;
    std::filesystem::rename(tmp, path);
  }
};

struct hosts_fixture : ::testing::Test {
  asio::io_context io;
  proxy_metrics metrics;
  hosts_file file;
  std::unique_ptr<resolver> res;

  void make() {
    res =
        std::make_unique<resolver>(io.get_executor(), make_hosts_backend(file.path, 0ms), metrics);
  }
  lookup_result lookup(std::string name) {
    std::optional<lookup_result> out;
    asio::co_spawn(io, res->lookup(std::move(name)), [&](std::exception_ptr e, lookup_result r) {
      if (e) std::rethrow_exception(e);
      out = r;
    });
    io.restart();
    io.run();
    EXPECT_TRUE(out);
    return out.value_or(lookup_result{});
  }
};

TEST_F(hosts_fixture, ParsesAndPrefersIpv4) {
  file.write(
      "# comment\n"
      "127.0.0.1 localhost\n"
      "fd00::7 serviceb.default.svc.cluster.local\n"
      "10.0.0.7\tServiceB.default.svc.cluster.local serviceb.default # trailing\n"
      "10.0.0.8 serviceb.default.svc.cluster.local\n"
      "fd00::9 only6.default.svc.cluster.local.\n"
      "not-an-address foo\n");
  make();
  EXPECT_EQ(lookup("serviceb.default.svc.cluster.local").describe(), "10.0.0.7");
  EXPECT_EQ(lookup("SERVICEB.default").describe(), "10.0.0.7");
  EXPECT_EQ(lookup("only6.default.svc.cluster.local").describe(), "fd00::9");
  EXPECT_EQ(lookup("foo").describe(), "nxdomain");
  EXPECT_EQ(lookup("serviceb.azureuser.svc.cluster.local").describe(), "nxdomain");
  EXPECT_EQ(metrics.dns_lookups(dns_result::found).Value(), 3);
  EXPECT_EQ(metrics.dns_lookups(dns_result::nxdomain).Value(), 2);
}

TEST_F(hosts_fixture, CacheHitsAndFlushOnChange) {
  file.write("10.0.0.7 a\n");
  make();
  EXPECT_EQ(lookup("a").describe(), "10.0.0.7");
  EXPECT_EQ(lookup("b").describe(), "nxdomain");
  EXPECT_EQ(lookup("a").describe(), "10.0.0.7");
  EXPECT_EQ(lookup("b").describe(), "nxdomain");
  EXPECT_EQ(metrics.dns_lookups(dns_result::hit).Value(), 2);
  file.write("10.0.0.8 a\n10.0.0.9 b\n");
  EXPECT_EQ(lookup("a").describe(), "10.0.0.8");
  EXPECT_EQ(lookup("b").describe(), "10.0.0.9");
  EXPECT_EQ(metrics.dns_lookups(dns_result::hit).Value(), 2);
}

TEST_F(hosts_fixture, MissingFileIsAnError) {
  make();
  auto r = lookup("a");
  EXPECT_EQ(r.status, lookup_status::error);
  EXPECT_EQ(metrics.dns_lookups(dns_result::error).Value(), 1);
  file.write("10.0.0.7 a\n");
  EXPECT_EQ(lookup("a").describe(), "10.0.0.7");
}

TEST(ResolverConfig, Checks) {
  config cfg;
  EXPECT_FALSE(check_resolver_config(cfg));
  cfg.resolver = "hosts:";
  EXPECT_TRUE(check_resolver_config(cfg));
  cfg.resolver = "hosts:/nonexistent/devspaces/hosts";
  EXPECT_TRUE(check_resolver_config(cfg));
  cfg.resolver = "hosts:/etc/hostname";
  EXPECT_FALSE(check_resolver_config(cfg));
  cfg.resolver = "consul";
  auto err = check_resolver_config(cfg);
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("consul"), std::string::npos);
}

}  // namespace
}  // namespace devspaces::proxy::routing
