// The admin server over real HTTP on loopback: /metrics, /healthz, /readyz, /config, 404.

#include "proxy/admin/admin_server.hpp"

#include <boost/json.hpp>

#include "tests/integration/tcp_harness.hpp"

namespace devspaces::test {
namespace {

using namespace std::chrono_literals;

struct http_answer {
  int status = 0;
  std::string head;
  std::string body;
};

/// One GET with HTTP/1.0 semantics (the server closes after answering).
http_answer get(std::uint16_t port, const std::string& path) {
  auto c = connect_to(port);
  c.send_all("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  auto all = c.read_until_eof().data;
  http_answer a;
  auto end = all.find("\r\n\r\n");
  if (end == std::string::npos || all.size() < 12) return a;
  a.head = all.substr(0, end);
  a.body = all.substr(end + 4);
  a.status = std::stoi(all.substr(9, 3));
  return a;
}

struct admin_fixture : ::testing::Test {
  proxy_under_test proxy;
  std::atomic<bool> ready{true};
  std::unique_ptr<proxy::admin::admin_server> admin;

  void SetUp() override {
    proxy::admin::admin_hooks hooks;
    hooks.ready = [this] { return ready.load() && !proxy.server().draining(); };
    hooks.ping = [this] { return proxy.server().ping(); };
    hooks.config_json = [] { return std::string(R"({"config":{"workers":2},"space_tree":null})"); };
    admin = std::make_unique<proxy::admin::admin_server>(proxy.metrics(), hooks);
    auto err = admin->bind("127.0.0.1", 0);
    ASSERT_FALSE(err) << *err;
    admin->start();
  }
  void TearDown() override { admin->stop(); }
};

TEST_F(admin_fixture, metrics_is_prometheus_text_with_every_family) {
  auto a = get(admin->port(), "/metrics");
  EXPECT_EQ(a.status, 200);
  EXPECT_NE(a.head.find("text/plain; version=0.0.4"), std::string::npos);
  for (const char* needle :
       {"devspaces_proxy_connections_total{direction=\"outbound\",protocol=\"tcp\"} 0",
        "devspaces_proxy_connections_active{direction=\"inbound\"} 0",
        "devspaces_proxy_bytes_total{direction=\"outbound\",flow=\"rx\"} 0",
        "devspaces_proxy_upstream_connect_failures_total{direction=\"outbound\",reason=\"refused\"}"
        " 0",
        "process_open_fds", "process_resident_memory_bytes", "process_cpu_seconds_total"})
    EXPECT_NE(a.body.find(needle), std::string::npos) << needle;
}

TEST_F(admin_fixture, metrics_reflect_relayed_traffic) {
  upstream_server up([](fd_socket& s, const sockaddr_in&) { s.send_all(s.read_until_eof().data); });
  proxy.set_target(up.endpoint());
  {
    auto c = connect_to(proxy.outbound_port());
    c.send_all("0123456789");
    c.shutdown_send();
    EXPECT_EQ(c.read_until_eof().data, "0123456789");
  }
  ASSERT_TRUE(proxy.wait_idle());
  auto body = get(admin->port(), "/metrics").body;
  EXPECT_NE(
      body.find("devspaces_proxy_connections_total{direction=\"outbound\",protocol=\"tcp\"} 1"),
      std::string::npos);
  EXPECT_NE(body.find("devspaces_proxy_bytes_total{direction=\"outbound\",flow=\"rx\"} 10"),
            std::string::npos);
  EXPECT_NE(body.find("devspaces_proxy_bytes_total{direction=\"outbound\",flow=\"tx\"} 10"),
            std::string::npos);
}

TEST_F(admin_fixture, healthz_answers_while_workers_run) {
  EXPECT_EQ(get(admin->port(), "/healthz").status, 200);
  proxy.server().stop();  // no loop answers any more
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(get(admin->port(), "/healthz").status, 503);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 900ms);
}

TEST_F(admin_fixture, readyz_follows_readiness_and_drain) {
  EXPECT_EQ(get(admin->port(), "/readyz").status, 200);
  ready = false;
  EXPECT_EQ(get(admin->port(), "/readyz").status, 503);
  ready = true;
  proxy.server().drain();
  EXPECT_EQ(get(admin->port(), "/readyz").status, 503);
}

TEST_F(admin_fixture, config_is_json_and_unknown_paths_404) {
  auto a = get(admin->port(), "/config");
  EXPECT_EQ(a.status, 200);
  auto v = boost::json::parse(a.body);
  EXPECT_EQ(v.at("config").at("workers").as_int64(), 2);
  auto nf = get(admin->port(), "/nope");
  EXPECT_EQ(nf.status, 404);
  EXPECT_NE(nf.body.find("devspaces-proxy"), std::string::npos);
}

TEST_F(admin_fixture, keep_alive_serves_several_requests_on_one_connection) {
  auto c = connect_to(admin->port());
  c.send_all("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string all;
  ASSERT_TRUE(wait_for([&] {
    char buf[4096];
    ssize_t n = ::recv(c.fd(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) all.append(buf, static_cast<std::size_t>(n));
    return all.find("ready\n") != std::string::npos && all.find("ok\n") != std::string::npos;
  }));
}

/// The value of one sample line of /metrics (`name{labels}`), or -1 when it is missing.
double scrape(std::uint16_t admin_port, const std::string& sample) {
  const auto text = get(admin_port, "/metrics").body;
  const auto at = text.find(sample + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + sample.size() + 1));
}

TEST_F(admin_fixture, bytes_total_rises_during_an_open_keep_alive_exchange) {
  // Through the listener, the sniff window and the HTTP session: the 200000-byte body and its
  // head are in bytes_total{rx} to the byte while the exchange is still open, and the response
  // is in {tx} while the keep-alive connection stays open.
  std::atomic<bool> body_in{false};
  std::atomic<bool> answer{false};
  const std::string head = "POST /up HTTP/1.1\r\nHost: svc\r\nContent-Length: 200000\r\n\r\n";
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  upstream_server up([&](fd_socket& s, const sockaddr_in&) {
    if (s.read_exact(head.size() + 200000).size() != head.size() + 200000) return;
    body_in = true;
    if (!wait_for([&] { return answer.load(); })) return;
    s.send_all(ok);
    s.read_until_eof();
  });
  proxy.set_target(up.endpoint());
  auto c = connect_to(proxy.outbound_port());
  ASSERT_TRUE(c.send_all(head + std::string(200000, 'x')));
  ASSERT_TRUE(wait_for([&] { return body_in.load(); }));
  const std::string rx = R"(devspaces_proxy_bytes_total{direction="outbound",flow="rx"})";
  const std::string tx = R"(devspaces_proxy_bytes_total{direction="outbound",flow="tx"})";
  EXPECT_EQ(scrape(admin->port(), rx), static_cast<double>(head.size() + 200000));
  EXPECT_EQ(scrape(admin->port(), tx), 0);
  answer = true;
  EXPECT_EQ(c.read_exact(ok.size()), ok);
  EXPECT_TRUE(
      wait_for([&] { return scrape(admin->port(), tx) == static_cast<double>(ok.size()); }));
  EXPECT_EQ(proxy.server().active_connections(), 1u);  // still the open keep-alive connection
}

}  // namespace
}  // namespace devspaces::test
