#include "proxy/routing/router.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <map>

namespace devspaces::proxy::routing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Answers from a fixed table at once; names not in the table are nxdomain, "*error*" names
// fail.
struct table_backend : resolver_backend {
  explicit table_backend(std::map<std::string, std::string> t) : table(std::move(t)) {}
  void async_lookup(const std::string& name, std::function<void(backend_answer)> done) override {
    if (name.find("error") != std::string::npos) return done({lookup_status::error, {}, 0s});
    auto it = table.find(name);
    if (it == table.end()) return done({lookup_status::nxdomain, {}, 0s});
    done({lookup_status::found, asio::ip::make_address(it->second), 30s});
  }
  std::map<std::string, std::string> table;
};

struct router_fixture : ::testing::Test {
  asio::io_context io;
  proxy_metrics metrics;
  std::shared_ptr<config> cfg = std::make_shared<config>();
  std::shared_ptr<space_tree_holder> tree;
  std::unique_ptr<router> r;

  void SetUp() override {
    cfg->space = "azureuser";
    cfg->parent_spaces = {"default"};
    auto t = build_space_tree(cfg->space, cfg->parent_spaces,
                              R"({"spaces": {"dev": {"parent": "azureuser"}}})");
    ASSERT_TRUE(t.tree) << t.error;
    tree = std::make_shared<space_tree_holder>(t.tree);
    auto res = std::make_shared<resolver>(
        io.get_executor(),
        std::make_unique<table_backend>(std::map<std::string, std::string>{
            {"servicea.default.svc.cluster.local", "10.0.0.5"},
            {"servicea.azureuser.svc.cluster.local", "10.0.1.5"},
            {"serviceb.default.svc.cluster.local", "10.0.0.7"},
            {"servicec.dev.svc.cluster.local", "fd00::c"},
        }),
        metrics);
    r = std::make_unique<router>(io.get_executor(), cfg, metrics, tree, res);
  }

  // The route header's values as a header list.
  static std::vector<header_ref> with_route_header(const std::vector<std::string_view>& values) {
    std::vector<header_ref> h;
    for (auto v : values) h.emplace_back("azds-route-as", v);
    return h;
  }

  route_result outbound(std::string_view host, std::vector<std::string_view> values) {
    return outbound_with(host, with_route_header(values));
  }

  route_result outbound_with(std::string_view host, std::vector<header_ref> headers) {
    std::optional<route_result> out;
    asio::co_spawn(io, r->route_outbound(host, headers),
                   [&](std::exception_ptr e, route_result res) {
                     if (e) std::rethrow_exception(e);
                     out = std::move(res);
                   });
    io.restart();
    io.run();
    EXPECT_TRUE(out);
    return out.value_or(route_result{});
  }

  route_result inbound(std::string_view host, std::vector<std::string_view> values) {
    return r->route_inbound(host, with_route_header(values));
  }

  double decisions(route_outcome o) { return metrics.route_decisions(o).Value(); }
};

TEST_F(router_fixture, WalkThroughParentFallback) {
  auto res = outbound("serviceb", {"azureuser"});
  EXPECT_EQ(res.route_as, "azureuser");
  EXPECT_EQ(res.source, route_source::header);
  EXPECT_EQ(res.metric, route_outcome::parent);
  EXPECT_EQ(res.decision->service, "serviceb");
  EXPECT_EQ(res.decision->decision, decision_kind::parent);
  EXPECT_EQ(res.decision->level, 1);
  ASSERT_EQ(res.decision->tried.size(), 2u);
  EXPECT_EQ(res.decision->tried[0].name, "serviceb.azureuser.svc.cluster.local");
  EXPECT_EQ(res.decision->tried[0].result, "nxdomain");
  EXPECT_EQ(res.decision->tried[1].name, "serviceb.default.svc.cluster.local");
  EXPECT_EQ(res.decision->tried[1].result, "10.0.0.7");
  ASSERT_TRUE(res.target);
  EXPECT_EQ(res.target->to_string(), "10.0.0.7");
  EXPECT_FALSE(res.insert_header);
  EXPECT_EQ(decisions(route_outcome::parent), 1);
}

