#include "proxy/routing/names.hpp"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <string>

namespace devspaces::proxy::routing {
namespace {

TEST(DnsLabel, AcceptsLabels) {
  EXPECT_TRUE(is_dns_label("default"));
  EXPECT_TRUE(is_dns_label("a"));
  EXPECT_TRUE(is_dns_label("0"));
  EXPECT_TRUE(is_dns_label("azure-user1"));
  EXPECT_TRUE(is_dns_label(std::string(63, 'a')));
}

TEST(DnsLabel, RejectsNonLabels) {
  EXPECT_FALSE(is_dns_label(""));
  EXPECT_FALSE(is_dns_label(std::string(64, 'a')));
  EXPECT_FALSE(is_dns_label("-a"));
  EXPECT_FALSE(is_dns_label("a-"));
  EXPECT_FALSE(is_dns_label("Azure"));
  EXPECT_FALSE(is_dns_label("a.b"));
  EXPECT_FALSE(is_dns_label("a_b"));
  EXPECT_FALSE(is_dns_label("a b"));
}

route_header check(std::initializer_list<std::string_view> values) {
  std::vector<std::string_view> v(values);
  return parse_route_header(v);
}

TEST(RouteHeader, AbsentValidInvalid) {
  EXPECT_EQ(check({}).status, route_header::state::absent);
  auto h = check({"azureuser"});
  EXPECT_EQ(h.status, route_header::state::valid);
  EXPECT_EQ(h.space, "azureuser");
  EXPECT_EQ(check({""}).status, route_header::state::invalid);
  EXPECT_EQ(check({"azure_user"}).status, route_header::state::invalid);
  EXPECT_EQ(check({"a,b"}).status, route_header::state::invalid);
  EXPECT_EQ(check({"a.b"}).status, route_header::state::invalid);
  EXPECT_EQ(check({std::string_view("x\0y", 3)}).status, route_header::state::invalid);
}

TEST(RouteHeader, LowercasesAndTrims) {
  auto h = check({" \tAzureUser "});
  EXPECT_EQ(h.status, route_header::state::valid);
  EXPECT_EQ(h.space, "azureuser");
}

TEST(RouteHeader, DuplicatesMustAgree) {
  auto same = check({"azureuser", "AZUREUSER"});
  EXPECT_EQ(same.status, route_header::state::valid);
  EXPECT_EQ(same.space, "azureuser");
  EXPECT_EQ(check({"azureuser", "default"}).status, route_header::state::invalid);
  EXPECT_EQ(check({"azureuser", "bad_label"}).status, route_header::state::invalid);
}

TEST(StripPort, Forms) {
  EXPECT_EQ(strip_port("a"), "a");
  EXPECT_EQ(strip_port("a:80"), "a");
  EXPECT_EQ(strip_port(" a.b:8080 "), "a.b");
  EXPECT_EQ(strip_port("[::1]:80"), "[::1]");
  EXPECT_EQ(strip_port("[::1]"), "[::1]");
  EXPECT_EQ(strip_port("::1"), "::1");
  EXPECT_EQ(strip_port("10.0.0.1:80"), "10.0.0.1");
}

TEST(IpLiteral, Detects) {
  EXPECT_TRUE(is_ip_literal("10.0.0.1"));
  EXPECT_TRUE(is_ip_literal("10.0.0.1:80"));
  EXPECT_TRUE(is_ip_literal("[fd00::1]:80"));
  EXPECT_TRUE(is_ip_literal("fd00::1"));
  EXPECT_FALSE(is_ip_literal("serviceb"));
  EXPECT_FALSE(is_ip_literal(""));
  EXPECT_FALSE(is_ip_literal("10.0.0"));
}

TEST(InboundHost, Pattern) {
  EXPECT_EQ(inbound_host_space("azureuser.s.default.servicea.example.io"), "azureuser");
  EXPECT_EQ(inbound_host_space("AzureUser.S.default.servicea.example.io:8080"), "azureuser");
  EXPECT_EQ(inbound_host_space("azureuser.s.x"), "azureuser");
  EXPECT_EQ(inbound_host_space("azureuser.s.x."), "azureuser");
  EXPECT_EQ(inbound_host_space("servicea.example.io"), std::nullopt);
  EXPECT_EQ(inbound_host_space("azureuser.s"), std::nullopt);
  EXPECT_EQ(inbound_host_space("azureuser.s."), std::nullopt);
  EXPECT_EQ(inbound_host_space("azure_user.s.default.io"), std::nullopt);
  EXPECT_EQ(inbound_host_space(".s.default.io"), std::nullopt);
  EXPECT_EQ(inbound_host_space("azureuser.sx.default.io"), std::nullopt);
  EXPECT_EQ(inbound_host_space(""), std::nullopt);
}

TEST(ServiceHost, Shapes) {
  auto p = [](std::string_view h) { return parse_service_host(h, "cluster.local"); };
  auto a = p("serviceb");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->service, "serviceb");
  EXPECT_FALSE(a->ns);

