// The c-ares resolver against a real DNS server on loopback: a small UDP responder in this
// test answers A/AAAA records with a TTL, NXDOMAIN for unknown names, and can delay, drop or
// SERVFAIL chosen names.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <mutex>
#include <thread>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proxy/routing/resolver.hpp"
#include "proxy/routing/router.hpp"
#include "tests/proxy/routing/dns_responder.hpp"
#include "tests/support/test_support.hpp"

namespace devspaces::proxy::routing {
namespace {

namespace asio = boost::asio;
using asio::ip::udp;
using namespace std::chrono_literals;
using test::a_record;
using test::dns_record;
using test::dns_server;

struct dns_fixture : ::testing::Test {
  dns_server server{{
      {"serviceb.default.svc.cluster.local", a_record("10.0.0.7", 10)},
      {"long.default.svc.cluster.local", a_record("10.0.0.8", 3600)},
      {"six.default.svc.cluster.local",
       [] {
         dns_record r;
         r.aaaa = asio::ip::make_address_v6("fd00::7");
         return r;
       }()},
      {"slow.default.svc.cluster.local",
       [] {
         auto r = a_record("10.0.0.9");
         r.delay = 700ms;  // answers during c-ares' second try (tries at 0 and 500 ms)
         return r;
       }()},
      {"dropped.default.svc.cluster.local",
       [] {
         auto r = a_record("10.0.0.9");
         r.drop = true;
         return r;
       }()},
      {"broken.default.svc.cluster.local",
       [] {
         dns_record r;
         r.servfail = true;
         return r;
       }()},
  }};
  asio::io_context io;
  proxy_metrics metrics;
  std::chrono::steady_clock::time_point fake_now = std::chrono::steady_clock::now();
  std::shared_ptr<resolver> res;

  void make(std::chrono::milliseconds timeout = 2000ms, std::string servers = {}) {
    dns_backend_options o;
    o.servers = servers.empty() ? server.address() : servers;
    o.query_timeout = 500ms;
    std::string error;
    auto backend = make_dns_backend(io.get_executor(), o, &error);
    ASSERT_TRUE(backend) << error;
    resolver_options ro;
    ro.timeout = timeout;
    ro.clock = [this] { return fake_now; };
    res = std::make_shared<resolver>(io.get_executor(), std::move(backend), metrics, ro);
  }

  // Starts a lookup on the io_context; the result lands in the slot.
  std::shared_ptr<std::optional<lookup_result>> start(std::string name) {
    auto slot = std::make_shared<std::optional<lookup_result>>();
    asio::co_spawn(io, res->lookup(std::move(name)), [slot](std::exception_ptr e, lookup_result r) {
      if (e) std::rethrow_exception(e);
      *slot = r;
    });
    return slot;
  }

  // Runs the io_context until `done` holds (or 10 s pass).
  bool run_until(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io.restart();
      io.run_one_for(50ms);
    }
    return done();
  }

  lookup_result lookup(std::string name) {
    auto slot = start(std::move(name));
    EXPECT_TRUE(run_until([&] { return slot->has_value(); }));
    return slot->value_or(lookup_result{});
  }