TEST_F(router_fixture, OwnSpaceHit) {
  auto res = outbound("servicea:80", {"azureuser"});
  EXPECT_EQ(res.decision->decision, decision_kind::own);
  EXPECT_EQ(res.decision->level, 0);
  EXPECT_EQ(res.target->to_string(), "10.0.1.5");
  EXPECT_EQ(res.decision->tried.size(), 1u);
  EXPECT_EQ(decisions(route_outcome::own), 1);
}

TEST_F(router_fixture, GrandparentFallbackAndIpv6) {
  auto res = outbound("serviceb", {"dev"});
  EXPECT_EQ(res.decision->decision, decision_kind::grandparent);
  EXPECT_EQ(res.decision->level, 2);
  EXPECT_EQ(res.target->to_string(), "10.0.0.7");
  EXPECT_EQ(res.decision->tried.size(), 3u);
  EXPECT_EQ(decisions(route_outcome::grandparent), 1);

  auto v6 = outbound("servicec", {"dev"});
  EXPECT_EQ(v6.decision->decision, decision_kind::own);
  EXPECT_EQ(v6.target->to_string(), "fd00::c");
}

TEST_F(router_fixture, NothingResolvesGoesToOriginal) {
  auto res = outbound("nosuch", {"azureuser"});
  EXPECT_EQ(res.decision->decision, decision_kind::original);
  EXPECT_FALSE(res.decision->level);
  EXPECT_EQ(res.decision->service, "nosuch");
  EXPECT_EQ(res.decision->tried.size(), 2u);
  EXPECT_FALSE(res.target);
  EXPECT_EQ(res.metric, route_outcome::original);
  EXPECT_EQ(decisions(route_outcome::original), 1);
}

TEST_F(router_fixture, ResolverErrorsFallThrough) {
  auto res = outbound("error", {"azureuser"});
  EXPECT_FALSE(res.target);
  ASSERT_EQ(res.decision->tried.size(), 2u);
  EXPECT_EQ(res.decision->tried[0].result, "error");
}

TEST_F(router_fixture, ExplicitNamespaceMustBeInChain) {
  // Ancestor named explicitly: still starts at S.
  auto res = outbound("servicea.default.svc.cluster.local", {"azureuser"});
  EXPECT_EQ(res.decision->decision, decision_kind::own);
  EXPECT_EQ(res.target->to_string(), "10.0.1.5");
  auto ns = outbound("serviceb.default", {"azureuser"});
  EXPECT_EQ(ns.decision->decision, decision_kind::parent);
  // Not in the chain of S: not routed.
  auto other = outbound("serviceb.kube-system.svc", {"azureuser"});
  EXPECT_FALSE(other.target);
  EXPECT_FALSE(other.decision->service);
  EXPECT_TRUE(other.decision->tried.empty());
  EXPECT_EQ(other.route_as, "azureuser");
  auto child_ns = outbound("servicec.dev", {"azureuser"});
  EXPECT_FALSE(child_ns.target);
}

TEST_F(router_fixture, ExternalAndIpHostsGoToOriginal) {
  for (auto host : {"www.example.com", "10.0.0.7", "10.0.0.7:80", "[fd00::1]:80", "",
                    "serviceb.default.svc.other.domain"}) {
    auto res = outbound(host, {"azureuser"});
    EXPECT_FALSE(res.target) << host;
    EXPECT_FALSE(res.decision->service) << host;
    EXPECT_TRUE(res.decision->tried.empty()) << host;
    EXPECT_EQ(res.decision->decision, decision_kind::original) << host;
  }
  EXPECT_EQ(decisions(route_outcome::original), 6);
}

