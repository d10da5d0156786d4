// The outbound routing path in process, as main wires it: the real server (two workers, each
// with its own router and c-ares channel), the HTTP session, real loopback origins and a real
// DNS server (tests/proxy/routing/dns_responder.hpp). The "pods" are loopback addresses:
// serviceb.default resolves to 127.0.0.2, the app's original destination is 127.0.0.3.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <future>
#include <thread>

#include "proxy/routing/router.hpp"
#include "proxy/server.hpp"
#include "proxy/trace/hub.hpp"
#include "tests/proxy/routing/dns_responder.hpp"
#include "tests/support/test_support.hpp"

namespace devspaces::proxy {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

// An HTTP origin answering every request with "<name> route-as=<header or ->" and closing.
class named_origin {
 public:
  named_origin(std::string name, const char* address, std::uint16_t port)
      : name_(std::move(name)), acceptor_(io_) {
    tcp::endpoint ep(asio::ip::make_address(address), port);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    asio::co_spawn(io_, accept_loop(), [](std::exception_ptr) {});
    thread_ = std::thread([this] { io_.run(); });
  }
  ~named_origin() {
    io_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto s = co_await acceptor_.async_accept(asio::use_awaitable);
      asio::co_spawn(io_, serve(std::move(s)), [](std::exception_ptr) {});
    }
  }
  asio::awaitable<void> serve(tcp::socket s) {
    asio::streambuf buf;
    co_await asio::async_read_until(s, buf, "\r\n\r\n", asio::use_awaitable);
    std::string head(asio::buffers_begin(buf.data()), asio::buffers_end(buf.data()));
    std::string route = "-";
    if (auto at = head.find("azds-route-as: "); at != std::string::npos) {
      route = head.substr(at + 15, head.find("\r\n", at) - at - 15);
    }
    std::string body = name_ + " route-as=" + route;
    std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\nConnection: close\r\n\r\n" + body;
    co_await asio::async_write(s, asio::buffer(resp), asio::use_awaitable);
  }

  std::string name_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

// One request through the proxy's outbound listener; returns the response body ("" on error).
std::string get(std::uint16_t proxy_port, const std::string& host, const std::string& route_as) {
  asio::io_context io;
  tcp::socket s(io);
  boost::system::error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), proxy_port), ec);
  if (ec) return "";
  std::string req = "GET / HTTP/1.1\r\nHost: " + host + "\r\n";
  if (!route_as.empty()) req += "azds-route-as: " + route_as + "\r\n";
  req += "Connection: close\r\n\r\n";
  asio::write(s, asio::buffer(req), ec);
  std::string resp;
  char buf[4096];
  for (;;) {
    auto n = s.read_some(asio::buffer(buf), ec);
    resp.append(buf, n);
    if (ec) break;
  }
  auto body = resp.find("\r\n\r\n");
  return body == std::string::npos ? "" : resp.substr(body + 4);
}

struct routing_server : ::testing::Test {
  test::dns_server dns{{
      {"serviceb.default.svc.cluster.local", test::a_record("127.0.0.2")},
      {"slow.azureuser.svc.cluster.local",
       [] {
         auto r = test::a_record("127.0.0.2");
         r.delay = 3000ms;
         return r;
       }()},
  }};
  std::unique_ptr<named_origin> original;
  std::unique_ptr<named_origin> routed;
  proxy_metrics metrics;
  std::shared_ptr<config> cfg = std::make_shared<config>();
  std::shared_ptr<routing::space_tree_holder> tree;
  std::unique_ptr<server> srv;
  std::unique_ptr<trace::hub> traces;

  void start(unsigned workers) {
    original = std::make_unique<named_origin>("original", "127.0.0.3", 0);
    routed = std::make_unique<named_origin>("serviceb.default", "127.0.0.2", original->port());
    cfg->workers = workers;
    cfg->outbound_port = 0;
    cfg->inbound_port = 0;
    cfg->space = "azureuser";
    cfg->parent_spaces = {"default"};
    tree = std::make_shared<routing::space_tree_holder>(
        routing::build_space_tree(cfg->space, cfg->parent_spaces, "").tree);
    traces = std::make_unique<trace::hub>(trace::make_hub_options(*cfg), &metrics);
    server_options opts;
    opts.traces = traces.get();
    opts.outbound_addresses = {asio::ip::make_address("127.0.0.1")};
    opts.inbound_addresses = {asio::ip::make_address("127.0.0.1")};
    auto dst = tcp::endpoint(asio::ip::make_address("127.0.0.3"), original->port());
    opts.original_dst = [dst](tcp::socket&, std::error_code&) {
      return std::optional<tcp::endpoint>(dst);
    };
    opts.make_router = [this](asio::any_io_executor ex) -> std::unique_ptr<routing::router> {
      routing::dns_backend_options o;
      o.servers = dns.address();
      std::string err;
      auto backend = routing::make_dns_backend(ex, o, &err);
      if (!backend) return nullptr;
      routing::resolver_options ro;
      ro.timeout = 500ms;
      auto res = std::make_shared<routing::resolver>(ex, std::move(backend), metrics, ro);
      return std::make_unique<routing::router>(ex, cfg, metrics, tree, std::move(res));
    };
    srv = std::make_unique<server>(cfg, metrics, std::move(opts));
    auto err = srv->bind();
    ASSERT_FALSE(err) << *err;
    srv->start();
  }

