#include "proxy/http/session.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "tests/proxy/http/http_fixture.hpp"
#include "tests/support/test_support.hpp"

// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#if defined(__SANITIZE_ADDRESS__)
// From the AddressSanitizer runtime (GCC ships no header declaring it).
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#else
#include <malloc.h>
#endif

namespace devspaces::test::http {
namespace {

using proxy::code_class;

// Bytes of heap in use by the whole process.
std::size_t heap_in_use() {
#if defined(__SANITIZE_ADDRESS__)
  return __sanitizer_get_current_allocated_bytes();
#else
  const auto m = ::mallinfo2();
  return m.uordblks + m.hblkhd;
#endif
}

proxy::config fast_config() {
  proxy::config c;
  c.header_timeout = 3s;
  c.connect_timeout = 2s;
  c.idle_timeout = 10s;
  c.max_header_bytes = 4096;
  return c;
}

struct upstream {
  std::uint16_t port = 0;
  fd_guard listener;
  upstream() { listener = listen_loopback(port); }
  fd_guard accept(std::chrono::milliseconds t = 5s) { return accept_within(listener.get(), t); }
  // True when a connection is waiting to be accepted now.
  bool pending() { return wait_fd(listener.get(), POLLIN, 0ms); }
};

struct env {
  proxy_harness proxy;
  upstream up;
  explicit env(proxy::config c = fast_config(), proxy::direction d = proxy::direction::outbound)
      : proxy(std::move(c), d) {
    proxy.set_upstream(up.port);
  }
  fd_guard client() { return connect_loopback(proxy.port()); }
};

const std::string ok5 = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

TEST(session, get_forwarded_byte_exact_and_keep_alive_reuses_upstream) {
  env e;
  auto c = e.client();
  const std::string req = "GET /a HTTP/1.1\r\nHost: svc\r\nx-CASE:  kept \r\n\r\n";
  ASSERT_TRUE(send_all(c.get(), req));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  EXPECT_EQ(recv_head(u.get()), req);
  ASSERT_TRUE(send_all(u.get(), ok5));
  EXPECT_EQ(recv_n(c.get(), ok5.size()), ok5);
  // Second request: same client connection, same upstream connection.
  ASSERT_TRUE(send_all(c.get(), "GET /b HTTP/1.1\r\nHost: svc\r\n\r\n"));
  EXPECT_EQ(recv_head(u.get()), "GET /b HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_TRUE(send_all(u.get(), ok5));
  EXPECT_EQ(recv_n(c.get(), ok5.size()), ok5);
  EXPECT_FALSE(e.up.pending());
  EXPECT_TRUE(wait_for([&] { return e.proxy.requests("GET", code_class::c2xx) == 2; }));
  EXPECT_TRUE(wait_for([&] { return e.proxy.hub().recorded() == 2; }));
  auto last = e.proxy.hub().last(1);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_NE(last[0].json->text().find("\"target\":\"/b\""), std::string::npos)
      << last[0].json->text();
  EXPECT_NE(last[0].json->text().find("\"status\":200"), std::string::npos) << last[0].json->text();
}

TEST(session, tracing_off_builds_no_record_until_a_follower_attaches) {
  auto cfg = fast_config();
  cfg.trace_buffer = 0;  // and no --trace-upstream: tracing is off
  env e(cfg);
  auto c = e.client();
  auto exchange = [&](const std::string& target, fd_guard* u) {
    ASSERT_TRUE(send_all(c.get(), "GET " + target + " HTTP/1.1\r\nHost: svc\r\n\r\n"));
    if (!*u) *u = e.up.accept();
    ASSERT_TRUE(*u);
    EXPECT_EQ(recv_head(u->get()), "GET " + target + " HTTP/1.1\r\nHost: svc\r\n\r\n");
    ASSERT_TRUE(send_all(u->get(), ok5));
    EXPECT_EQ(recv_n(c.get(), ok5.size()), ok5);
  };
  fd_guard u;
  exchange("/off", &u);
  EXPECT_TRUE(wait_for([&] { return e.proxy.requests("GET", code_class::c2xx) == 1; }));
  EXPECT_EQ(e.proxy.hub().recorded(), 0u);
  EXPECT_EQ(e.proxy.metrics().trace_records(proxy::trace_outcome::recorded).Value(), 0);

  // A follower (e.g. `devspaces-proxy traces`) turns recording on for as long as it stays.
  std::vector<proxy::trace::entry> replay;
  auto follower = e.proxy.hub().subscribe(e.proxy.ioc().get_executor(), 100, replay);
  EXPECT_TRUE(replay.empty());
  exchange("/followed", &u);
  EXPECT_TRUE(wait_for([&] { return e.proxy.hub().recorded() == 1; }));
  EXPECT_TRUE(wait_for([&] { return follower->queued() == 1; }));  // offered after the count
  EXPECT_TRUE(e.proxy.hub().last(10).empty());                     // still no replay ring

  e.proxy.hub().unsubscribe(follower);
  exchange("/off-again", &u);
  EXPECT_TRUE(wait_for([&] { return e.proxy.requests("GET", code_class::c2xx) == 3; }));
  EXPECT_EQ(e.proxy.hub().recorded(), 1u);
  EXPECT_EQ(e.proxy.metrics().trace_records(proxy::trace_outcome::recorded).Value(), 1);
}

TEST(session, upstream_closing_an_idle_keep_alive_connection_is_replaced) {
  env e;
  auto c = e.client();
  ASSERT_TRUE(send_all(c.get(), "GET /1 HTTP/1.1\r\nHost: svc\r\n\r\n"));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  recv_head(u.get());
  ASSERT_TRUE(send_all(u.get(), ok5));
  EXPECT_EQ(recv_n(c.get(), ok5.size()), ok5);
  u.reset();  // the origin drops the idle connection without saying so
  ASSERT_TRUE(send_all(c.get(), "GET /2 HTTP/1.1\r\nHost: svc\r\n\r\n"));
  auto u2 = e.up.accept();
  ASSERT_TRUE(u2);
  EXPECT_EQ(recv_head(u2.get()), "GET /2 HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_TRUE(send_all(u2.get(), ok5));
  EXPECT_EQ(recv_n(c.get(), ok5.size()), ok5);
}

TEST(session, chunked_request_with_trailers_and_chunked_response) {
  env e;
  auto c = e.client();
  const std::string head = "POST /up HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string body = "4\r\nwiki\r\n5;x=y\r\npedia\r\n0\r\nT-A: 1\r\n\r\n";
  ASSERT_TRUE(send_all(c.get(), head));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  EXPECT_EQ(recv_head(u.get()), head);
  ASSERT_TRUE(send_all(c.get(), body.substr(0, 7)));
  ASSERT_TRUE(send_all(c.get(), body.substr(7)));
  EXPECT_EQ(recv_n(u.get(), body.size()), body);
  const std::string resp =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: z\r\n\r\n";
  ASSERT_TRUE(send_all(u.get(), resp));
  EXPECT_EQ(recv_n(c.get(), resp.size()), resp);
  EXPECT_TRUE(wait_for([&] { return e.proxy.requests("POST", code_class::c2xx) == 1; }));
}

TEST(session, expect_100_continue) {
  env e;
  auto c = e.client();
  const std::string head =
      "PUT /f HTTP/1.1\r\nHost: svc\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n";
  ASSERT_TRUE(send_all(c.get(), head));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  EXPECT_EQ(recv_head(u.get()), head);
  ASSERT_TRUE(send_all(u.get(), "HTTP/1.1 100 Continue\r\n\r\n"));
  EXPECT_EQ(recv_head(c.get()), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(send_all(c.get(), "abc"));
  EXPECT_EQ(recv_n(u.get(), 3), "abc");
  ASSERT_TRUE(send_all(u.get(), ok5));
  EXPECT_EQ(recv_n(c.get(), ok5.size()), ok5);
}

TEST(session, head_204_304_without_body_on_one_connection) {
  env e;
  auto c = e.client();
  ASSERT_TRUE(send_all(c.get(), "HEAD / HTTP/1.1\r\nHost: svc\r\n\r\n"));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  recv_head(u.get());
  const std::string head_resp = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
  ASSERT_TRUE(send_all(u.get(), head_resp));
  EXPECT_EQ(recv_head(c.get()), head_resp);
  for (const char* r : {"HTTP/1.1 204 No Content\r\n\r\n",
                        "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n"}) {
    ASSERT_TRUE(send_all(c.get(), "GET / HTTP/1.1\r\nHost: svc\r\n\r\n"));
    recv_head(u.get());
    ASSERT_TRUE(send_all(u.get(), r));
    EXPECT_EQ(recv_head(c.get()), r);
  }
  // Still usable afterwards.
  ASSERT_TRUE(send_all(c.get(), "GET / HTTP/1.1\r\nHost: svc\r\n\r\n"));
  recv_head(u.get());
  ASSERT_TRUE(send_all(u.get(), ok5));
  EXPECT_EQ(recv_n(c.get(), ok5.size()), ok5);
}

TEST(session, response_delimited_by_close) {
  env e;
  auto c = e.client();
  ASSERT_TRUE(send_all(c.get(), "GET / HTTP/1.1\r\nHost: svc\r\n\r\n"));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  recv_head(u.get());
  const std::string resp =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nstreamed until close";
  ASSERT_TRUE(send_all(u.get(), resp));
  u.reset();
  bool eof = false;
  EXPECT_EQ(recv_to_eof(c.get(), 5s, &eof), resp);
  EXPECT_TRUE(eof);
}

TEST(session, http10_closes_unless_keep_alive) {
  env e;
  auto c = e.client();
  ASSERT_TRUE(send_all(c.get(), "GET / HTTP/1.0\r\n\r\n"));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  EXPECT_EQ(recv_head(u.get()), "GET / HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(send_all(u.get(), "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello"));
  bool eof = false;
  EXPECT_EQ(recv_to_eof(c.get(), 5s, &eof), "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_TRUE(eof);

  auto c2 = e.client();
  ASSERT_TRUE(send_all(c2.get(), "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  auto u2 = e.up.accept();
  ASSERT_TRUE(u2);
  recv_head(u2.get());
  const std::string r = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok";
  ASSERT_TRUE(send_all(u2.get(), r));
  EXPECT_EQ(recv_n(c2.get(), r.size()), r);
  ASSERT_TRUE(send_all(c2.get(), "GET /2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  EXPECT_EQ(recv_head(u2.get()), "GET /2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
}

TEST(session, pipelined_requests_answered_in_order) {
  env e;
  auto c = e.client();
  ASSERT_TRUE(send_all(c.get(),
                       "GET /1 HTTP/1.1\r\nHost: svc\r\n\r\nGET /2 HTTP/1.1\r\nHost: "
                       "svc\r\n\r\nGET /3 HTTP/1.1\r\nHost: svc\r\n\r\n"));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  std::string expect;
  for (int i = 1; i <= 3; ++i) {
    // Sequential: request i+1 reaches the upstream only after response i.
    EXPECT_EQ(recv_head(u.get()), "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: svc\r\n\r\n");
    const std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n" + std::to_string(i);
    ASSERT_TRUE(send_all(u.get(), r));
    expect += r;
  }
  EXPECT_EQ(recv_n(c.get(), expect.size()), expect);
}

TEST(session, keep_alive_after_idle_then_pipelined_requests_with_bodies) {
  // Between exchanges an idle session frees its buffers and parser state; the next requests
  // (a large head first, then smaller pipelined ones with bodies, one split mid-head) must
  // come out byte for byte and in order.
  auto cfg = fast_config();
  cfg.max_header_bytes = 8192;
  env e(cfg);
  auto c = e.client();
  std::string big = "GET /big HTTP/1.1\r\nHost: svc\r\n";
  for (int i = 0; i < 60; ++i)
    big += "X-Header-" + std::to_string(i) + ": value-" + std::to_string(i) + "\r\n";
  big += "\r\n";
  ASSERT_TRUE(send_all(c.get(), big));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  EXPECT_EQ(recv_head(u.get()), big);
  ASSERT_TRUE(send_all(u.get(), ok5));
  EXPECT_EQ(recv_n(c.get(), ok5.size()), ok5);

  const std::string post = "POST /p HTTP/1.1\r\nHost: svc\r\nContent-Length: 4\r\n\r\nbody";
  const std::string chunked =
      "PUT /c HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  const std::string get = "GET /g HTTP/1.1\r\nHost: svc\r\n\r\n";
  ASSERT_TRUE(send_all(c.get(), post + chunked + get.substr(0, 10)));
  std::string expect;
  for (const auto& r : {post, chunked}) {
    EXPECT_EQ(recv_n(u.get(), r.size()), r);
    const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n" + r.substr(0, 2);
    ASSERT_TRUE(send_all(u.get(), resp));
    expect += resp;
  }
  EXPECT_EQ(recv_n(c.get(), expect.size()), expect);
  ASSERT_TRUE(send_all(c.get(), get.substr(10)));
  EXPECT_EQ(recv_head(u.get()), get);
  ASSERT_TRUE(send_all(u.get(), ok5));
  EXPECT_EQ(recv_n(c.get(), ok5.size()), ok5);
  EXPECT_FALSE(e.up.pending());  // one upstream connection throughout
  EXPECT_TRUE(wait_for([&] { return e.proxy.requests("GET", code_class::c2xx) == 2; }));
  EXPECT_TRUE(wait_for([&] { return e.proxy.requests("POST", code_class::c2xx) == 1; }));
  EXPECT_TRUE(wait_for([&] { return e.proxy.requests("PUT", code_class::c2xx) == 1; }));
}

TEST(session, upgrade_becomes_a_tunnel) {
  env e;
  auto c = e.client();
  const std::string req =
      "GET /ws HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
  ASSERT_TRUE(send_all(c.get(), req));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  EXPECT_EQ(recv_head(u.get()), req);
  const std::string resp =
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
  ASSERT_TRUE(send_all(u.get(), resp + "\x81\x02hi"));
  EXPECT_EQ(recv_n(c.get(), resp.size() + 4), resp + "\x81\x02hi");
  ASSERT_TRUE(send_all(c.get(), std::string("\x81\x82\0\0\0\0yo", 8)));
  EXPECT_EQ(recv_n(u.get(), 8), std::string("\x81\x82\0\0\0\0yo", 8));
  u.reset();
  bool eof = false;
  recv_to_eof(c.get(), 5s, &eof);
  EXPECT_TRUE(eof);
}

TEST(session, upgrade_declined_stays_http) {
  env e;
  auto c = e.client();
  ASSERT_TRUE(send_all(
      c.get(), "GET /ws HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  recv_head(u.get());
  ASSERT_TRUE(send_all(u.get(), ok5));
  EXPECT_EQ(recv_n(c.get(), ok5.size()), ok5);
  ASSERT_TRUE(send_all(c.get(), "GET /next HTTP/1.1\r\nHost: svc\r\n\r\n"));
  EXPECT_EQ(recv_head(u.get()), "GET /next HTTP/1.1\r\nHost: svc\r\n\r\n");
}

TEST(session, connect_becomes_a_tunnel_after_2xx) {
  env e;
  auto c = e.client();
  const std::string req = "CONNECT example:443 HTTP/1.1\r\nHost: example:443\r\n\r\n";
  ASSERT_TRUE(send_all(c.get(), req));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  EXPECT_EQ(recv_head(u.get()), req);
  const std::string resp = "HTTP/1.1 200 Connection Established\r\n\r\n";
  ASSERT_TRUE(send_all(u.get(), resp));
  EXPECT_EQ(recv_n(c.get(), resp.size()), resp);
  ASSERT_TRUE(send_all(c.get(), "\x16\x03\x01 raw tls"));
  EXPECT_EQ(recv_n(u.get(), 10), "\x16\x03\x01 raw tls");
  ASSERT_TRUE(send_all(u.get(), "server bytes"));
  EXPECT_EQ(recv_n(c.get(), 12), "server bytes");
}

TEST(session, draining_adds_connection_close_and_ends_connection) {
  env e(fast_config(), proxy::direction::inbound);
  auto c = e.client();
  e.proxy.set_draining(true);
  ASSERT_TRUE(send_all(c.get(), "GET / HTTP/1.1\r\nHost: svc\r\n\r\n"));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  recv_head(u.get());
  ASSERT_TRUE(send_all(u.get(), ok5));
  bool eof = false;
  EXPECT_EQ(recv_to_eof(c.get(), 5s, &eof),
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
  EXPECT_TRUE(eof);
}

TEST(session, idle_keep_alive_connection_closes_when_draining_starts) {
  env e(fast_config(), proxy::direction::inbound);
  auto c = e.client();
  ASSERT_TRUE(send_all(c.get(), "GET / HTTP/1.1\r\nHost: svc\r\n\r\n"));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  recv_head(u.get());
  ASSERT_TRUE(send_all(u.get(), ok5));
  EXPECT_EQ(recv_n(c.get(), ok5.size()), ok5);
  e.proxy.set_draining(true);
  bool eof = false;
  EXPECT_EQ(recv_to_eof(c.get(), 3s, &eof), "");
  EXPECT_TRUE(eof);
}

TEST(session, outbound_keep_alive_is_served_as_usual_while_draining) {
  // The app may still call out while the pod stops: its connections keep working.
  env e;
  auto c = e.client();
  ASSERT_TRUE(send_all(c.get(), "GET / HTTP/1.1\r\nHost: svc\r\n\r\n"));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  recv_head(u.get());
  ASSERT_TRUE(send_all(u.get(), ok5));
  EXPECT_EQ(recv_n(c.get(), ok5.size()), ok5);
  e.proxy.set_draining(true);
  // The idle connection stays open and its next request is answered without Connection: close.
  ASSERT_TRUE(send_all(c.get(), "GET /2 HTTP/1.1\r\nHost: svc\r\n\r\n"));
  EXPECT_EQ(recv_head(u.get()), "GET /2 HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_TRUE(send_all(u.get(), ok5));
  EXPECT_EQ(recv_n(c.get(), ok5.size()), ok5);
  ASSERT_TRUE(send_all(c.get(), "GET /3 HTTP/1.1\r\nHost: svc\r\n\r\n"));
  EXPECT_EQ(recv_head(u.get()), "GET /3 HTTP/1.1\r\nHost: svc\r\n\r\n");
}

TEST(session, bytes_total_rises_during_a_keep_alive_exchange) {
  // Counted per read and write: a 200000-byte body is in bytes_total{rx} while the response is
  // still outstanding, to the byte, and the response is in {tx} while the connection stays open.
  env e;
  auto c = e.client();
  const std::string head = "POST /up HTTP/1.1\r\nHost: svc\r\nContent-Length: 200000\r\n\r\n";
  ASSERT_TRUE(send_all(c.get(), head));
  ASSERT_TRUE(send_all(c.get(), std::string(200000, 'b')));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  EXPECT_EQ(recv_n(u.get(), head.size() + 200000, 10s).size(), head.size() + 200000);
  auto rx = [&] {
    return e.proxy.metrics().bytes(proxy::direction::outbound, proxy::flow::rx).Value();
  };
  auto tx = [&] {
    return e.proxy.metrics().bytes(proxy::direction::outbound, proxy::flow::tx).Value();
  };
  EXPECT_EQ(rx(), static_cast<double>(head.size() + 200000));
  EXPECT_EQ(tx(), 0);
  ASSERT_TRUE(send_all(u.get(), ok5));
  EXPECT_EQ(recv_n(c.get(), ok5.size()), ok5);
  EXPECT_TRUE(wait_for([&] { return tx() == static_cast<double>(ok5.size()); }));
  EXPECT_EQ(e.proxy.sessions_done(), 0u);  // still open
}

TEST(session, trace_record_keeps_a_body_prefix) {
  auto cfg = fast_config();
  cfg.trace_body_bytes = 4;
  env e(cfg);
  auto c = e.client();
  ASSERT_TRUE(send_all(c.get(), "POST /p HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\n\r\nhello"));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  recv_n(u.get(), 55);
  ASSERT_TRUE(send_all(u.get(), ok5));
  EXPECT_EQ(recv_n(c.get(), ok5.size()), ok5);
  ASSERT_TRUE(wait_for([&] { return e.proxy.hub().recorded() == 1; }));
  const auto json = e.proxy.hub().last(1)[0].json->text();
  EXPECT_NE(json.find("\"body_bytes\":5,\"body\":\"hell\",\"body_truncated\":true"),
            std::string::npos)
      << json;
}

// ---- errors

std::string answer_of(int fd) {
  bool eof = false;
  return recv_to_eof(fd, 5s, &eof);
}

TEST(session, smuggling_vectors_get_400_and_nothing_reaches_upstream) {
  const std::string p = "POST / HTTP/1.1\r\nHost: svc\r\n";
  const std::vector<std::pair<const char*, std::string>> vectors = {
      {"CL.TE", p + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"},
      {"TE.CL",
       p + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n"},
      {"TE xchunked", p + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"},
      {"TE space before colon", p + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"},
      {"TE duplicate", p + "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n"},
      {"TE chunked, identity", p + "Transfer-Encoding: chunked, identity\r\n\r\n"},
      {"TE vertical tab", p + "Transfer-Encoding: chunked\x0b\r\n\r\n"},
      {"duplicate CL", p + "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"},
      {"bad chunk size", p + "Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n"},
      {"chunk size overflow", p + "Transfer-Encoding: chunked\r\n\r\n100000000000000003\r\n"},
      {"obs-fold", p + "X-A: a\r\n b\r\n\r\n"},
      {"bare CR", p + "X-A: a\rb\r\nContent-Length: 0\r\n\r\n"},
      {"bare LF", p + "X-A: a\nContent-Length: 0\r\n\r\n"},
      {"NUL", p + std::string("X-A: \0\r\n\r\n", 9)},
  };
  env e;
  for (const auto& [name, input] : vectors) {
    SCOPED_TRACE(name);
    auto c = e.client();
    ASSERT_TRUE(send_all(c.get(), input));
    const auto answer = answer_of(c.get());
    EXPECT_EQ(answer.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << answer;
    EXPECT_NE(answer.find("\r\n\r\ndevspaces-proxy: bad request: "), std::string::npos) << answer;
    EXPECT_EQ(answer.back(), '\n');
    // The proxy decides before it connects: no connection (so no byte) reached the upstream.
    EXPECT_FALSE(e.up.pending());
  }
  EXPECT_TRUE(wait_for([&] {
    return e.proxy.requests("POST", code_class::c4xx) == static_cast<double>(vectors.size());
  }));
  auto last = e.proxy.hub().last(1);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_NE(last[0].json->text().find("\"error\":\"bad_request\""), std::string::npos)
      << last[0].json->text();
  // A rejected head's record still names its request line, as far as it was parsed.
  EXPECT_NE(last[0].json->text().find("\"method\":\"POST\",\"target\":\"/\""), std::string::npos)
      << last[0].json->text();
}

TEST(session, both_cl_and_te_reason_text) {
  env e;
  auto c = e.client();
  ASSERT_TRUE(send_all(c.get(),
                       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
  const auto a = answer_of(c.get());
  EXPECT_NE(a.find("\r\n\r\ndevspaces-proxy: bad request: both Content-Length and "
                   "Transfer-Encoding\n"),
            std::string::npos)
      << a;
}

TEST(session, oversized_request_head_gets_431) {
  env e;
  auto c = e.client();
  ASSERT_TRUE(send_all(c.get(), "GET / HTTP/1.1\r\nX-Big: " + std::string(5000, 'a') + "\r\n\r\n"));
  const auto a = answer_of(c.get());
  EXPECT_EQ(a.rfind("HTTP/1.1 431 ", 0), 0u) << a;
  EXPECT_FALSE(e.up.pending());
}

TEST(session, slow_head_gets_408) {
  auto cfg = fast_config();
  cfg.header_timeout = 300ms;
  env e(cfg);
  auto c = e.client();
  ASSERT_TRUE(send_all(c.get(), "GET / HTTP/1.1\r\nHost: sl"));
  const auto start = std::chrono::steady_clock::now();
  const auto a = answer_of(c.get());
  EXPECT_EQ(a.rfind("HTTP/1.1 408 ", 0), 0u) << a;
  EXPECT_NE(a.find("devspaces-proxy: "), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_FALSE(e.up.pending());
}

TEST(session, idle_keep_alive_closes_silently_after_header_timeout) {
  auto cfg = fast_config();
  cfg.header_timeout = 300ms;
  env e(cfg);
  auto c = e.client();
  ASSERT_TRUE(send_all(c.get(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  auto u = e.up.accept();
  recv_head(u.get());
  ASSERT_TRUE(send_all(u.get(), ok5));
  bool eof = false;
  EXPECT_EQ(recv_to_eof(c.get(), 5s, &eof), ok5);
  EXPECT_TRUE(eof);
}

TEST(session, refused_upstream_gets_502) {
  proxy::config cfg = fast_config();
  env e(cfg);
  std::uint16_t closed_port = 0;
  { auto l = listen_loopback(closed_port); }
  e.proxy.set_upstream(closed_port);
  auto c = e.client();
  ASSERT_TRUE(send_all(c.get(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  const auto a = answer_of(c.get());
  EXPECT_EQ(a.rfind("HTTP/1.1 502 Bad Gateway\r\n", 0), 0u) << a;
  EXPECT_NE(a.find("devspaces-proxy: bad gateway: upstream refused the connection\n"),
            std::string::npos);
  EXPECT_TRUE(wait_for([&] {
    return e.proxy.metrics()
               .connect_failures(proxy::direction::outbound, proxy::connect_failure::refused)
               .Value() == 1;
  }));
  EXPECT_TRUE(wait_for([&] { return e.proxy.hub().recorded() == 1; }));
  EXPECT_NE(e.proxy.hub().last(1)[0].json->text().find("upstream_connect_refused"),
            std::string::npos);
}

TEST(session, upstream_closing_before_response_gets_502) {
  env e;
  auto c = e.client();
  ASSERT_TRUE(send_all(c.get(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  recv_head(u.get());
  u.reset();
  const auto a = answer_of(c.get());
  EXPECT_EQ(a.rfind("HTTP/1.1 502 ", 0), 0u) << a;
}

TEST(session, malformed_and_oversized_response_heads_get_502) {
  for (const std::string& bad : {std::string("HTTP/1.1 2OO OK\r\n\r\n"),
                                 "HTTP/1.1 200 OK\r\nX: " + std::string(5000, 'r') + "\r\n\r\n",
                                 std::string("HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n")}) {
    env e;
    auto c = e.client();
    ASSERT_TRUE(send_all(c.get(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    auto u = e.up.accept();
    ASSERT_TRUE(u);
    recv_head(u.get());
    send_all(u.get(), bad);
    const auto a = answer_of(c.get());
    EXPECT_EQ(a.rfind("HTTP/1.1 502 ", 0), 0u) << a;
  }
}

TEST(session, response_head_timeout_gets_504) {
  auto cfg = fast_config();
  cfg.header_timeout = 300ms;
  env e(cfg);
  auto c = e.client();
  ASSERT_TRUE(send_all(c.get(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  recv_head(u.get());
  const auto a = answer_of(c.get());
  EXPECT_EQ(a.rfind("HTTP/1.1 504 Gateway Timeout\r\n", 0), 0u) << a;
  EXPECT_TRUE(wait_for([&] { return e.proxy.hub().recorded() == 1; }));
  EXPECT_NE(e.proxy.hub().last(1)[0].json->text().find("upstream_timeout"), std::string::npos);
}

TEST(session, connect_timeout_gets_504) {
  auto cfg = fast_config();
  cfg.connect_timeout = 300ms;
  env e(cfg);
  // A listener whose accept queue is full drops further SYNs: connects hang until the timeout.
  std::uint16_t port = 0;
  auto full = listen_loopback(port, 0);
  std::vector<fd_guard> fillers;
  for (int i = 0; i < 4; ++i) {
    fd_guard f(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    ::connect(f.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    fillers.push_back(std::move(f));
  }
  e.proxy.set_upstream(port);
  auto c = e.client();
  ASSERT_TRUE(send_all(c.get(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  const auto a = answer_of(c.get());
  EXPECT_EQ(a.rfind("HTTP/1.1 504 ", 0), 0u) << a;
}

// ---- failure injection: the client or the upstream vanishes after n bytes, for every n.

TEST(session, client_vanishing_at_every_byte_is_handled) {
  const std::string req = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody";
  const auto head_len = req.find("\r\n\r\n") + 4;
  env e;
  for (std::size_t n = 0; n < req.size(); ++n) {
    SCOPED_TRACE(n);
    auto c = e.client();
    ASSERT_TRUE(send_all(c.get(), req.substr(0, n)));
    if (n % 2 == 0) {
      c.reset();  // FIN
    } else {
      linger l{1, 0};  // RST
      ::setsockopt(c.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
      c.reset();
    }
    if (n >= head_len) {
      // The head was complete: the upstream gets it and then sees the connection go away.
      auto u = e.up.accept();
      ASSERT_TRUE(u);
      bool eof = false;
      const auto got = recv_to_eof(u.get(), 5s, &eof);
      EXPECT_TRUE(eof);
      EXPECT_EQ(got, req.substr(0, got.size()));
    }
  }
  EXPECT_TRUE(wait_for([&] { return e.proxy.sessions_done() == req.size(); }));
  EXPECT_FALSE(e.up.pending());
  EXPECT_FALSE(e.proxy.escaped_.load());
}

// Sends `fd` junk until the path behind it stops taking bytes (nothing sendable for 300 ms),
// at most `cap` bytes; returns how many went out.
std::size_t send_until_stalled(int fd, std::size_t cap = 256u << 20) {
  const std::string chunk(64 * 1024, 'x');
  std::size_t sent = 0;
  while (sent < cap) {
    const auto n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) break;
    if (!wait_fd(fd, POLLOUT, 300ms)) break;
  }
  return sent;
}

// The client half-closes mid-body while the response side is busy writing to it (the client
// is not reading): the request's failure cancels no pending upstream read then, and the response
// side must not go back to waiting on an upstream that waits for the rest of the body.
TEST(session, request_failing_while_response_writes_to_client_ends_the_exchange) {
  auto cfg = fast_config();
  cfg.idle_timeout = 60s;
  env e(cfg);
  auto c = e.client();
  const std::string head = "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n";
  ASSERT_TRUE(send_all(c.get(), head + "0123456789"));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  EXPECT_EQ(recv_n(u.get(), head.size() + 10), head + "0123456789");
  // A long response, sent until every buffer on the way to the silent client is full.
  ASSERT_TRUE(send_all(u.get(), "HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n"));
  ASSERT_GT(send_until_stalled(u.get()), 0u);
  ::shutdown(c.get(), SHUT_WR);  // the request body ends early
  bool eof = false;
  const auto start = std::chrono::steady_clock::now();
  const auto got = recv_to_eof(c.get(), 15s, &eof);
  EXPECT_TRUE(eof) << "client connection still open after " << got.size() << " bytes";
  EXPECT_LT(std::chrono::steady_clock::now() - start, 15s);
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  // The upstream connection is closed too.
  eof = false;
  recv_to_eof(u.get(), 5s, &eof);
  EXPECT_TRUE(eof);
  EXPECT_TRUE(wait_for([&] { return e.proxy.sessions_done() == 1; }));
  EXPECT_FALSE(e.proxy.escaped_.load());
}

// The upstream answers before reading the request body and then stops reading: the request
// side is blocked writing to the upstream, so cancelling the client read reaches nothing. The
// finished exchange must still end the connection instead of waiting for the idle timeout.
TEST(session, early_response_while_request_blocks_on_upstream_ends_the_connection) {
  auto cfg = fast_config();
  cfg.idle_timeout = 60s;
  env e(cfg);
  auto c = e.client();
  const std::string head = "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000\r\n\r\n";
  ASSERT_TRUE(send_all(c.get(), head));
  auto u = e.up.accept();
  ASSERT_TRUE(u);
  EXPECT_EQ(recv_head(u.get()), head);
  // The body fills every buffer on the way to the upstream, which reads none of it.
  ASSERT_GT(send_until_stalled(c.get()), 0u);
  ASSERT_TRUE(send_all(u.get(), ok5));
  bool eof = false;
  const auto got = recv_to_eof(c.get(), 15s, &eof);
  EXPECT_TRUE(eof) << "client connection still open";
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("hello"), std::string::npos) << got;
  EXPECT_TRUE(wait_for([&] { return e.proxy.sessions_done() == 1; }));
  EXPECT_FALSE(e.proxy.escaped_.load());
}

TEST(session, upstream_vanishing_at_every_byte_is_handled) {
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
  const auto head_len = resp.find("\r\n\r\n") + 4;
  env e;
  for (std::size_t n = 0; n < resp.size(); ++n) {
    SCOPED_TRACE(n);
    auto c = e.client();
    ASSERT_TRUE(send_all(c.get(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    auto u = e.up.accept();
    ASSERT_TRUE(u);
    recv_head(u.get());
    ASSERT_TRUE(send_all(u.get(), resp.substr(0, n)));
    u.reset();
    const auto a = answer_of(c.get());
    if (n < head_len) {
      EXPECT_EQ(a.rfind("HTTP/1.1 502 ", 0), 0u) << a;
    } else {
      // Head already passed on: the client gets the bytes and then a closed connection.
      EXPECT_EQ(a, resp.substr(0, n));
    }
  }
  EXPECT_FALSE(e.proxy.escaped_.load());
}

TEST(session, idle_keep_alive_connections_hold_little_heap) {
  // The proxy runs in every pod: an idle keep-alive connection (one exchange done, upstream
  // kept) must not hold its request or response buffer (80 KiB each here), parser state or
  // exchange frame. The bound leaves room for allocator rounding and sanitizer builds.
  auto cfg = fast_config();
  cfg.max_header_bytes = 65536;
  cfg.header_timeout = 60s;  // idle keep-alive connections stay open throughout
  cfg.trace_buffer = 0;
  env e(cfg);
  const std::string body(1024, 'x');
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n" + body;
  const std::string req = "GET /1k HTTP/1.1\r\nHost: svc\r\n\r\n";
  std::vector<fd_guard> held;
  auto one = [&] {
    auto c = e.client();
    ASSERT_TRUE(send_all(c.get(), req));
    auto u = e.up.accept();
    ASSERT_TRUE(u);
    ASSERT_EQ(recv_head(u.get()), req);
    ASSERT_TRUE(send_all(u.get(), resp));
    ASSERT_EQ(recv_n(c.get(), resp.size()), resp);
    held.push_back(std::move(c));
    held.push_back(std::move(u));
  };
  one();  // first use: pool, metrics and allocator caches
  ASSERT_TRUE(wait_for([&] { return heap_in_use() > 0; }));
  const std::size_t base = heap_in_use();
  constexpr std::size_t n = 100;
  for (std::size_t i = 0; i < n; ++i) {
    one();
    if (HasFatalFailure()) return;
  }
  constexpr std::size_t budget = 6144;
  std::size_t per = 0;
  EXPECT_TRUE(wait_for(
      [&] {
        const std::size_t now = heap_in_use();
        per = now > base ? (now - base) / n : 0;
        return per <= budget;
      },
      5s))
      << per << " bytes of heap per idle connection";
  EXPECT_EQ(e.proxy.sessions_done(), 0u);
}

TEST(session, error_response_format) {
  EXPECT_EQ(proxy::http::error_response(400, "bad request: x"),
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 32\r\nConnection: close\r\n\r\ndevspaces-proxy: bad request: x\n");
}

}  // namespace
}  // namespace devspaces::test::http