TEST_F(router_fixture, NoHeaderAndInvalidHeader) {
  auto none = outbound("serviceb", {});
  EXPECT_FALSE(none.route_as);
  EXPECT_EQ(none.source, route_source::none);
  EXPECT_FALSE(none.target);
  EXPECT_FALSE(none.decision->service);
  EXPECT_EQ(none.metric, route_outcome::no_header);
  auto bad = outbound("serviceb", {"Not_A_Label"});
  EXPECT_FALSE(bad.route_as);
  EXPECT_FALSE(bad.target);
  EXPECT_EQ(bad.metric, route_outcome::invalid_header);
  auto disagree = outbound("serviceb", {"azureuser", "default"});
  EXPECT_FALSE(disagree.target);
  EXPECT_EQ(decisions(route_outcome::no_header), 1);
  EXPECT_EQ(decisions(route_outcome::invalid_header), 2);
}

TEST_F(router_fixture, HeaderSpaceLowercased) {
  auto res = outbound("ServiceB", {"AzureUser"});
  EXPECT_EQ(res.route_as, "azureuser");
  EXPECT_EQ(res.decision->service, "serviceb");
  EXPECT_EQ(res.target->to_string(), "10.0.0.7");
}

TEST_F(router_fixture, TreeSwapSeenOnNextRequest) {
  EXPECT_EQ(outbound("serviceb", {"newspace"}).decision->decision, decision_kind::original);
  tree->set(build_space_tree("azureuser", std::vector<std::string>{"default"},
                             R"({"spaces": {"newspace": {"parent": "default"}}})")
                .tree);
  EXPECT_EQ(outbound("serviceb", {"newspace"}).decision->decision, decision_kind::parent);
}

TEST_F(router_fixture, InboundHostPatternAddsHeader) {
  auto res = inbound("azureuser.s.default.servicea.example.io", {});
  EXPECT_EQ(res.route_as, "azureuser");
  EXPECT_EQ(res.source, route_source::host);
  EXPECT_TRUE(res.insert_header);
  EXPECT_FALSE(res.target);
  EXPECT_FALSE(res.metric);
  EXPECT_EQ(res.decision->decision, decision_kind::original);
  EXPECT_FALSE(res.decision->service);
}

TEST_F(router_fixture, InboundExistingHeaderKept) {
  auto res = inbound("azureuser.s.default.servicea.example.io", {"other"});
  EXPECT_EQ(res.route_as, "other");
  EXPECT_EQ(res.source, route_source::header);
  EXPECT_FALSE(res.insert_header);
}

TEST_F(router_fixture, InboundInvalidHeaderNotReplaced) {
  auto res = inbound("azureuser.s.default.servicea.example.io", {"bad value"});
  EXPECT_FALSE(res.route_as);
  EXPECT_EQ(res.source, route_source::none);
  EXPECT_FALSE(res.insert_header);
  EXPECT_EQ(res.metric, route_outcome::invalid_header);
  EXPECT_EQ(decisions(route_outcome::invalid_header), 1);
}

TEST_F(router_fixture, InboundPlainHost) {
  auto res = inbound("servicea.default:8080", {});
  EXPECT_FALSE(res.route_as);
  EXPECT_EQ(res.source, route_source::none);
  EXPECT_FALSE(res.insert_header);
  EXPECT_FALSE(res.metric);
}

TEST_F(router_fixture, BaggageCarrierRoutesAndAddsRouteHeader) {
  auto res = outbound_with("serviceb", {{"baggage", "userId=alice, azds-route-as=azureuser"}});
  EXPECT_EQ(res.route_as, "azureuser");
  EXPECT_EQ(res.source, route_source::baggage);
  EXPECT_EQ(res.decision->decision, decision_kind::parent);
  EXPECT_TRUE(res.insert_header);  // the next hop sees the route header
  auto kube = outbound_with("servicea", {{"kubernetes-route-as", "azureuser"}});
  EXPECT_EQ(kube.source, route_source::kubernetes_route_as);
  EXPECT_EQ(kube.decision->decision, decision_kind::own);
  EXPECT_TRUE(kube.insert_header);
  // The route header itself: nothing to add.
  auto both = outbound_with(
      "serviceb", {{"azds-route-as", "azureuser"}, {"baggage", "azds-route-as=azureuser"}});
  EXPECT_EQ(both.source, route_source::header);
  EXPECT_FALSE(both.insert_header);
  // An external host is not routed: no header is added to it.
  auto ext = outbound_with("www.example.com", {{"baggage", "azds-route-as=azureuser"}});
  EXPECT_FALSE(ext.insert_header);
}