  double count(dns_result r) { return metrics.dns_lookups(r).Value(); }
};

TEST_F(dns_fixture, FoundThenCachedWithinTtl) {
  make();
  auto r = lookup("serviceb.default.svc.cluster.local");
  EXPECT_EQ(r.status, lookup_status::found);
  EXPECT_EQ(r.describe(), "10.0.0.7");
  EXPECT_FALSE(r.cached);
  auto again = lookup("serviceb.default.svc.cluster.local");
  EXPECT_TRUE(again.cached);
  EXPECT_EQ(again.describe(), "10.0.0.7");
  EXPECT_EQ(server.queries("serviceb.default.svc.cluster.local"), 1);
  EXPECT_EQ(count(dns_result::found), 1);
  EXPECT_EQ(count(dns_result::hit), 1);
  // Past the record's 10 s TTL: asked again.
  fake_now += 11s;
  EXPECT_FALSE(lookup("serviceb.default.svc.cluster.local").cached);
  EXPECT_EQ(server.queries("serviceb.default.svc.cluster.local"), 2);
}

TEST_F(dns_fixture, LongTtlCappedAt30s) {
  make();
  lookup("long.default.svc.cluster.local");
  fake_now += 29s;
  EXPECT_TRUE(lookup("long.default.svc.cluster.local").cached);
  fake_now += 2s;
  EXPECT_FALSE(lookup("long.default.svc.cluster.local").cached);
  EXPECT_EQ(server.queries("long.default.svc.cluster.local"), 2);
}

TEST_F(dns_fixture, NxdomainCachedFiveSeconds) {
  make();
  auto r = lookup("serviceb.azureuser.svc.cluster.local");
  EXPECT_EQ(r.describe(), "nxdomain");
  EXPECT_EQ(count(dns_result::nxdomain), 1);
  fake_now += 4s;
  EXPECT_TRUE(lookup("serviceb.azureuser.svc.cluster.local").cached);
  fake_now += 2s;
  EXPECT_FALSE(lookup("serviceb.azureuser.svc.cluster.local").cached);
  EXPECT_EQ(server.queries("serviceb.azureuser.svc.cluster.local"), 2);
}

TEST_F(dns_fixture, FallsBackToAaaa) {
  make();
  auto r = lookup("six.default.svc.cluster.local");
  EXPECT_EQ(r.status, lookup_status::found);
  EXPECT_EQ(r.describe(), "fd00::7");
  EXPECT_EQ(server.queries("six.default.svc.cluster.local"), 2);  // A (no data), then AAAA
}

TEST_F(dns_fixture, ServfailIsAnError) {
  make();
  auto r = lookup("broken.default.svc.cluster.local");
  EXPECT_EQ(r.status, lookup_status::error);
  EXPECT_EQ(r.describe(), "error");
  EXPECT_EQ(count(dns_result::error), 1);
}

TEST_F(dns_fixture, SlowServerDoesNotStallOtherLookups) {
  make(300ms);
  auto slow = start("slow.default.svc.cluster.local");
  auto dropped = start("dropped.default.svc.cluster.local");
  auto t0 = std::chrono::steady_clock::now();
  auto fast = start("serviceb.default.svc.cluster.local");
  ASSERT_TRUE(run_until([&] { return fast->has_value(); }));
  auto fast_elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ((*fast)->describe(), "10.0.0.7");
  EXPECT_FALSE(slow->has_value());
  EXPECT_LT(fast_elapsed, 250ms);
  ASSERT_TRUE(run_until([&] { return slow->has_value() && dropped->has_value(); }));
  EXPECT_EQ((*slow)->describe(), "timeout");
  EXPECT_EQ((*dropped)->describe(), "timeout");
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(waited, 650ms);  // the per-lookup timeout, not the server's 700 ms
  EXPECT_EQ(count(dns_result::error), 2);
  // The slow answer arrives later and fills the cache for the next request.
  ASSERT_TRUE(test::wait_for(
      [&] {
        io.restart();
        io.run_for(20ms);
        return res->cache_size() >= 2;
      },
      5s));
  EXPECT_EQ(lookup("slow.default.svc.cluster.local").describe(), "10.0.0.9");
}

TEST_F(dns_fixture, ConcurrentLookupsCoalesced) {
  make();
  std::vector<std::shared_ptr<std::optional<lookup_result>>> slots;
  for (int i = 0; i < 5; ++i) slots.push_back(start("serviceb.default.svc.cluster.local"));
  ASSERT_TRUE(run_until([&] {
    return std::all_of(slots.begin(), slots.end(), [](auto& s) { return s->has_value(); });
  }));
  for (auto& s : slots) EXPECT_EQ((*s)->describe(), "10.0.0.7");
  EXPECT_EQ(server.queries("serviceb.default.svc.cluster.local"), 1);
}

TEST_F(dns_fixture, NoServerListening) {
  // A port with nothing behind it: refused quickly, answered as an error, nothing hangs.
  asio::io_context tmp;
  udp::socket probe(tmp, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  auto port = probe.local_endpoint().port();
  probe.close();
  make(2000ms, "127.0.0.1:" + std::to_string(port));
  auto r = lookup("serviceb.default.svc.cluster.local");
  EXPECT_NE(r.status, lookup_status::found);
}

TEST_F(dns_fixture, RouterWalkThroughOverDns) {
  make();
  auto cfg = std::make_shared<config>();
  cfg->space = "azureuser";
  cfg->parent_spaces = {"default"};
  auto tree = std::make_shared<space_tree_holder>(
      build_space_tree(cfg->space, cfg->parent_spaces, "").tree);
  router r(io.get_executor(), cfg, metrics, tree, res);
  std::optional<route_result> out;
  std::vector<header_ref> headers{{"azds-route-as", "azureuser"}};
  asio::co_spawn(io, r.route_outbound("serviceb", headers),
                 [&](std::exception_ptr e, route_result rr) {
                   if (e) std::rethrow_exception(e);
                   out = std::move(rr);
                 });
  ASSERT_TRUE(run_until([&] { return out.has_value(); }));
  EXPECT_EQ(out->decision->decision, decision_kind::parent);
  ASSERT_EQ(out->decision->tried.size(), 2u);
  EXPECT_EQ(out->decision->tried[0].result, "nxdomain");
  EXPECT_EQ(out->decision->tried[1].result, "10.0.0.7");
  EXPECT_EQ(out->target->to_string(), "10.0.0.7");
}

// The same resolver against dnsmasq (a real DNS server) on a loopback port, when installed.
class dnsmasq_process {
 public:
  explicit dnsmasq_process(std::vector<std::string> args) {
    asio::io_context tmp;
    udp::socket probe(tmp, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port_ = probe.local_endpoint().port();
    probe.close();
    args.insert(args.begin(),
                {"dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
                 "--conf-file=/dev/null", "--listen-address=127.0.0.1", "--bind-interfaces",
                 "--port=" + std::to_string(port_), "--pid-file=", "--log-facility=-"});
    if (::geteuid() == 0) args.push_back("--user=root");
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp("/usr/sbin/dnsmasq", argv.data());
      ::_exit(127);
    }
  }
  ~dnsmasq_process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

TEST_F(dns_fixture, AgainstDnsmasq) {
  if (::access("/usr/sbin/dnsmasq", X_OK) != 0) GTEST_SKIP() << "dnsmasq not installed";
  dnsmasq_process dnsmasq({"--local=/cluster.local/", "--local-ttl=20",
                           "--host-record=serviceb.default.svc.cluster.local,10.0.0.7",
                           "--host-record=six.default.svc.cluster.local,fd00::6"});
  make(2000ms, dnsmasq.address());
  // dnsmasq needs a moment to bind: retry (new names, so the cache does not answer) until up.
  std::optional<lookup_result> first;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  for (int i = 0; (!first || first->status != lookup_status::nxdomain) &&
                  std::chrono::steady_clock::now() < deadline;
       ++i) {
    first = lookup("probe" + std::to_string(i) + ".default.svc.cluster.local");
    if (first->status != lookup_status::nxdomain) {
      asio::steady_timer pause(io, 20ms);  // dnsmasq still starting: poll, bounded by deadline
      io.restart();
      pause.wait();
    }
  }
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, lookup_status::nxdomain) << first->describe();
  EXPECT_EQ(lookup("serviceb.default.svc.cluster.local").describe(), "10.0.0.7");
  EXPECT_EQ(lookup("serviceb.azureuser.svc.cluster.local").describe(), "nxdomain");
  EXPECT_EQ(lookup("six.default.svc.cluster.local").describe(), "fd00::6");
  EXPECT_TRUE(lookup("serviceb.default.svc.cluster.local").cached);
}

TEST(DnsBackend, BadServersSpec) {
  asio::io_context io;
  dns_backend_options o;
  o.servers = "not an address";
  std::string error;
  EXPECT_FALSE(make_dns_backend(io.get_executor(), o, &error));
  EXPECT_FALSE(error.empty());
}

TEST(DnsBackend, SystemConfigStarts) {
  asio::io_context io;
  std::string error;
  EXPECT_TRUE(make_dns_backend(io.get_executor(), {}, &error)) << error;
}

}  // namespace
}  // namespace devspaces::proxy::routing