  auto b = p("ServiceB.Default:8080");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->service, "serviceb");
  EXPECT_EQ(b->ns, "default");

  auto c = p("serviceb.default.svc");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->ns, "default");

  auto d = p("serviceb.default.svc.cluster.local.");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->service, "serviceb");
  EXPECT_EQ(d->ns, "default");
}

TEST(ServiceHost, NotClusterServices) {
  auto p = [](std::string_view h) { return parse_service_host(h, "cluster.local"); };
  EXPECT_FALSE(p("10.0.0.7"));
  EXPECT_FALSE(p("10.0.0.7:80"));
  EXPECT_FALSE(p("[fd00::7]:80"));
  EXPECT_FALSE(p(""));
  EXPECT_FALSE(p("serviceb.default.svc.other.local"));
  EXPECT_FALSE(p("serviceb.default.svc.cluster"));
  EXPECT_FALSE(p("serviceb.default.svc.cluster.local.evil"));
  EXPECT_FALSE(p("serviceb.default.pod"));
  EXPECT_FALSE(p("www.example.com"));
  EXPECT_FALSE(p("1service"));
  EXPECT_FALSE(p("service_b"));
  EXPECT_FALSE(p("serviceb..svc"));
}

TEST(ServiceHost, CustomClusterDomain) {
  auto d = parse_service_host("a.b.svc.corp.example", "corp.example");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->service, "a");
  EXPECT_FALSE(parse_service_host("a.b.svc.cluster.local", "corp.example"));
}

TEST(CandidateNames, InChainOrder) {
  std::array<std::string, 3> chain{"azureuser", "default", "root"};
  auto names = candidate_names("serviceb", chain, "cluster.local");
  ASSERT_EQ(names.size(), 3u);
  EXPECT_EQ(names[0], "serviceb.azureuser.svc.cluster.local");
  EXPECT_EQ(names[1], "serviceb.default.svc.cluster.local");
  EXPECT_EQ(names[2], "serviceb.root.svc.cluster.local");
}

// Random Hosts and header values (fixed seed): parsing never fails hard and whatever it returns
// is made of DNS labels.
TEST(NamesRandom, OutputsAreAlwaysLabels) {
  std::mt19937 rng(12345);
  static constexpr char raw[] = "abcAZ09-._:[]% \t\x00\xff";
  const std::string alphabet(raw, sizeof raw - 1);
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 40, ' ');
    for (auto& c : s) c = alphabet[rng() % alphabet.size()];
    if (auto sp = inbound_host_space(s)) {
      EXPECT_TRUE(is_dns_label(*sp)) << s;
    }
    if (auto svc = parse_service_host(s, "cluster.local")) {
      EXPECT_TRUE(is_dns_label(svc->service)) << s;
      if (svc->ns) {
        EXPECT_TRUE(is_dns_label(*svc->ns)) << s;
      }
    }
    std::array<std::string_view, 2> values{s, s};
    auto h = parse_route_header(values);
    if (h.status == route_header::state::valid) {
      EXPECT_TRUE(is_dns_label(h.space)) << s;
    }
    (void)is_ip_literal(s);
  }
}

}  // namespace
}  // namespace devspaces::proxy::routing