TEST_F(router_fixture, DisagreeingCarriersAreInvalid) {
  auto res =
      outbound_with("serviceb", {{"azds-route-as", "azureuser"}, {"kubernetes-route-as", "dev"}});
  EXPECT_FALSE(res.route_as);
  EXPECT_FALSE(res.target);
  EXPECT_FALSE(res.insert_header);
  EXPECT_EQ(res.metric, route_outcome::invalid_header);
  auto in = r->route_inbound(
      "dev.s.default.servicea.io",
      std::vector<header_ref>{{"baggage", "azds-route-as=a"}, {"kubernetes-route-as", "b"}});
  EXPECT_FALSE(in.route_as);
  EXPECT_FALSE(in.insert_header);  // not even from the Host: forwarded untouched
  EXPECT_EQ(decisions(route_outcome::invalid_header), 2);
}

TEST_F(router_fixture, InboundBaggageAddsRouteHeaderForTheApp) {
  auto res =
      r->route_inbound("servicea", std::vector<header_ref>{{"baggage", "azds-route-as=dev"}});
  EXPECT_EQ(res.route_as, "dev");
  EXPECT_EQ(res.source, route_source::baggage);
  EXPECT_TRUE(res.insert_header);
}

constexpr std::string_view trace_a = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
constexpr std::string_view trace_b = "00-11111111111111111111111111111111-b7ad6b7169203331-01";

struct memory_fixture : router_fixture {
  std::shared_ptr<route_memory> memory = std::make_shared<route_memory>(std::chrono::seconds(60));
  void SetUp() override {
    router_fixture::SetUp();
    auto res = std::make_shared<resolver>(
        io.get_executor(),
        std::make_unique<table_backend>(std::map<std::string, std::string>{
            {"servicea.azureuser.svc.cluster.local", "10.0.1.5"},
            {"serviceb.default.svc.cluster.local", "10.0.0.7"},
        }),
        metrics);
    r = std::make_unique<router>(io.get_executor(), cfg, metrics, tree, res, memory);
  }
  double mem(memory_result m) { return metrics.route_memory(m).Value(); }
};

