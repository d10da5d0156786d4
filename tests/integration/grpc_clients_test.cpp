// Python gRPC (Debian python3-grpcio) on both sides of the proxy's HTTP/2 path, on loopback:
// unary, server/client streaming, bidi, a 16 MiB message, deadline and cancellation, and 100
// concurrent calls on one connection routed to three places by their route metadata.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "proxy/routing/resolver.hpp"
#include "proxy/routing/space_tree.hpp"
#include "tests/proxy/h2/h2_harness.hpp"
#include "tests/support/test_support.hpp"

namespace devspaces::test::h2 {
namespace {

using devspaces::test::http::wait_fd;

/// tests/integration/grpc_upstream.py as a child; exits when its stdin closes.
class grpc_servers {
 public:
  explicit grpc_servers(const std::vector<std::string>& args) {
    int in[2], out[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::close(in[1]);
      ::close(out[0]);
      const std::string script = source_path("tests/integration/grpc_upstream.py");
      std::vector<char*> argv{const_cast<char*>("/usr/bin/python3"),
                              const_cast<char*>(script.c_str())};
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv("/usr/bin/python3", argv.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    stdin_.reset(in[1]);
    stdout_.reset(out[0]);
    std::string line;
    while (line.find('\n') == std::string::npos && wait_fd(stdout_.get(), POLLIN, 20s)) {
      char buf[64];
      const auto n = ::read(stdout_.get(), buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<std::size_t>(n));
    }
    port_ = static_cast<std::uint16_t>(std::atoi(line.c_str()));
  }
  ~grpc_servers() {
    stdin_.reset();
    if (pid_ > 0 && !wait_for([&] { return ::waitpid(pid_, nullptr, WNOHANG) == pid_; }, 5s)) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  std::uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  fd_guard stdin_;
  fd_guard stdout_;
  std::uint16_t port_ = 0;
};

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(("timeout 120 " + cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

std::string client(std::uint16_t proxy_port, const std::string& scenario) {
  return run("/usr/bin/python3 " + source_path("tests/integration/grpc_client.py") +
             " 127.0.0.1:" + std::to_string(proxy_port) + " serviceb " + scenario);
}

bool has(const std::string& out, const std::string& s) {
  return out.find(s) != std::string::npos;
}

// Servers: the original destination 127.0.0.1, serviceb in default (127.0.0.2) and in
// azureuser (127.0.0.3), one port; the proxy is azureuser's outbound side with a router.
struct routed {
  grpc_servers servers{{"orig=127.0.0.1:0", "default=127.0.0.2:same", "azureuser=127.0.0.3:same"}};
  std::string hosts =
      std::string(::testing::TempDir()) + "/grpc_hosts_" + std::to_string(::getpid());
  proxy::config cfg;
  std::unique_ptr<harness> h;
  std::unique_ptr<proxy::routing::router> router;

  routed() {
    std::ofstream(hosts) << "127.0.0.2 serviceb.default.svc.cluster.local\n"
                            "127.0.0.3 serviceb.azureuser.svc.cluster.local\n";
    cfg.space = "azureuser";
    cfg.parent_spaces = {"default"};
    cfg.resolver = "hosts:" + hosts;
    h = std::make_unique<harness>(cfg, proxy::direction::outbound);
    h->set_upstream("127.0.0.1", servers.port());
    auto tree = proxy::routing::build_space_tree(cfg.space, cfg.parent_spaces, "");
    std::string err;
    auto res = proxy::routing::make_resolver(h->ioc().get_executor(), cfg, h->metrics(), &err);
    router = std::make_unique<proxy::routing::router>(
        h->ioc().get_executor(), std::make_shared<const proxy::config>(cfg), h->metrics(),
        std::make_shared<const proxy::routing::space_tree_holder>(tree.tree), res);
    h->set_router(router.get());
  }
  ~routed() {
    h.reset();
    std::remove(hosts.c_str());
  }
};

TEST(grpc_clients, every_call_shape_passes_through) {
  routed e;
  ASSERT_NE(e.servers.port(), 0);
  const auto out = client(e.h->port(), "calls");
  EXPECT_TRUE(has(out, "\"unary\": \"ping\"")) << out;
  EXPECT_TRUE(has(out, "\"unary_served_by\": \"azureuser\"")) << out;  // own space
  EXPECT_TRUE(has(out, "\"unary_route_as\": \"azureuser\"")) << out;
  EXPECT_TRUE(has(out, "\"server_stream\": [\"0\", \"1\", \"2\", \"3\", \"4\"]")) << out;
  EXPECT_TRUE(has(out, "\"client_stream\": \"60\"")) << out;
  EXPECT_TRUE(has(out, "\"bidi\": [\"x\", \"yy\", \"zzz\"]")) << out;
  EXPECT_TRUE(has(out, "\"big_ok\": true")) << out;
  EXPECT_TRUE(has(out, "\"deadline\": \"DEADLINE_EXCEEDED\"")) << out;
  EXPECT_TRUE(has(out, "\"cancelled\": true")) << out;
  EXPECT_TRUE(has(out, "\"server_saw_cancels\": 2")) << out;
  // One record per call, with the gRPC status among the response trailers.
  ASSERT_TRUE(wait_for([&] { return e.h->hub().recorded() >= 8; }));
  std::string all;
  for (const auto& r : e.h->hub().last(20)) all += r.json->text() + "\n";
  EXPECT_TRUE(has(all, "\"target\":\"/test.Echo/Chat\"")) << all;
  EXPECT_TRUE(has(all, "[\"grpc-status\",\"0\"]")) << all;
  EXPECT_TRUE(has(all, "\"protocol\":\"h2\"")) << all;
  EXPECT_TRUE(has(all, "\"decision\":\"own\"")) << all;
}

TEST(grpc_clients, hundred_concurrent_calls_on_one_connection_reach_three_places) {
  routed e;
  ASSERT_NE(e.servers.port(), 0);
  const auto out = client(e.h->port(), "spaces");
  EXPECT_TRUE(has(out, "\"azureuser->azureuser\": 34")) << out;
  EXPECT_TRUE(has(out, "\"default->default\": 33")) << out;
  EXPECT_TRUE(has(out, "\"none->orig\": 33")) << out;
  EXPECT_EQ(e.h->accepted(), 1u);
  ASSERT_TRUE(wait_for([&] { return e.h->hub().recorded() == 100; }));
  EXPECT_EQ(e.h->metrics()
                .http_requests(proxy::direction::outbound, proxy::method_index("POST"),
                               proxy::code_class::c2xx)
                .Value(),
            100);
  // Decisions are relative to the carried space: serviceb exists in azureuser and in default,
  // so both are "own".
  EXPECT_EQ(e.h->metrics().route_decisions(proxy::route_outcome::own).Value(), 67);
  EXPECT_EQ(e.h->metrics().route_decisions(proxy::route_outcome::no_header).Value(), 33);
}

TEST(grpc_clients, unreachable_upstream_is_unavailable_naming_the_proxy) {
  std::uint16_t closed = 0;
  { auto l = devspaces::test::http::listen_loopback(closed); }
  harness h;
  h.set_upstream("127.0.0.1", closed);
  const auto out =
      run("/usr/bin/python3 -c \"import grpc\n"
          "ch = grpc.insecure_channel('127.0.0.1:" +
          std::to_string(h.port()) +
          "')\n"
          "try:\n"
          "  ch.unary_unary('/test.Echo/Echo')(b'x', timeout=10)\n"
          "except grpc.RpcError as e:\n"
          "  print(e.code().name, e.details())\"");
  EXPECT_TRUE(has(out, "UNAVAILABLE devspaces-proxy")) << out;
}

// curl and nghttp (real HTTP/2 clients with prior knowledge) against the gRPC server.
TEST(h2_clients, curl_and_nghttp_with_prior_knowledge) {
  grpc_servers servers({"orig=127.0.0.1:0"});
  ASSERT_NE(servers.port(), 0);
  harness h;
  h.set_upstream("127.0.0.1", servers.port());
  const std::string body =
      std::string(::testing::TempDir()) + "/h2_body_" + std::to_string(::getpid());
  std::ofstream(body, std::ios::binary) << std::string("\0\0\0\0\4ping", 9);
  const std::string url = "http://127.0.0.1:" + std::to_string(h.port()) + "/test.Echo/Echo";
  const auto curl =
      run("curl -sS --http2-prior-knowledge -o - -w '\\n%{http_version} %{http_code}' "
          "-H 'content-type: application/grpc' -H 'te: trailers' --data-binary @" +
          body + " " + url + " | tr -d '\\000\\004'");
  EXPECT_TRUE(has(curl, "ping")) << curl;
  EXPECT_TRUE(has(curl, "\n2 200")) << curl;
  const auto nghttp =
      run("nghttp -v -d " + body + " -H 'content-type: application/grpc' -H 'te: trailers' " + url);
  EXPECT_TRUE(has(nghttp, ":status: 200")) << nghttp;
  EXPECT_TRUE(has(nghttp, "grpc-status: 0")) << nghttp;  // the trailers came through
  // Twenty streams on one nghttp connection.
  const auto many = run("nghttp -n -s -m 20 -d " + body +
                        " -H 'content-type: application/grpc' -H 'te: trailers' " + url);
  std::size_t answered = 0;
  for (auto p = many.find(" 200 "); p != std::string::npos; p = many.find(" 200 ", p + 1)) {
    ++answered;
  }
  EXPECT_EQ(answered, 20u) << many;
  ASSERT_TRUE(wait_for([&] { return h.hub().recorded() == 22; }));
  EXPECT_EQ(h.metrics()
                .http_requests(proxy::direction::outbound, proxy::method_index("POST"),
                               proxy::code_class::c2xx)
                .Value(),
            22);
  std::remove(body.c_str());
}

}  // namespace
}  // namespace devspaces::test::h2
