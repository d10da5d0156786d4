// GET /traces on the real admin server: last, follow, SSE, many followers, loopback only.
#include <ifaddrs.h>
#include <netinet/in.h>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "proxy/admin/admin_server.hpp"
#include "proxy/admin/traces_endpoint.hpp"
#include "proxy/trace/hub.hpp"
#include "tests/integration/trace_test_util.hpp"
#include "tests/proxy/trace/sample_records.hpp"
#include "tests/support/test_support.hpp"

namespace devspaces::test {
namespace {

namespace asio = boost::asio;
namespace trace = proxy::trace;
using asio::ip::tcp;

trace::record sample(int n) {
  auto r = outbound_exchange("r" + std::to_string(n), "/n/" + std::to_string(n));
  r.outbound = n % 2 == 1;
  r.request.headers.emplace_back("Authorization", "secret");
  return r;
}

std::string id_of(const std::string& json_line) {
  auto v = boost::json::parse(json_line);
  return std::string(v.as_object().at("id").as_string());
}

std::vector<std::string> ids_of(const std::string& ndjson) {
  std::vector<std::string> out;
  for (const auto& l : split_lines(ndjson)) out.push_back(id_of(l));
  return out;
}

class TraceStream : public ::testing::Test {
 protected:
  void SetUp() override { start("127.0.0.1"); }

  void start(const std::string& host) {
    hub_ = std::make_unique<trace::hub>(
        trace::hub_options{.buffer = 50, .json = {{"authorization"}}, .follower_queue = 256},
        &metrics_);
    proxy::admin::admin_hooks hooks;
    hooks.traces = hub_.get();
    server_ = std::make_unique<proxy::admin::admin_server>(metrics_, hooks);
    auto err = server_->bind(host, 0);
    ASSERT_FALSE(err) << *err;
    server_->start();
  }

  void TearDown() override {
    if (hub_) hub_->close();
    if (server_) server_->stop();
  }

  tcp::endpoint endpoint(const char* addr = "127.0.0.1") const {
    return {asio::ip::make_address(addr), server_->port()};
  }

  static std::string get(const std::string& target, const std::string& extra = "") {
    return "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extra + "\r\n";
  }