TEST_F(memory_fixture, InboundSpaceRoutesOutboundCallOfTheSameTrace) {
  // Inbound: the Host names the space; the trace id is remembered.
  auto in = r->route_inbound("azureuser.s.default.servicea.io",
                             std::vector<header_ref>{{"traceparent", trace_a}});
  EXPECT_EQ(in.route_as, "azureuser");
  ASSERT_TRUE(in.trace);
  EXPECT_EQ(in.trace->hex(), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(mem(memory_result::stored), 1);

  // Outbound: the app forwarded traceparent only (a new span id, same trace).
  auto out = outbound_with(
      "serviceb", {{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"}});
  EXPECT_EQ(out.route_as, "azureuser");
  EXPECT_EQ(out.source, route_source::memory);
  EXPECT_EQ(out.decision->decision, decision_kind::parent);
  EXPECT_TRUE(out.insert_header);
  EXPECT_EQ(mem(memory_result::hit), 1);
  // Counted under the decision it led to.
  EXPECT_EQ(decisions(route_outcome::parent), 1);

  // Another trace: a miss, no routing.
  auto miss = outbound_with("serviceb", {{"traceparent", trace_b}});
  EXPECT_FALSE(miss.route_as);
  EXPECT_EQ(miss.metric, route_outcome::no_header);
  EXPECT_EQ(mem(memory_result::miss), 1);
}

TEST_F(memory_fixture, CarrierBeatsMemoryAndNoTraceparentCostsNothing) {
  (void)r->route_inbound("servicea", std::vector<header_ref>{{"azds-route-as", "azureuser"},
                                                             {"traceparent", trace_a}});
  auto out = outbound_with("serviceb", {{"azds-route-as", "default"}, {"traceparent", trace_a}});
  EXPECT_EQ(out.route_as, "default");
  EXPECT_EQ(out.source, route_source::header);
  // No traceparent: the memory is not consulted at all.
  (void)outbound_with("serviceb", {});
  (void)r->route_inbound("azureuser.s.x.io", std::vector<header_ref>{});
  EXPECT_EQ(mem(memory_result::hit), 0);
  EXPECT_EQ(mem(memory_result::miss), 0);
  EXPECT_EQ(mem(memory_result::stored), 1);
  // An inbound request without a valid space is not remembered.
  (void)r->route_inbound("servicea", std::vector<header_ref>{{"traceparent", trace_b}});
  EXPECT_EQ(mem(memory_result::stored), 1);
}

TEST_F(router_fixture, MemoryOffWhenNoneGiven) {
  (void)r->route_inbound("azureuser.s.x.io", std::vector<header_ref>{{"traceparent", trace_a}});
  auto out = outbound_with("serviceb", {{"traceparent", trace_a}});
  EXPECT_FALSE(out.route_as);
  EXPECT_EQ(metrics.route_memory(memory_result::stored).Value(), 0);
  EXPECT_EQ(metrics.route_memory(memory_result::miss).Value(), 0);
}

asio::awaitable<void> bench_loop(router& r, std::string_view host, std::vector<header_ref> headers,
                                 int n, int& done) {
  for (int i = 0; i < n; ++i) {
    auto res = co_await r.route_outbound(host, headers);
    if (res.decision->tried.size() < 100) ++done;
  }
}

// Cost of routing one request with every answer cached (run with
// --gtest_also_run_disabled_tests --gtest_filter='*Throughput*'); prints ns per request.
TEST_F(router_fixture, DISABLED_Throughput) {
  constexpr int n = 200000;
  auto time = [&](const char* what, std::string_view host, std::vector<std::string_view> headers) {
    outbound(host, headers);  // warm the cache
    int done = 0;
    auto t0 = std::chrono::steady_clock::now();
    // One coroutine awaiting the router in a loop, as an HTTP session does.
    asio::co_spawn(io, bench_loop(*r, host, with_route_header(headers), n, done),
                   [](std::exception_ptr) {});
    io.restart();
    io.run();
    auto ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0);
    EXPECT_EQ(done, n);
    std::printf("%-28s %8.0f ns/request\n", what, ns.count() / n);
  };
  time("outbound, no header", "serviceb", {});
  time("outbound, external host", "www.example.com", {"azureuser"});
  time("outbound, own (1 lookup)", "servicea", {"azureuser"});
  time("outbound, parent (2 lookups)", "serviceb", {"azureuser"});
  std::vector<header_ref> none;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) (void)r->route_inbound("azureuser.s.default.servicea.io", none);
  auto ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0);
  std::printf("%-28s %8.0f ns/request\n", "inbound, host pattern", ns.count() / n);
}

// Holds every query until the test answers it.
struct manual_backend : resolver_backend {
  void async_lookup(const std::string& name, std::function<void(backend_answer)> done) override {
    queued->emplace_back(name, std::move(done));
  }
  std::shared_ptr<std::vector<std::pair<std::string, std::function<void(backend_answer)>>>> queued =
      std::make_shared<std::vector<std::pair<std::string, std::function<void(backend_answer)>>>>();
};

TEST(RouterPrefetch, AllLevelsAskedAtOnceAnsweredInOrder) {
  asio::io_context io;
  proxy_metrics metrics;
  auto cfg = std::make_shared<config>();
  cfg->space = "dev";
  cfg->parent_spaces = {"azureuser", "default"};
  cfg->cluster_domain = "Cluster.Local.";
  auto tree = std::make_shared<space_tree_holder>(
      build_space_tree(cfg->space, cfg->parent_spaces, "").tree);
  auto backend = std::make_unique<manual_backend>();
  auto queued = backend->queued;
  auto res = std::make_shared<resolver>(io.get_executor(), std::move(backend), metrics);
  router r(io.get_executor(), cfg, metrics, tree, res);
  std::optional<route_result> out;
  std::vector<header_ref> headers{{"azds-route-as", "dev"}};
  asio::co_spawn(io, r.route_outbound("serviceb.azureuser.svc.cluster.local", headers),
                 [&](std::exception_ptr e, route_result rr) {
                   if (e) std::rethrow_exception(e);
                   out = std::move(rr);
                 });
  auto drain = [&] {
    io.restart();
    while (io.poll() > 0) io.restart();
  };
  drain();
  ASSERT_EQ(queued->size(), 3u);
  EXPECT_EQ((*queued)[0].first, "serviceb.dev.svc.cluster.local");
  EXPECT_EQ((*queued)[1].first, "serviceb.azureuser.svc.cluster.local");
  EXPECT_EQ((*queued)[2].first, "serviceb.default.svc.cluster.local");
  // The grandparent answers first; the parent still wins once the own level says nxdomain.
  (*queued)[2].second({lookup_status::found, asio::ip::make_address("10.0.0.3"), 30s});
  (*queued)[1].second({lookup_status::found, asio::ip::make_address("10.0.0.2"), 30s});
  drain();
  EXPECT_FALSE(out);
  (*queued)[0].second({lookup_status::nxdomain, std::nullopt, 0s});
  drain();
  ASSERT_TRUE(out);
  EXPECT_EQ(out->decision->decision, decision_kind::parent);
  EXPECT_EQ(out->target->to_string(), "10.0.0.2");
  ASSERT_EQ(out->decision->tried.size(), 2u);
  EXPECT_EQ(metrics.dns_lookups(dns_result::found).Value(), 1);
  EXPECT_EQ(metrics.dns_lookups(dns_result::nxdomain).Value(), 1);
}

// --- remembered decisions ---------------------------------------------------------------------

// A table backend that counts its queries and whose table tests edit.
struct counting_backend : resolver_backend {
  void async_lookup(const std::string& name, std::function<void(backend_answer)> done) override {
    ++(*queries);
    if (name.find("error") != std::string::npos) return done({lookup_status::error, {}, 0s});
    auto it = table->find(name);
    if (it == table->end()) return done({lookup_status::nxdomain, {}, 0s});
    done({lookup_status::found, asio::ip::make_address(it->second), 30s});
  }
  std::shared_ptr<int> queries = std::make_shared<int>(0);
  std::shared_ptr<std::map<std::string, std::string>> table =
      std::make_shared<std::map<std::string, std::string>>();
};

struct remembered_fixture : router_fixture {
  std::shared_ptr<int> queries;
  std::shared_ptr<std::map<std::string, std::string>> table;
  std::shared_ptr<resolver> res;
  std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now();

  void SetUp() override {
    router_fixture::SetUp();
    auto backend = std::make_unique<counting_backend>();
    queries = backend->queries;
    table = backend->table;
    (*table)["serviceb.default.svc.cluster.local"] = "10.0.0.7";
    resolver_options o;
    o.clock = [this] { return now; };
    res = std::make_shared<resolver>(io.get_executor(), std::move(backend), metrics, o);
    r = std::make_unique<router>(io.get_executor(), cfg, metrics, tree, res);
  }

  // The decision when the router can give it without a lookup; nullopt when it cannot (the
  // carriers it read are then finished here, so that every call counts once, as a request
  // would).
  std::optional<route_result> at_once(std::string_view host, std::string_view space) {
    auto headers = with_route_header({space});
    router::outbound_pending pending;
    auto now_result = r->route_outbound_now(host, headers, pending);
    if (!now_result) {
      asio::co_spawn(io, r->finish_outbound(std::move(pending)), asio::detached);
      io.restart();
      io.run();
    }
    return now_result;
  }

  double hits() { return metrics.dns_lookups(dns_result::hit).Value(); }
};

TEST_F(remembered_fixture, ARepeatedRequestIsDecidedAtOnceWithTheSameDecisionAndCounts) {
  auto first = outbound("serviceb", {"azureuser"});
  EXPECT_EQ(first.decision->decision, decision_kind::parent);
  EXPECT_EQ(*queries, 2);  // own level (nxdomain) and parent
  EXPECT_EQ(r->remembered(), 1u);
  const double hits_before = hits();

  auto again = at_once("serviceb", "azureuser");
  ASSERT_TRUE(again) << "a remembered decision needs no coroutine and no lookup";
  EXPECT_EQ(again->decision, first.decision) << "shared, not copied";
  EXPECT_EQ(again->target->to_string(), "10.0.0.7");
  EXPECT_EQ(again->route_as, "azureuser");
  EXPECT_FALSE(again->insert_header) << "the route header carried the space";
  EXPECT_EQ(*queries, 2);
  // Counted as the two cached lookups it stands for, and as one more parent decision.
  EXPECT_EQ(hits() - hits_before, 2);
  EXPECT_EQ(decisions(route_outcome::parent), 2);

  // Another space, or another host, is a decision of its own.
  EXPECT_FALSE(at_once("serviceb", "default"));
  EXPECT_FALSE(at_once("servicex", "azureuser"));
  EXPECT_EQ(r->remembered(), 3u);
}

TEST_F(remembered_fixture, ItEndsWhenAnAnswerItReadExpires) {
  EXPECT_EQ(outbound("serviceb", {"azureuser"}).decision->decision, decision_kind::parent);
  // The developer deploys serviceb in their own space; the nxdomain is cached for 5 s.
  (*table)["serviceb.azureuser.svc.cluster.local"] = "10.0.1.7";
  now += 4s;
  auto still = at_once("serviceb", "azureuser");
  ASSERT_TRUE(still);
  EXPECT_EQ(still->decision->decision, decision_kind::parent);
  now += 2s;
  EXPECT_FALSE(at_once("serviceb", "azureuser")) << "the nxdomain it was made from expired";
  auto own = at_once("serviceb", "azureuser");
  ASSERT_TRUE(own) << "the new decision is remembered in turn";
  EXPECT_EQ(own->decision->decision, decision_kind::own);
  EXPECT_EQ(own->target->to_string(), "10.0.1.7");
}

TEST_F(remembered_fixture, ItEndsWhenTheResolverCacheIsDroppedOrTheTreeChanges) {
  outbound("serviceb", {"azureuser"});
  ASSERT_TRUE(at_once("serviceb", "azureuser"));
  res->clear_cache();  // what an edited hosts file does
  EXPECT_FALSE(at_once("serviceb", "azureuser"));
  ASSERT_TRUE(at_once("serviceb", "azureuser"));

  tree->set(build_space_tree("azureuser", std::vector<std::string>{"default"},
                             R"({"spaces": {"dev": {"parent": "default"}}})")
                .tree);
  EXPECT_FALSE(at_once("serviceb", "azureuser"));
}

TEST_F(remembered_fixture, FailedLookupsAreNotRememberedAndHostsOutsideTheChainAre) {
  // Errors are not cached by the resolver, so nothing is remembered from them.
  EXPECT_FALSE(at_once("errorsvc", "azureuser"));
  EXPECT_FALSE(at_once("errorsvc", "azureuser"));
  const int asked = *queries;
  EXPECT_FALSE(at_once("errorsvc", "azureuser"));
  EXPECT_GT(*queries, asked);

  // A host that is not a service name goes to its original destination, without lookups.
  EXPECT_FALSE(at_once("example.com", "azureuser"));
  auto external = at_once("example.com", "azureuser");
  ASSERT_TRUE(external);
  EXPECT_EQ(external->decision, no_decision());
  EXPECT_FALSE(external->target);
  EXPECT_FALSE(external->insert_header);
  EXPECT_EQ(external->metric, route_outcome::original);
}

TEST_F(remembered_fixture, ABaggageCarrierStillGetsTheRouteHeaderAddedOnARememberedDecision) {
  outbound("serviceb", {"azureuser"});
  std::vector<header_ref> baggage{{"baggage", "azds-route-as=azureuser"}};
  router::outbound_pending pending;
  auto res2 = r->route_outbound_now("serviceb", baggage, pending);
  ASSERT_TRUE(res2);
  EXPECT_EQ(res2->source, route_source::baggage);
  EXPECT_TRUE(res2->insert_header);
  EXPECT_EQ(res2->decision->decision, decision_kind::parent);
}

}  // namespace
}  // namespace devspaces::proxy::routing
