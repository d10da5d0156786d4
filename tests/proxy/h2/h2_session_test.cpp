// The proxy's HTTP/2 side driven by nghttp2 peers on both sides over loopback: per-stream
// relay with trailers, resets both ways, errors as 502 / gRPC UNAVAILABLE, flow control
// bounded by the windows, GOAWAY on drain, per-stream trace records and metrics.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <fstream>

#include "proxy/routing/resolver.hpp"
#include "proxy/routing/space_tree.hpp"
#include "tests/proxy/h2/h2_harness.hpp"
#include "tests/support/test_support.hpp"

namespace devspaces::test::h2 {
namespace {

using devspaces::test::http::wait_fd;

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

// An upstream HTTP/2 server: accepts the proxy's connections and answers with `on_request`.
struct upstream {
  fd_guard listener;
  std::uint16_t port = 0;
  std::vector<std::unique_ptr<peer>> conns;
  bool auto_window = true;
  std::function<void(peer&, std::int32_t, stream_state&)> on_request;

  explicit upstream(int last = 1, std::uint16_t want_port = 0) {
    port = want_port;
    listener = listen_on(last, port);
  }
  void step() {
    if (wait_fd(listener.get(), POLLIN, std::chrono::milliseconds(0))) {
      const int fd = ::accept(listener.get(), nullptr, nullptr);
      if (fd >= 0) {
        conns.push_back(std::make_unique<peer>(peer::kind::server, fd, auto_window));
        auto* p = conns.back().get();
        p->on_request = [this, p](std::int32_t id, stream_state& s) {
          if (on_request) on_request(*p, id, s);
        };
      }
    }
    for (auto& c : conns) c->pump(std::chrono::milliseconds(1));
  }
  peer& only() { return *conns.at(0); }
};

// Echo: status 200, the request body back, a trailer naming the path.
void echo(peer& p, std::int32_t id, stream_state& s) {
  p.respond(id, {{":status", "200"}, {"content-type", "text/plain"}}, s.body,
            {{"x-path", field(s.head, ":path")}, {"x-route", field(s.head, "azds-route-as")}});
}

bool run_until(const std::function<bool()>& cond, peer& client, std::vector<upstream*> ups,
               std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    client.pump(std::chrono::milliseconds(1));
    for (auto* u : ups) u->step();
  }
  return true;
}

fields get(const std::string& path, const std::string& authority = "svc") {
  return {{":method", "GET"}, {":scheme", "http"}, {":authority", authority}, {":path", path}};
}

fields post(const std::string& path, const std::string& content_type = "text/plain") {
  return {{":method", "POST"},
          {":scheme", "http"},
          {":authority", "svc"},
          {":path", path},
          {"content-type", content_type}};
}

TEST(h2_session, relays_streams_with_bodies_and_trailers_both_ways) {
  harness h;
  upstream u;
  u.on_request = echo;
  h.set_upstream("127.0.0.1", u.port);
  peer c(peer::kind::client, h.connect_client());
  const auto a = c.request(post("/a"), "hello", {{"x-req-trailer", "t1"}});
  const auto b = c.request(get("/b"));
  ASSERT_TRUE(run_until([&] { return c.streams[a].closed && c.streams[b].closed; }, c, {&u}));
  EXPECT_EQ(field(c.streams[a].head, ":status"), "200");
  EXPECT_EQ(c.streams[a].body, "hello");
  EXPECT_EQ(field(c.streams[a].trailers, "x-path"), "/a");
  EXPECT_EQ(c.streams[a].close_code, 0u);
  EXPECT_EQ(field(c.streams[b].trailers, "x-path"), "/b");
  // The upstream saw the request trailer and one connection for both streams.
  ASSERT_EQ(u.conns.size(), 1u);
  bool saw_trailer = false;
  for (auto& [id, s] : u.only().streams) saw_trailer |= field(s.trailers, "x-req-trailer") == "t1";
  EXPECT_TRUE(saw_trailer);
  // One record per stream, counted.
  ASSERT_TRUE(wait_for([&] { return h.hub().recorded() == 2; }));
  const auto recs = h.hub().last(2);
  std::string all = recs[0].json->text() + "\n" + recs[1].json->text();
  EXPECT_NE(all.find("\"protocol\":\"h2\""), std::string::npos) << all;
  EXPECT_NE(all.find("\"stream_id\":" + std::to_string(a)), std::string::npos) << all;
  EXPECT_NE(all.find("\"target\":\"/a\""), std::string::npos) << all;
  EXPECT_NE(all.find("\"host\":\"svc\""), std::string::npos) << all;
  EXPECT_NE(all.find("\"trailers\":[[\"x-path\",\"/a\"]"), std::string::npos) << all;
  EXPECT_NE(all.find("\"body\":\"hello\""), std::string::npos) << all;
  EXPECT_EQ(h.metrics()
                .http_requests(proxy::direction::outbound, proxy::method_index("POST"),
                               proxy::code_class::c2xx)
                .Value(),
            1);
  EXPECT_EQ(h.metrics()
                .http_requests(proxy::direction::outbound, proxy::method_index("GET"),
                               proxy::code_class::c2xx)
                .Value(),
            1);
}

TEST(h2_session, refused_stream_is_sent_again_once_on_another_connection) {
  harness h;
  upstream u;
  int refusals = 0;
  u.on_request = [&](peer& p, std::int32_t id, stream_state& s) {
    if (&p == u.conns.front().get()) {  // the first connection refuses (not processed)
      ++refusals;
      p.reset(id, NGHTTP2_REFUSED_STREAM);
      return;
    }
    echo(p, id, s);
  };
  h.set_upstream("127.0.0.1", u.port);
  peer c(peer::kind::client, h.connect_client());
  const auto a = c.request(post("/again"), "payload", {{"x-req-trailer", "t1"}});
  ASSERT_TRUE(run_until([&] { return c.streams[a].closed; }, c, {&u}));
  EXPECT_EQ(refusals, 1);
  EXPECT_EQ(field(c.streams[a].head, ":status"), "200");
  EXPECT_EQ(c.streams[a].body, "payload");  // the body went again, whole
  EXPECT_EQ(field(c.streams[a].trailers, "x-path"), "/again");
  EXPECT_EQ(c.streams[a].close_code, 0u);
  ASSERT_EQ(u.conns.size(), 2u);
  ASSERT_EQ(u.conns[1]->streams.size(), 1u);
  EXPECT_EQ(field(u.conns[1]->streams.begin()->second.trailers, "x-req-trailer"), "t1");
  // One record for the stream, answered by the second attempt.
  ASSERT_TRUE(wait_for([&] { return h.hub().recorded() == 1; }));
  const auto text = h.hub().last(1)[0].json->text();
  EXPECT_NE(text.find("\"status\":200"), std::string::npos) << text;
  EXPECT_NE(text.find("\"error\":null"), std::string::npos) << text;
  EXPECT_NE(text.find("\"body_bytes\":7,\"body\":\"payload\""), std::string::npos) << text;
}

TEST(h2_session, a_stream_refused_twice_gets_502) {
  harness h;
  upstream u;
  int refusals = 0;
  u.on_request = [&](peer& p, std::int32_t id, stream_state&) {
    ++refusals;
    p.reset(id, NGHTTP2_REFUSED_STREAM);
  };
  h.set_upstream("127.0.0.1", u.port);
  peer c(peer::kind::client, h.connect_client());
  const auto a = c.request(get("/never"));
  ASSERT_TRUE(run_until([&] { return c.streams[a].closed; }, c, {&u}));
  EXPECT_EQ(refusals, 2);  // the first try and one retry, on two connections
  EXPECT_EQ(u.conns.size(), 2u);
  EXPECT_EQ(field(c.streams[a].head, ":status"), "502");
  ASSERT_TRUE(wait_for([&] { return h.hub().recorded() == 1; }));
  EXPECT_NE(h.hub().last(1)[0].json->text().find("upstream_reset"), std::string::npos);
}

TEST(h2_session, other_resets_before_the_response_are_not_retried) {
  harness h;
  upstream u;
  int resets = 0;
  u.on_request = [&](peer& p, std::int32_t id, stream_state&) {
    ++resets;
    p.reset(id, NGHTTP2_INTERNAL_ERROR);
  };
  h.set_upstream("127.0.0.1", u.port);
  peer c(peer::kind::client, h.connect_client());
  const auto a = c.request(post("/once"), "x");
  ASSERT_TRUE(run_until([&] { return c.streams[a].closed; }, c, {&u}));
  EXPECT_EQ(field(c.streams[a].head, ":status"), "502");
  EXPECT_EQ(resets, 1);
  EXPECT_EQ(u.conns.size(), 1u);
}

// Interim (1xx) heads are not passed on; an upstream that sends them without end is cut off
// (each one takes memory that only comes back with the stream).
TEST(h2_session, interim_responses_are_dropped_and_an_endless_run_of_them_is_cut_off) {
  harness h;
  upstream u;
  int interim = 2;
  u.on_request = [&](peer& p, std::int32_t id, stream_state&) {
    std::string name = ":status";
    std::string status = "103";
    std::string link_name = "link";
    std::string link(200, 'l');
    auto bytes = [](std::string& v) { return reinterpret_cast<std::uint8_t*>(v.data()); };
    nghttp2_nv head[] = {
        {bytes(name), bytes(status), name.size(), status.size(), NGHTTP2_NV_FLAG_NONE},
        {bytes(link_name), bytes(link), link_name.size(), link.size(), NGHTTP2_NV_FLAG_NONE}};
    for (int i = 0; i < interim; ++i)
      nghttp2_submit_headers(p.ng(), NGHTTP2_FLAG_NONE, id, nullptr, head, 2, nullptr);
    p.respond(id, {{":status", "200"}}, "done", {});
  };
  h.set_upstream("127.0.0.1", u.port);
  peer c(peer::kind::client, h.connect_client());
  const auto a = c.request(get("/two-hints"));
  ASSERT_TRUE(run_until([&] { return c.streams[a].closed; }, c, {&u}));
  EXPECT_EQ(field(c.streams[a].head, ":status"), "200");
  EXPECT_EQ(field(c.streams[a].head, "link"), "");
  EXPECT_EQ(c.streams[a].body, "done");

  interim = 100;
  const auto b = c.request(get("/endless-hints"));
  ASSERT_TRUE(run_until([&] { return c.streams[b].closed; }, c, {&u}));
  EXPECT_EQ(field(c.streams[b].head, ":status"), "502");
}

TEST(h2_session, upstream_connection_is_shared_across_client_connections) {
  harness h;
  upstream u;
  u.on_request = echo;
  h.set_upstream("127.0.0.1", u.port);
  peer c1(peer::kind::client, h.connect_client());
  peer c2(peer::kind::client, h.connect_client());
  const auto a = c1.request(get("/one"));
  ASSERT_TRUE(run_until([&] { return c1.streams[a].closed; }, c1, {&u}));
  const auto b = c2.request(get("/two"));
  ASSERT_TRUE(run_until([&] { return c2.streams[b].closed; }, c2, {&u}));
  EXPECT_EQ(field(c2.streams[b].trailers, "x-path"), "/two");
  EXPECT_EQ(u.conns.size(), 1u);
}

TEST(h2_session, unreachable_upstream_is_502_or_grpc_unavailable) {
  std::uint16_t closed_port = 0;
  { auto l = listen_on(1, closed_port); }  // bound then closed: connections are refused
  harness h;
  h.set_upstream("127.0.0.1", closed_port);
  peer c(peer::kind::client, h.connect_client());
  const auto plain = c.request(get("/x"));
  const auto grpc = c.request(post("/pkg.Svc/Call", "application/grpc"), std::string(5, '\0'));
  ASSERT_TRUE(run_until([&] { return c.streams[plain].closed && c.streams[grpc].closed; }, c, {}));
  EXPECT_EQ(field(c.streams[plain].head, ":status"), "502");
  EXPECT_NE(c.streams[plain].body.find("devspaces-proxy"), std::string::npos);
  EXPECT_EQ(field(c.streams[grpc].head, ":status"), "200");
  EXPECT_EQ(field(c.streams[grpc].head, "grpc-status"), "14");
  EXPECT_NE(field(c.streams[grpc].head, "grpc-message").find("devspaces-proxy"), std::string::npos);
  EXPECT_TRUE(c.streams[grpc].body.empty());
  ASSERT_TRUE(wait_for([&] { return h.hub().recorded() == 2; }));
  const auto recs = h.hub().last(2);
  EXPECT_NE(recs[0].json->text().find("upstream_connect_refused"), std::string::npos);
}

TEST(h2_session, upstream_speaking_http1_gets_502) {
  harness h;
  std::uint16_t port = 0;
  auto l = listen_on(1, port);
  h.set_upstream("127.0.0.1", port);
  peer c(peer::kind::client, h.connect_client());
  const auto id = c.request(get("/x"));
  fd_guard up;
  ASSERT_TRUE(run_until(
      [&] {
        if (!up && wait_fd(l.get(), POLLIN, std::chrono::milliseconds(0))) {
          up = fd_guard(::accept(l.get(), nullptr, nullptr));
          devspaces::test::http::send_all(
              up.get(),
              "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
          up.reset();
        }
        return c.streams[id].closed;
      },
      c, {}));
  EXPECT_EQ(field(c.streams[id].head, ":status"), "502");
}

TEST(h2_session, client_reset_reaches_upstream_and_upstream_reset_reaches_client) {
  harness h;
  upstream u;
  std::vector<std::int32_t> got;
  u.on_request = [&](peer&, std::int32_t id, stream_state&) { got.push_back(id); };
  h.set_upstream("127.0.0.1", u.port);
  peer c(peer::kind::client, h.connect_client());
  const auto a = c.request(post("/slow"), "x", {}, false);  // request stays open
  ASSERT_TRUE(run_until([&] { return !u.conns.empty() && u.only().streams.size() == 1; }, c, {&u}));
  const auto up_a = u.only().streams.begin()->first;
  c.reset(a, NGHTTP2_CANCEL);
  ASSERT_TRUE(run_until([&] { return u.only().streams[up_a].closed; }, c, {&u}));
  EXPECT_EQ(u.only().streams[up_a].close_code, static_cast<std::uint32_t>(NGHTTP2_CANCEL));

  // Upstream resets after its response head: the client's stream is reset too.
  const auto b = c.request(get("/b"));
  ASSERT_TRUE(run_until([&] { return got.size() == 1; }, c, {&u}));
  u.only().respond(got[0], {{":status", "200"}}, "part", {}, false);
  ASSERT_TRUE(run_until([&] { return c.streams[b].body == "part"; }, c, {&u}));
  u.only().reset(got[0], NGHTTP2_INTERNAL_ERROR);
  ASSERT_TRUE(run_until([&] { return c.streams[b].closed; }, c, {&u}));
  EXPECT_EQ(c.streams[b].close_code, static_cast<std::uint32_t>(NGHTTP2_INTERNAL_ERROR));
  ASSERT_TRUE(wait_for([&] { return h.hub().recorded() == 2; }));
  const auto recs = h.hub().last(2);
  EXPECT_NE(recs[0].json->text().find("\"error\":\"client_reset\""), std::string::npos)
      << recs[0].json->text();
  EXPECT_NE(recs[1].json->text().find("\"error\":\"upstream_reset\""), std::string::npos)
      << recs[1].json->text();
}

TEST(h2_session, request_body_is_bounded_by_the_windows_when_upstream_stalls) {
  harness h;
  upstream u;
  u.auto_window = false;  // the upstream never gives its window back
  h.set_upstream("127.0.0.1", u.port);
  peer c(peer::kind::client, h.connect_client());
  const std::size_t big = 4 * 1024 * 1024;
  const auto id = c.request(post("/upload"), std::string(big, 'x'));
  // The upstream gets its initial window (65535) and the client no more than the proxy's stream
  // window on top: nothing else is buffered.
  ASSERT_TRUE(run_until(
      [&] {
        return !u.conns.empty() && !u.only().streams.empty() &&
               u.only().streams.begin()->second.body.size() == 65535;
      },
      c, {&u}));
  const auto settle = std::chrono::steady_clock::now() + 300ms;
  while (std::chrono::steady_clock::now() < settle) {
    c.pump(1ms);
    u.step();
  }
  EXPECT_EQ(u.only().streams.begin()->second.body.size(), 65535u);
  EXPECT_LE(c.data_sent, 256u * 1024 + 65535);
  EXPECT_GE(c.data_sent, 256u * 1024);
  // The upstream consumes: more flows, all the way.
  auto& us = u.only().streams.begin()->second;
  const auto up_id = u.only().streams.begin()->first;
  u.on_request = [](peer& p, std::int32_t sid, stream_state&) {
    p.respond(sid, {{":status", "204"}});
  };
  std::size_t consumed = 0;
  ASSERT_TRUE(run_until(
      [&] {
        if (us.body.size() > consumed) {
          u.only().consume(up_id, us.body.size() - consumed);
          consumed = us.body.size();
        }
        return c.streams[id].closed;
      },
      c, {&u}, 20s));
  EXPECT_EQ(us.body.size(), big);
  EXPECT_EQ(field(c.streams[id].head, ":status"), "204");
}

TEST(h2_session, drain_sends_goaway_and_lets_open_streams_finish) {
  harness h({}, proxy::direction::inbound);
  upstream u;
  std::vector<std::int32_t> got;
  u.on_request = [&](peer&, std::int32_t id, stream_state&) { got.push_back(id); };
  h.set_upstream("127.0.0.1", u.port);
  peer c(peer::kind::client, h.connect_client());
  const auto id = c.request(get("/long"));
  ASSERT_TRUE(run_until([&] { return got.size() == 1; }, c, {&u}));
  h.start_drain();
  ASSERT_TRUE(run_until([&] { return c.goaway; }, c, {&u}));
  EXPECT_EQ(c.goaway_last, id);
  u.only().respond(got[0], {{":status", "200"}}, "done");
  ASSERT_TRUE(run_until([&] { return c.streams[id].closed; }, c, {&u}));
  EXPECT_EQ(c.streams[id].body, "done");
  // With nothing open the connection ends.
  ASSERT_TRUE(run_until([&] { return c.eof; }, c, {&u}));
}

TEST(h2_session, idle_connections_say_goodbye_only_once_no_stream_is_open) {
  proxy::config cfg;
  cfg.idle_timeout = 300ms;
  harness h(cfg);
  upstream u;
  std::vector<std::int32_t> got;
  u.on_request = [&](peer&, std::int32_t id, stream_state&) { got.push_back(id); };
  h.set_upstream("127.0.0.1", u.port);
  peer c(peer::kind::client, h.connect_client());
  const auto id = c.request(get("/slow"));
  ASSERT_TRUE(run_until([&] { return got.size() == 1; }, c, {&u}));
  // A stream open for longer than the idle timeout: neither side is idle.
  const auto until = std::chrono::steady_clock::now() + 600ms;
  run_until([&] { return std::chrono::steady_clock::now() >= until; }, c, {&u});
  EXPECT_FALSE(c.goaway);
  EXPECT_FALSE(u.only().goaway);
  u.only().respond(got[0], {{":status", "200"}}, "late");
  ASSERT_TRUE(run_until([&] { return c.streams[id].closed; }, c, {&u}));
  const auto closed_at = std::chrono::steady_clock::now();
  // Idle from the stream's close: GOAWAY(NO_ERROR), then the connection ends.
  ASSERT_TRUE(run_until([&] { return c.goaway && c.eof; }, c, {&u}));
  EXPECT_GE(std::chrono::steady_clock::now() - closed_at, 250ms);
  // The upstream connection, idle as well, says goodbye too.
  ASSERT_TRUE(run_until([&] { return u.only().goaway; }, c, {&u}));
}

TEST(h2_session, inbound_adds_the_route_header_from_authority) {
  harness h({}, proxy::direction::inbound);
  upstream u;
  u.on_request = echo;
  h.set_upstream("127.0.0.1", u.port);
  proxy::config cfg;
  auto shared_cfg = std::make_shared<const proxy::config>(cfg);
  auto tree = proxy::routing::build_space_tree("default", {}, "");
  auto holder = std::make_shared<const proxy::routing::space_tree_holder>(tree.tree);
  std::string err;
  auto res = proxy::routing::make_resolver(h.ioc().get_executor(), cfg, h.metrics(), &err);
  proxy::routing::router r(h.ioc().get_executor(), shared_cfg, h.metrics(), holder, res);
  h.set_router(&r);
  peer c(peer::kind::client, h.connect_client());
  const auto a = c.request(get("/", "azureuser.s.default.servicea.example.io"));
  auto kept = get("/", "azureuser.s.default.servicea.example.io");
  kept.emplace_back("azds-route-as", "other");
  const auto b = c.request(kept);
  ASSERT_TRUE(run_until([&] { return c.streams[a].closed && c.streams[b].closed; }, c, {&u}));
  EXPECT_EQ(field(c.streams[a].trailers, "x-route"), "azureuser");
  EXPECT_EQ(field(c.streams[b].trailers, "x-route"), "other");
  h.set_router(nullptr);
}

TEST(h2_session, outbound_routes_each_stream_on_its_own) {
  // serviceb exists in default (127.0.0.2) and in azureuser (127.0.0.3); the original
  // destination is 127.0.0.1. Three streams on one connection go to three places.
  upstream orig(1);
  upstream in_default(2, orig.port);
  upstream in_azureuser(3, orig.port);
  ASSERT_TRUE(in_default.listener && in_azureuser.listener);
  for (auto* u : {&orig, &in_default, &in_azureuser}) u->on_request = echo;
  const std::string hosts =
      std::string(::testing::TempDir()) + "/h2_hosts_" + std::to_string(::getpid());
  std::ofstream(hosts) << "127.0.0.2 serviceb.default.svc.cluster.local\n"
                          "127.0.0.3 serviceb.azureuser.svc.cluster.local\n";
  proxy::config cfg;
  cfg.space = "azureuser";
  cfg.parent_spaces = {"default"};
  cfg.resolver = "hosts:" + hosts;
  harness h(cfg, proxy::direction::outbound);
  h.set_upstream("127.0.0.1", orig.port);
  auto shared_cfg = std::make_shared<const proxy::config>(cfg);
  auto tree = proxy::routing::build_space_tree(cfg.space, cfg.parent_spaces, "");
  auto holder = std::make_shared<const proxy::routing::space_tree_holder>(tree.tree);
  std::string err;
  auto res = proxy::routing::make_resolver(h.ioc().get_executor(), cfg, h.metrics(), &err);
  ASSERT_TRUE(res) << err;
  proxy::routing::router r(h.ioc().get_executor(), shared_cfg, h.metrics(), holder, res);
  h.set_router(&r);
  peer c(peer::kind::client, h.connect_client());
  auto with = [](std::string space) {
    auto f = get("/api", "serviceb");
    if (!space.empty()) f.emplace_back("azds-route-as", space);
    return f;
  };
  const auto own = c.request(with("azureuser"));
  const auto parent = c.request(with("default"));
  const auto none = c.request(with(""));
  ASSERT_TRUE(run_until(
      [&] { return c.streams[own].closed && c.streams[parent].closed && c.streams[none].closed; },
      c, {&orig, &in_default, &in_azureuser}));
  EXPECT_EQ(in_azureuser.conns.size(), 1u);
  EXPECT_EQ(in_default.conns.size(), 1u);
  EXPECT_EQ(orig.conns.size(), 1u);
  EXPECT_EQ(field(c.streams[own].trailers, "x-route"), "azureuser");
  EXPECT_EQ(field(c.streams[parent].trailers, "x-route"), "default");
  ASSERT_TRUE(wait_for([&] { return h.hub().recorded() == 3; }));
  std::string all;
  for (const auto& e : h.hub().last(3)) all += e.json->text() + "\n";
  EXPECT_NE(all.find("\"decision\":\"own\""), std::string::npos) << all;
  EXPECT_NE(all.find("\"upstream\":\"127.0.0.3:"), std::string::npos) << all;
  EXPECT_NE(all.find("\"upstream\":\"127.0.0.2:"), std::string::npos) << all;
  h.set_router(nullptr);
  std::remove(hosts.c_str());
}

TEST(h2_session, oversized_header_list_resets_only_that_stream) {
  harness h;
  upstream u;
  u.on_request = echo;
  h.set_upstream("127.0.0.1", u.port);
  peer c(peer::kind::client, h.connect_client());
  auto big = get("/big");
  for (int i = 0; i < 20; ++i)
    big.emplace_back("x-fill-" + std::to_string(i), std::string(4000, 'a'));
  const auto bad = c.request(big);
  const auto good = c.request(get("/fine"));
  ASSERT_TRUE(run_until([&] { return c.streams[bad].closed && c.streams[good].closed; }, c, {&u}));
  EXPECT_NE(c.streams[bad].close_code, 0u);
  EXPECT_EQ(field(c.streams[good].head, ":status"), "200");
}

TEST(h2_session, rapid_reset_ends_the_connection_with_goaway) {
  harness h;
  upstream u;
  h.set_upstream("127.0.0.1", u.port);
  peer c(peer::kind::client, h.connect_client());
  // Streams opened and reset at once, far past the reset budget.
  for (int i = 0; i < 2000 && !c.eof; ++i) {
    const auto id = c.request(get("/r"));
    c.flush();  // HEADERS out before the reset
    c.reset(id);
    c.flush();
    if (i % 50 == 0) {
      c.pump(1ms);
      u.step();
    }
  }
  ASSERT_TRUE(run_until([&] { return c.goaway || c.eof; }, c, {&u}));
  ASSERT_TRUE(run_until([&] { return c.eof; }, c, {&u}));
}

TEST(h2_session, garbage_after_the_preface_gets_goaway_and_close) {
  harness h;
  upstream u;
  h.set_upstream("127.0.0.1", u.port);
  peer c(peer::kind::client, h.connect_client());
  c.flush();  // preface and SETTINGS
  c.send_raw(std::string("\x00\x00\x04\x08\x00\x00\x00\x00\x00\xff\xff\xff\xff", 13));  // bad
  c.send_raw(std::string(64, '\xee'));
  ASSERT_TRUE(run_until([&] { return c.eof; }, c, {&u}));
  EXPECT_TRUE(c.goaway);
}

}  // namespace
}  // namespace devspaces::test::h2