  void TearDown() override {
    if (srv) srv->stop();
  }
};

TEST_F(routing_server, ParentFallbackAndOriginal) {
  start(2);
  auto port = srv->outbound_port();
  EXPECT_EQ(get(port, "serviceb", "azureuser"), "serviceb.default route-as=azureuser");
  EXPECT_EQ(get(port, "serviceb", ""), "original route-as=-");
  EXPECT_EQ(get(port, "serviceb.default.svc.cluster.local:80", "AzureUser"),
            "serviceb.default route-as=AzureUser");  // forwarded unchanged
  EXPECT_EQ(get(port, "nosuch", "azureuser"), "original route-as=azureuser");
  EXPECT_EQ(get(port, "127.0.0.9", "azureuser"), "original route-as=azureuser");
  EXPECT_EQ(get(port, "serviceb", "not_a_label"), "original route-as=not_a_label");
  EXPECT_EQ(metrics.route_decisions(route_outcome::parent).Value(), 2);
  EXPECT_EQ(metrics.route_decisions(route_outcome::original).Value(), 2);
  EXPECT_EQ(metrics.route_decisions(route_outcome::no_header).Value(), 1);
  EXPECT_EQ(metrics.route_decisions(route_outcome::invalid_header).Value(), 1);
}

TEST_F(routing_server, ManyClientsAcrossWorkers) {
  start(2);
  auto port = srv->outbound_port();
  std::vector<std::future<bool>> clients;
  for (int i = 0; i < 40; ++i) {
    clients.push_back(std::async(std::launch::async, [port, i] {
      bool routed = i % 2 == 0;
      auto body = get(port, "serviceb", routed ? "azureuser" : "");
      return body == (routed ? "serviceb.default route-as=azureuser" : "original route-as=-");
    }));
  }
  int ok = 0;
  for (auto& c : clients) ok += c.get() ? 1 : 0;
  EXPECT_EQ(ok, 40);
  EXPECT_EQ(metrics.route_decisions(route_outcome::parent).Value(), 20);
}

TEST_F(routing_server, SlowDnsDoesNotStallOtherRequests) {
  start(1);  // one loop: the slow lookup and the fast request share it
  auto port = srv->outbound_port();
  auto slow = std::async(std::launch::async, [port] { return get(port, "slow", "azureuser"); });
  ASSERT_TRUE(test::wait_for([&] { return dns.queries("slow.azureuser.svc.cluster.local") > 0; }));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(get(port, "serviceb", "azureuser"), "serviceb.default route-as=azureuser");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 400ms);
  // The slow candidate times out (500 ms); the parent level, asked at the same time, has no
  // record either, so the request goes to the original destination.
  EXPECT_EQ(slow.get(), "original route-as=azureuser");
}

TEST_F(routing_server, SlowClientIsStillRoutedAndTraced) {
  // The client connects, waits 500 ms (well past the 100 ms sniff window; the proxy has
  // connected to the original destination meanwhile, which stays silent), then sends a routed
  // request: it is parsed, routed to the parent space's service and traced like any other.
  start(1);
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), srv->outbound_port()));
  std::this_thread::sleep_for(500ms);  // the scenario under test: a client slow to speak
  const std::string req =
      "GET /late HTTP/1.1\r\nHost: serviceb\r\nazds-route-as: azureuser\r\n"
      "Connection: close\r\n\r\n";
  asio::write(s, asio::buffer(req));
  std::string resp;
  boost::system::error_code ec;
  char buf[4096];
  while (!ec) {
    auto n = s.read_some(asio::buffer(buf), ec);
    resp.append(buf, n);
  }
  EXPECT_NE(resp.find("\r\n\r\nserviceb.default route-as=azureuser"), std::string::npos) << resp;
  EXPECT_EQ(metrics.route_decisions(route_outcome::parent).Value(), 1);
  EXPECT_EQ(metrics.connections(direction::outbound, protocol::http).Value(), 1);
  ASSERT_TRUE(test::wait_for([&] { return traces->recorded() == 1; }));
  const auto json = traces->last(1)[0].json->text();
  EXPECT_NE(json.find(R"("target":"/late")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("route_as":"azureuser")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("decision":"parent")"), std::string::npos) << json;
}

}  // namespace
}  // namespace devspaces::proxy