  proxy::proxy_metrics metrics_;
  std::unique_ptr<trace::hub> hub_;
  std::unique_ptr<proxy::admin::admin_server> server_;
};

TEST_F(TraceStream, LastNReturnsTheNewestRecordsAsNdjson) {
  for (int i = 0; i < 5; ++i) hub_->push(sample(i));
  raw_http c(endpoint());
  c.send(get("/traces?last=3"));
  ASSERT_TRUE(c.read_to_close());
  EXPECT_NE(c.head().find("HTTP/1.1 200 OK"), std::string::npos) << c.head();
  EXPECT_NE(c.head().find("Content-Type: application/x-ndjson"), std::string::npos);
  EXPECT_EQ(ids_of(c.body()), (std::vector<std::string>{"r2", "r3", "r4"}));
  EXPECT_NE(c.body().find("[\"authorization\",\"[redacted]\"]"), std::string::npos);
  EXPECT_EQ(c.body().find("secret"), std::string::npos);
}

TEST_F(TraceStream, DefaultIsTheLastHundredBoundedByTheBuffer) {
  for (int i = 0; i < 120; ++i) hub_->push(sample(i));
  raw_http c(endpoint());
  c.send(get("/traces"));
  ASSERT_TRUE(c.read_to_close());
  const auto ids = ids_of(c.body());
  ASSERT_EQ(ids.size(), 50u);  // --trace-buffer 50
  EXPECT_EQ(ids.front(), "r70");
  EXPECT_EQ(ids.back(), "r119");
}

TEST_F(TraceStream, BadLastIs400) {
  raw_http c(endpoint());
  c.send(get("/traces?last=ten"));
  ASSERT_TRUE(c.read_to_close());
  EXPECT_NE(c.head().find("HTTP/1.1 400"), std::string::npos) << c.head();
}

TEST_F(TraceStream, FollowReplaysThenStreamsToManyFollowers) {
  for (int i = 0; i < 4; ++i) hub_->push(sample(i));
  raw_http a(endpoint());
  raw_http b(endpoint());
  a.send(get("/traces?follow=1&last=2"));
  b.send(get("/traces?follow=1&last=0"));
  ASSERT_TRUE(a.read_until([&](const std::string&) { return split_lines(a.body()).size() == 2; }));
  ASSERT_TRUE(wait_for([&] { return hub_->followers() == 2; }));
  EXPECT_NE(a.head().find("Transfer-Encoding: chunked"), std::string::npos) << a.head();
  EXPECT_NE(a.head().find("Content-Type: application/x-ndjson"), std::string::npos);

  for (int i = 4; i < 10; ++i) hub_->push(sample(i));
  ASSERT_TRUE(a.read_until([&](const std::string&) { return split_lines(a.body()).size() == 8; }));
  ASSERT_TRUE(b.read_until([&](const std::string&) { return split_lines(b.body()).size() == 6; }));
  EXPECT_EQ(ids_of(a.body()),
            (std::vector<std::string>{"r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9"}));
  EXPECT_EQ(ids_of(b.body()), (std::vector<std::string>{"r4", "r5", "r6", "r7", "r8", "r9"}));

  // A follower that goes away is unsubscribed; the other one keeps streaming.
  a.socket().close();
  ASSERT_TRUE(wait_for([&] { return hub_->followers() == 1; }));
  hub_->push(sample(10));
  ASSERT_TRUE(b.read_until([&](const std::string&) { return split_lines(b.body()).size() == 7; }));
  EXPECT_EQ(ids_of(b.body()).back(), "r10");
}

TEST_F(TraceStream, ServerSentEventsWithAcceptHeader) {
  hub_->push(sample(0));
  raw_http c(endpoint());
  c.send(get("/traces?follow=1", "Accept: text/event-stream\r\n"));
  ASSERT_TRUE(c.read_until([&](const std::string&) { return count_of(c.body(), "\n\n") == 1; }));
  EXPECT_NE(c.head().find("Content-Type: text/event-stream"), std::string::npos) << c.head();
  hub_->push(sample(1));
  ASSERT_TRUE(c.read_until([&](const std::string&) { return count_of(c.body(), "\n\n") == 2; }));
  const auto events = c.body();
  EXPECT_EQ(events.rfind("id: 1\ndata: {\"v\":1,\"id\":\"r0\"", 0), 0u) << events;
  EXPECT_NE(events.find("\n\nid: 2\ndata: {\"v\":1,\"id\":\"r1\""), std::string::npos) << events;
  // Every data line is one complete record.
  for (const auto& line : split_lines(events)) {
    if (line.rfind("data: ", 0) == 0) {
      EXPECT_NO_THROW(boost::json::parse(line.substr(6)));
    }
  }
}

TEST_F(TraceStream, ServerSentEventsWithoutFollow) {
  hub_->push(sample(0));
  hub_->push(sample(1));
  raw_http c(endpoint());
  c.send(get("/traces", "Accept: text/event-stream\r\n"));
  ASSERT_TRUE(c.read_to_close());
  EXPECT_NE(c.head().find("Content-Type: text/event-stream"), std::string::npos);
  EXPECT_EQ(count_of(c.body(), "data: {\"v\":1"), 2u);
}

TEST_F(TraceStream, ClosingTheHubEndsTheChunkedStream) {
  raw_http c(endpoint());
  c.send(get("/traces?follow=1"));
  ASSERT_TRUE(wait_for([&] { return hub_->followers() == 1; }));
  hub_->close();
  ASSERT_TRUE(c.read_to_close());
  EXPECT_NE(c.data().find("\r\n0\r\n\r\n"), std::string::npos);
}

TEST(TraceLoopback, Classification) {
  using proxy::admin::is_loopback;
  EXPECT_TRUE(is_loopback(asio::ip::make_address("127.0.0.1")));
  EXPECT_TRUE(is_loopback(asio::ip::make_address("127.3.2.1")));
  EXPECT_TRUE(is_loopback(asio::ip::make_address("::1")));
  EXPECT_TRUE(is_loopback(asio::ip::make_address("::ffff:127.0.0.7")));
  // The proxy's own inbound passthrough sources carry clients from outside the pod.
  EXPECT_FALSE(is_loopback(asio::ip::make_address("127.0.0.6")));
  EXPECT_FALSE(is_loopback(asio::ip::make_address("::ffff:127.0.0.6")));
  EXPECT_FALSE(is_loopback(asio::ip::make_address("::6")));
  EXPECT_FALSE(is_loopback(asio::ip::make_address("10.0.0.1")));
  EXPECT_FALSE(is_loopback(asio::ip::make_address("::ffff:10.0.0.1")));
  EXPECT_FALSE(is_loopback(asio::ip::make_address("fe80::1")));
  EXPECT_FALSE(is_loopback(asio::ip::make_address("128.0.0.1")));
}

TEST(TraceQuery, Parsing) {
  using proxy::admin::parse_traces_query;
  auto q = parse_traces_query("/traces", "");
  EXPECT_EQ(q.last, 100u);
  EXPECT_FALSE(q.follow);
  EXPECT_FALSE(q.sse);
  q = parse_traces_query("/traces?follow=1&last=7", "text/event-stream");
  EXPECT_EQ(q.last, 7u);
  EXPECT_TRUE(q.follow);
  EXPECT_TRUE(q.sse);
  EXPECT_TRUE(parse_traces_query("/traces?follow", "").follow);
  EXPECT_FALSE(parse_traces_query("/traces?follow=0", "").follow);
  EXPECT_TRUE(parse_traces_query("/traces?last=-1", "").error);
  EXPECT_TRUE(parse_traces_query("/traces?last=", "").error);
}

// The v4-mapped and ::1 clients of a dual-stack admin socket are loopback; a client coming
// from a non-loopback address of this host gets 403.
class TraceStreamDualStack : public TraceStream {
 protected:
  void SetUp() override { start("::"); }
};

std::optional<std::string> local_non_loopback_v4() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return std::nullopt;
  std::optional<std::string> found;
  for (auto* i = list; i && !found; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    auto a =
        asio::ip::address_v4(ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr));
    if (!a.is_loopback() && !a.is_unspecified()) found = a.to_string();
  }
  freeifaddrs(list);
  return found;
}

TEST_F(TraceStreamDualStack, LoopbackOnly) {
  hub_->push(sample(0));
  for (const char* addr : {"127.0.0.1", "::1"}) {
    raw_http c(endpoint(addr));
    c.send(get("/traces"));
    ASSERT_TRUE(c.read_to_close());
    EXPECT_NE(c.head().find("HTTP/1.1 200"), std::string::npos) << addr << c.head();
  }
  const auto other = local_non_loopback_v4();
  if (!other) GTEST_SKIP() << "no non-loopback IPv4 address on this host";
  raw_http c(endpoint(other->c_str()));
  c.send(get("/traces"));
  ASSERT_TRUE(c.read_to_close());
  EXPECT_NE(c.head().find("HTTP/1.1 403"), std::string::npos) << c.head();
  EXPECT_EQ(c.body().find("{\"v\":1"), std::string::npos);
}

}  // namespace
}  // namespace devspaces::test
