// The session with the real router: inbound header insertion and per-request outbound routing
// on one keep-alive connection (names resolved through a hosts file to loopback addresses).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include "proxy/routing/resolver.hpp"
#include "proxy/routing/router.hpp"
#include "proxy/routing/space_tree.hpp"
#include "tests/proxy/http/http_fixture.hpp"
#include "tests/support/test_support.hpp"

namespace devspaces::test::http {
namespace {

// A listener on 127.0.0.<last>:port (port 0: any).
fd_guard listen_on(int last, std::uint16_t& port) {
  fd_guard s(::socket(AF_INET, SOCK_STREAM, 0));
  int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(0x7f000000u | static_cast<std::uint32_t>(last));
  a.sin_port = htons(port);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return fd_guard{};
  ::listen(s.get(), 16);
  socklen_t len = sizeof a;
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return s;
}

struct routed_env {
  std::string hosts_path;
  proxy::config cfg;
  std::unique_ptr<proxy_harness> proxy;
  std::shared_ptr<proxy::routing::router> router;

  explicit routed_env(proxy::direction dir, const std::string& hosts,
                      std::shared_ptr<proxy::routing::route_memory> memory = nullptr) {
    hosts_path =
        std::string(::testing::TempDir()) + "/session_routing_hosts_" + std::to_string(::getpid());
    std::ofstream(hosts_path) << hosts;
    cfg.space = "azureuser";
    cfg.parent_spaces = {"default"};
    cfg.resolver = "hosts:" + hosts_path;
    cfg.header_timeout = std::chrono::seconds(3);
    proxy = std::make_unique<proxy_harness>(cfg, dir);
    auto shared_cfg = std::make_shared<const proxy::config>(cfg);
    auto tree = proxy::routing::build_space_tree(cfg.space, cfg.parent_spaces, "");
    EXPECT_TRUE(tree.tree) << tree.error;
    auto holder = std::make_shared<const proxy::routing::space_tree_holder>(tree.tree);
    std::string err;
    auto res =
        proxy::routing::make_resolver(proxy->ioc().get_executor(), cfg, proxy->metrics(), &err);
    EXPECT_TRUE(res) << err;
    router = std::make_shared<proxy::routing::router>(proxy->ioc().get_executor(), shared_cfg,
                                                      proxy->metrics(), holder, res, memory);
    proxy->set_router(router.get());
  }
  ~routed_env() {
    proxy.reset();
    std::remove(hosts_path.c_str());
  }
};

TEST(session_routing, inbound_inserts_route_header_from_host_and_keeps_existing) {
  routed_env e(proxy::direction::inbound, "");
  std::uint16_t port = 0;
  auto app = listen_on(1, port);
  e.proxy->set_upstream(port);
  auto c = connect_loopback(e.proxy->port());
  ASSERT_TRUE(send_all(c.get(),
                       "GET / HTTP/1.1\r\nHost: AzureUser.s.default.servicea.example.io:80"
                       "\r\nAccept: */*\r\n\r\n"));
  auto u = accept_within(app.get());
  ASSERT_TRUE(u);
  EXPECT_EQ(recv_head(u.get()),
            "GET / HTTP/1.1\r\nHost: AzureUser.s.default.servicea.example.io:80\r\nAccept: "
            "*/*\r\nazds-route-as: azureuser\r\n\r\n");
  ASSERT_TRUE(send_all(u.get(), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
  recv_head(c.get());
  // Same connection, header already there: forwarded untouched.
  const std::string kept = "GET /2 HTTP/1.1\r\nHost: azureuser.s.x\r\nAzds-Route-As: other\r\n\r\n";
  ASSERT_TRUE(send_all(c.get(), kept));
  EXPECT_EQ(recv_head(u.get()), kept);
  ASSERT_TRUE(send_all(u.get(), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
  recv_head(c.get());
  EXPECT_TRUE(wait_for([&] { return e.proxy->hub().recorded() == 2; }));
  auto recs = e.proxy->hub().last(2);
  EXPECT_NE(recs[0].json->text().find("\"route_as_source\":\"host\""), std::string::npos)
      << recs[0].json->text();
}

TEST(session_routing, outbound_routes_each_request_on_one_keep_alive_connection) {
  // servicea exists in azureuser (127.0.0.2) and default (127.0.0.3); serviceb only in default.
  std::uint16_t port = 0;
  auto own = listen_on(2, port);
  ASSERT_TRUE(own);
  auto parent = listen_on(3, port);
  auto original = listen_on(1, port);
  ASSERT_TRUE(parent && original) << "port " << port << " busy on another loopback address";
  routed_env e(proxy::direction::outbound,
               "127.0.0.2 servicea.azureuser.svc.cluster.local\n"
               "127.0.0.3 servicea.default.svc.cluster.local\n"
               "127.0.0.3 serviceb.default.svc.cluster.local\n");
  e.proxy->set_upstream(port);
  auto c = connect_loopback(e.proxy->port());
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  struct step {
    std::string request;
    int listener;  // 2 own, 3 parent, 1 original
  };
  const std::vector<step> steps = {
      {"GET /1 HTTP/1.1\r\nHost: servicea\r\nazds-route-as: azureuser\r\n\r\n", 2},
      {"GET /2 HTTP/1.1\r\nHost: serviceb\r\nazds-route-as: azureuser\r\n\r\n", 3},
      {"GET /3 HTTP/1.1\r\nHost: servicea\r\n\r\n", 1},
      {"GET /4 HTTP/1.1\r\nHost: servicea\r\nazds-route-as: default\r\n\r\n", 3},
      {"GET /5 HTTP/1.1\r\nHost: servicea\r\nazds-route-as: Bad_Name\r\n\r\n", 1},
  };
  std::map<int, fd_guard> conns;
  for (const auto& s : steps) {
    SCOPED_TRACE(s.request);
    ASSERT_TRUE(send_all(c.get(), s.request));
    int l = s.listener == 2 ? own.get() : s.listener == 3 ? parent.get() : original.get();
    if (!conns.count(s.listener) || !wait_fd(conns[s.listener].get(), POLLIN, 2000ms)) {
      auto u = accept_within(l);
      ASSERT_TRUE(u);
      conns[s.listener] = std::move(u);
    }
    EXPECT_EQ(recv_head(conns[s.listener].get()), s.request);
    ASSERT_TRUE(send_all(conns[s.listener].get(), ok));
    EXPECT_EQ(recv_n(c.get(), ok.size()), ok);
  }
  EXPECT_TRUE(wait_for([&] { return e.proxy->hub().recorded() == steps.size(); }));
  auto recs = e.proxy->hub().last(steps.size());
  EXPECT_NE(recs[1].json->text().find("\"decision\":\"parent\""), std::string::npos)
      << recs[1].json->text();
  EXPECT_NE(recs[1].json->text().find("127.0.0.3:"), std::string::npos) << recs[1].json->text();
}

// Routing reads the authority the origin will use: an absolute-form target wins over Host, and
// Host is rewritten to agree with it.
TEST(session_routing, outbound_routes_by_the_absolute_form_authority_not_by_host) {
  std::uint16_t port = 0;
  auto own = listen_on(2, port);
  ASSERT_TRUE(own);
  auto original = listen_on(1, port);
  ASSERT_TRUE(original) << "port " << port << " busy on another loopback address";
  routed_env e(proxy::direction::outbound, "127.0.0.2 servicea.azureuser.svc.cluster.local\n");
  e.proxy->set_upstream(port);
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  {
    // An IP-literal target with a service name in Host: not routed by the service name.
    auto c = connect_loopback(e.proxy->port());
    ASSERT_TRUE(send_all(c.get(),
                         "GET http://10.1.2.3/x HTTP/1.1\r\nHost: servicea\r\n"
                         "azds-route-as: azureuser\r\n\r\n"));
    auto u = accept_within(original.get());
    ASSERT_TRUE(u);
    EXPECT_EQ(
        recv_head(u.get()),
        "GET http://10.1.2.3/x HTTP/1.1\r\nHost: 10.1.2.3\r\nazds-route-as: azureuser\r\n\r\n");
    ASSERT_TRUE(send_all(u.get(), ok));
    EXPECT_EQ(recv_n(c.get(), ok.size()), ok);
  }
  {
    // The service name in the target routes, whatever Host says.
    auto c = connect_loopback(e.proxy->port());
    ASSERT_TRUE(send_all(c.get(),
                         "GET http://servicea/y HTTP/1.1\r\nHost: 10.1.2.3\r\n"
                         "azds-route-as: azureuser\r\n\r\n"));
    auto u = accept_within(own.get());
    ASSERT_TRUE(u);
    EXPECT_EQ(
        recv_head(u.get()),
        "GET http://servicea/y HTTP/1.1\r\nHost: servicea\r\nazds-route-as: azureuser\r\n\r\n");
    ASSERT_TRUE(send_all(u.get(), ok));
    EXPECT_EQ(recv_n(c.get(), ok.size()), ok);
  }
}

}  // namespace
}  // namespace devspaces::test::http

namespace devspaces::test::http {
namespace {

TEST(session_routing, outbound_other_carriers_and_route_memory_add_the_route_header) {
  std::uint16_t port = 0;
  auto parent = listen_on(3, port);
  auto original = listen_on(1, port);
  ASSERT_TRUE(parent && original) << "port " << port << " busy on another loopback address";
  auto memory = std::make_shared<proxy::routing::route_memory>(std::chrono::seconds(60));
  // What an inbound exchange of this trace left behind.
  memory->store(
      *proxy::routing::parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
      "azureuser");
  routed_env e(proxy::direction::outbound, "127.0.0.3 serviceb.default.svc.cluster.local\n",
               memory);
  e.proxy->set_upstream(port);
  auto c = connect_loopback(e.proxy->port());
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  struct step {
    std::string request;
    std::string forwarded;
    int listener;
  };
  const std::string tp = "traceparent: 00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01\r\n";
  const std::vector<step> steps = {
      {"GET /1 HTTP/1.1\r\nHost: serviceb\r\nbaggage: a=1, azds-route-as=azureuser\r\n\r\n",
       "GET /1 HTTP/1.1\r\nHost: serviceb\r\nbaggage: a=1, azds-route-as=azureuser\r\n"
       "azds-route-as: azureuser\r\n\r\n",
       3},
      {"GET /2 HTTP/1.1\r\nHost: serviceb\r\n" + tp + "\r\n",
       "GET /2 HTTP/1.1\r\nHost: serviceb\r\n" + tp + "azds-route-as: azureuser\r\n\r\n", 3},
      {"GET /3 HTTP/1.1\r\nHost: serviceb\r\n"
       "traceparent: 00-22222222222222222222222222222222-00f067aa0ba902b7-01\r\n\r\n",
       "GET /3 HTTP/1.1\r\nHost: serviceb\r\n"
       "traceparent: 00-22222222222222222222222222222222-00f067aa0ba902b7-01\r\n\r\n",
       1},
  };
  std::map<int, fd_guard> conns;
  for (const auto& s : steps) {
    SCOPED_TRACE(s.request);
    ASSERT_TRUE(send_all(c.get(), s.request));
    int l = s.listener == 3 ? parent.get() : original.get();
    if (!conns.count(s.listener) || !wait_fd(conns[s.listener].get(), POLLIN, 2000ms)) {
      auto u = accept_within(l);
      ASSERT_TRUE(u);
      conns[s.listener] = std::move(u);
    }
    EXPECT_EQ(recv_head(conns[s.listener].get()), s.forwarded);
    ASSERT_TRUE(send_all(conns[s.listener].get(), ok));
    EXPECT_EQ(recv_n(c.get(), ok.size()), ok);
  }
  EXPECT_TRUE(wait_for([&] { return e.proxy->hub().recorded() == steps.size(); }));
  auto recs = e.proxy->hub().last(steps.size());
  EXPECT_NE(recs[0].json->text().find("\"route_as_source\":\"baggage\""), std::string::npos)
      << recs[0].json->text();
  EXPECT_NE(recs[1].json->text().find("\"route_as_source\":\"memory\""), std::string::npos)
      << recs[1].json->text();
  EXPECT_NE(recs[1].json->text().find("\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\""),
            std::string::npos);
  EXPECT_NE(recs[2].json->text().find("\"trace_id\":\"22222222222222222222222222222222\""),
            std::string::npos);
  EXPECT_EQ(e.proxy->metrics().route_memory(proxy::memory_result::hit).Value(), 1);
  EXPECT_EQ(e.proxy->metrics().route_memory(proxy::memory_result::miss).Value(), 1);
}

}  // namespace
}  // namespace devspaces::test::http
