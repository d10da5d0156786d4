#include "proxy/trace/exchange_recorder.hpp"

#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

#include "proxy/trace/hub.hpp"

namespace devspaces::test {
namespace {

using proxy::field_view;
using proxy::trace::exchange_recorder;
using proxy::trace::message_side;

std::string recorded_json(proxy::trace::hub& h) {
  const auto last = h.last(1);
  return last.empty() ? std::string() : last[0].json->text();
}

TEST(ExchangeRecorder, ResponseTrailersGoToTheTrailersAndTheStreamIsNamed) {
  proxy::trace::hub h({.buffer = 4, .json = {}, .follower_queue = 8}, nullptr);
  exchange_recorder rec(&h, 64);
  rec.begin({true, "pod-a", "azureuser", "10.0.0.1:5000", "10.0.0.2:50051"});
  ASSERT_TRUE(rec.active());
  rec.on_protocol("h2", 3);
  const field_view req[] = {{"content-type", "application/grpc"}};
  rec.on_request_head({"POST", "/pkg.Svc/Call", "2", "serviceb", req});
  const field_view resp[] = {{"content-type", "application/grpc"}};
  rec.on_response_head({200, {}, "2", resp});
  const field_view trailers[] = {{"grpc-status", "0"}, {"grpc-message", "ok"}};
  rec.on_trailers(message_side::response, trailers);
  rec.finish(std::chrono::microseconds(42), nullptr);
  EXPECT_FALSE(rec.active());

  const auto json = recorded_json(h);
  EXPECT_NE(json.find("\"protocol\":\"h2\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"stream_id\":3"), std::string::npos) << json;
  EXPECT_NE(json.find("\"trailers\":[[\"grpc-status\",\"0\"],[\"grpc-message\",\"ok\"]]"),
            std::string::npos)
      << json;
  // The response's own headers do not gain the trailer fields.
  EXPECT_NE(json.find("\"headers\":[[\"content-type\",\"application/grpc\"]],"), std::string::npos)
      << json;
}

TEST(ExchangeRecorder, TracingOffRecordsNothingAndEveryCallIsANoOp) {
  exchange_recorder rec(nullptr, 64);
  EXPECT_FALSE(rec.wanted());
  rec.begin({false, "pod-a", "default", "10.0.0.1:5000", "10.0.0.2:80"});
  EXPECT_FALSE(rec.active());
  rec.on_protocol("h2", 1);
  const field_view trailers[] = {{"grpc-status", "0"}};
  rec.on_trailers(message_side::response, trailers);
  rec.finish(std::chrono::microseconds(1), "client_reset");
  EXPECT_FALSE(rec.active());
}

}  // namespace
}  // namespace devspaces::test

namespace devspaces::test {
namespace {

using boost::asio::ip::make_address;
using proxy::request_view;
using proxy::response_view;
using tcp = boost::asio::ip::tcp;

// One exchange as the data path reports it, to record both ways: through the recorder (in
// place, on a record the hub may reuse) and as a record filled field by field and pushed.
struct exchange_case {
  bool outbound = true;
  tcp::endpoint client;
  tcp::endpoint original_dst;
  std::optional<tcp::endpoint> upstream;
  std::string protocol;  // empty: HTTP/1 (not reported)
  std::optional<std::int32_t> stream_id;
  std::string method, target, version, host;
  std::vector<field_view> request_fields;
  bool head_complete = true;  // false: only the request line was parsed
  bool routed = false;
  std::optional<std::string> route_as;
  proxy::routing::route_source source = proxy::routing::route_source::none;
  proxy::routing::route_decision decision;
  std::optional<field_view> added;
  std::optional<std::string> trace_id;
  std::string request_body;
  std::vector<field_view> request_trailers;
  bool responded = false;
  int status = 0;
  std::string reason, response_version;
  std::vector<field_view> response_fields;
  std::string response_body;
  std::vector<field_view> response_trailers;
  std::int64_t duration_us = 0;
  const char* error = nullptr;
};

constexpr std::size_t body_limit = 16;

void record_through_recorder(exchange_recorder& rec, const exchange_case& c) {
  rec.begin(
      proxy::trace::exchange_endpoints{c.outbound, "pod-a", "azureuser", c.client, c.original_dst});
  ASSERT_TRUE(rec.active());
  if (!c.protocol.empty()) rec.on_protocol(c.protocol, c.stream_id);
  if (c.head_complete) {
    rec.on_request_head({c.method, c.target, c.version, c.host, c.request_fields});
  } else {
    rec.on_request_line(c.method, c.target, c.version);
  }
  if (c.routed)
    rec.on_route(c.route_as, c.source,
                 std::make_shared<const proxy::routing::route_decision>(c.decision), c.added,
                 c.trace_id);
  if (c.upstream) rec.on_upstream(*c.upstream);
  rec.on_body(message_side::request, std::span<const char>(c.request_body));
  if (!c.request_trailers.empty()) rec.on_trailers(message_side::request, c.request_trailers);
  if (c.responded) {
    rec.on_response_head({c.status, c.reason, c.response_version, c.response_fields});
    // In two pieces, as a body streams.
    const std::string_view body = c.response_body;
    rec.on_body(message_side::response, std::span<const char>(body.substr(0, body.size() / 2)));
    rec.on_body(message_side::response, std::span<const char>(body.substr(body.size() / 2)));
    if (!c.response_trailers.empty()) rec.on_trailers(message_side::response, c.response_trailers);
  }
  rec.finish(std::chrono::microseconds(c.duration_us), c.error);
}

std::string text(const tcp::endpoint& ep) {
  const auto a = ep.address();
  return (a.is_v4() ? a.to_string() : "[" + a.to_string() + "]") + ":" + std::to_string(ep.port());
}

proxy::trace::header_list fields(const std::vector<field_view>& f) {
  proxy::trace::header_list out;
  for (const auto& [n, v] : f) out.emplace_back(n, v);
  return out;
}

proxy::trace::record filled(const exchange_case& c, std::string id,
                            std::chrono::system_clock::time_point ts) {
  proxy::trace::record r;
  r.id = std::move(id);
  r.ts = ts;
  r.duration = std::chrono::microseconds(c.duration_us);
  r.outbound = c.outbound;
  r.pod = "pod-a";
  r.space = "azureuser";
  r.client = text(c.client);
  r.original_dst = text(c.original_dst);
  if (c.upstream) r.upstream = text(*c.upstream);
  r.protocol = c.protocol;
  r.stream_id = c.stream_id;
  r.request.method = c.method;
  r.request.target = c.target;
  r.request.version = c.version;
  if (c.head_complete) {
    r.request.host = c.host;
    r.request.headers = fields(c.request_fields);
  }
  if (c.routed) {
    if (c.added) r.request.headers.emplace_back(c.added->first, c.added->second);
    r.route_as = c.route_as;
    r.route_as_source = c.source;
    r.route = std::make_shared<const proxy::routing::route_decision>(c.decision);
    r.trace_id = c.trace_id;
  }
  r.request.body.append(c.request_body, body_limit);
  for (const auto& [n, v] : c.request_trailers) r.request.headers.emplace_back(n, v);
  if (c.responded) {
    auto& s = r.response.emplace();
    s.status = c.status;
    s.reason = c.reason;
    s.version = c.response_version;
    s.headers = fields(c.response_fields);
    s.body.append(c.response_body, body_limit);
    s.trailers = fields(c.response_trailers);
  }
  if (c.error != nullptr) r.error = c.error;
  return r;
}

// The string value of "key":"..." in a record's JSON line.
std::string string_field(const std::string& json, std::string_view key) {
  const std::string open = "\"" + std::string(key) + "\":\"";
  const auto at = json.find(open);
  if (at == std::string::npos) return {};
  const auto start = at + open.size();
  return json.substr(start, json.find('"', start) - start);
}

// "2026-11-21T20:47:09.700123Z" back to a time point.
std::chrono::system_clock::time_point parse_ts(const std::string& s) {
  std::tm tm{};
  tm.tm_year = std::stoi(s.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(s.substr(5, 2)) - 1;
  tm.tm_mday = std::stoi(s.substr(8, 2));
  tm.tm_hour = std::stoi(s.substr(11, 2));
  tm.tm_min = std::stoi(s.substr(14, 2));
  tm.tm_sec = std::stoi(s.substr(17, 2));
  return std::chrono::system_clock::from_time_t(timegm(&tm)) +
         std::chrono::microseconds(std::stoi(s.substr(20, 6)));
}

void respond(exchange_case& c, int status, std::string reason, std::string version,
             std::vector<field_view> fields, std::string body) {
  c.responded = true;
  c.status = status;
  c.reason = std::move(reason);
  c.response_version = std::move(version);
  c.response_fields = std::move(fields);
  c.response_body = std::move(body);
}

std::vector<exchange_case> cases() {
  using proxy::routing::decision_kind;
  using proxy::routing::route_source;
  std::vector<exchange_case> out;

  exchange_case full;  // routed HTTP/1 with every part
  full.client = {make_address("10.0.0.1"), 5000};
  full.original_dst = {make_address("10.96.0.10"), 80};
  full.upstream = tcp::endpoint{make_address("10.244.1.7"), 8080};
  full.method = "POST";
  full.target = "/api/orders?id=7";
  full.version = "1.1";
  full.host = "serviceb";
  full.request_fields = {{"Host", "serviceb"},
                         {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) long enough"},
                         {"Authorization", "Bearer a-token-to-redact"},
                         {"Content-Type", "application/json"}};
  full.routed = true;
  full.route_as = "azureuser";
  full.source = route_source::header;
  full.decision.service = "serviceb";
  full.decision.decision = decision_kind::parent;
  full.decision.level = 1;
  full.decision.tried = {{"serviceb.azureuser.svc.cluster.local", "nxdomain"},
                         {"serviceb.default.svc.cluster.local", "10.244.1.7"}};
  full.added = field_view{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"};
  full.trace_id = "0af7651916cd43dd8448eb211c80319c";
  full.request_body = "{\"item\":\"a \\\"quoted\\\" name\",\"n\":1234567890}";
  respond(full, 201, "Created", "1.1",
          {{"Content-Type", "text/plain; charset=utf-8"},
           {"Set-Cookie", "session=abcdefghijklmnopqrstuvwxyz"},
           {"Transfer-Encoding", "chunked"}},
          "caf\xc3\xa9 ok\n");
  full.response_trailers = {{"x-checksum", "12345678901234567890"}};
  full.duration_us = 4210;
  out.push_back(full);

  exchange_case cut;  // the client went away after the request line
  cut.outbound = false;
  cut.client = {make_address("fd00::7"), 40000};
  cut.original_dst = {make_address("fd00::5"), 80};
  cut.method = "GET";
  cut.target = "/";
  cut.version = "1.0";
  cut.head_complete = false;
  cut.duration_us = 12;
  cut.error = "client_reset";
  out.push_back(cut);

  exchange_case h2;  // a gRPC stream, binary bodies, trailers on both sides
  h2.client = {make_address("10.0.0.1"), 5001};
  h2.original_dst = {make_address("10.96.0.11"), 50051};
  h2.upstream = tcp::endpoint{make_address("127.0.0.1"), 50051};
  h2.protocol = "h2";
  h2.stream_id = 3;
  h2.method = "POST";
  h2.target = "/pkg.Svc/Call";
  h2.version = "2";
  h2.host = "grpc.example";
  h2.request_fields = {{"content-type", "application/grpc"}, {"te", "trailers"}};
  h2.request_body = std::string("\0\0\0\0\x05hello\xff\xfe binary and longer than the limit", 42);
  h2.request_trailers = {{"x-request-trailer", "yes"}};
  respond(h2, 200, "", "2", {{"content-type", "application/grpc"}},
          std::string("\0\0\0\0\x02hi", 7));
  h2.response_trailers = {{"grpc-status", "0"}, {"grpc-message", "ok"}};
  h2.duration_us = 987654;
  out.push_back(h2);

  exchange_case form;  // a form post: the body policy withholds the prefix; proxy's own answer
  form.client = {make_address("10.0.0.2"), 6000};
  form.original_dst = {make_address("10.96.0.12"), 443};
  form.method = "POST";
  form.target = "/login";
  form.version = "1.1";
  form.host = "login.example";
  form.request_fields = {{"Content-Type", "application/x-www-form-urlencoded"}};
  form.request_body = "user=alice&password=hunter2";
  form.routed = true;
  form.decision.decision = decision_kind::original;
  respond(form, 502, "Bad Gateway", "1.1",
          {{"content-type", "text/plain; charset=utf-8"},
           {"content-length", "26"},
           {"connection", "close"}},
          "upstream connect refused\r\n");
  form.duration_us = 3;
  form.error = "upstream_connect_refused";
  out.push_back(form);
  return out;
}

TEST(ExchangeRecorder, ARecordBuiltInPlaceSerialisesAsTheSameRecordFilledAndPushed) {
  const proxy::trace::json_options opts{{"authorization", "set-cookie"}};
  // A ring of 1: a record leaves it at the second exchange after its own and is then reused.
  // Two unread exchanges of case `before` come first, so case `c` is recorded on a record
  // that held `before` and was never serialised (reading a record empties it).
  proxy::trace::hub h({.buffer = 1, .json = opts, .follower_queue = 8}, nullptr);
  proxy::trace::hub reference({.buffer = 1, .json = opts, .follower_queue = 8}, nullptr);
  exchange_recorder rec(&h, body_limit);
  const auto all = cases();
  for (std::size_t b = 0; b < all.size(); ++b) {
    for (std::size_t i = 0; i < all.size(); ++i) {
      record_through_recorder(rec, all[b]);
      record_through_recorder(rec, all[b]);
      const auto& c = all[i];
      record_through_recorder(rec, c);
      const auto got = recorded_json(h);
      ASSERT_FALSE(got.empty());
      reference.push(filled(c, string_field(got, "id"), parse_ts(string_field(got, "ts"))));
      EXPECT_EQ(got, recorded_json(reference)) << "case " << i << " after case " << b;
    }
  }
}

TEST(ExchangeRecorder, RecordsAFollowerStillHoldsAreNotReused) {
  proxy::trace::hub h({.buffer = 1, .json = {}, .follower_queue = 64}, nullptr);
  boost::asio::io_context ioc;
  std::vector<proxy::trace::entry> replay;
  auto follower = h.subscribe(ioc.get_executor(), 0, replay);
  exchange_recorder rec(&h, body_limit);
  auto c = cases()[0];
  for (int i = 0; i < 40; ++i) {
    c.target = "/n/" + std::to_string(i);
    record_through_recorder(rec, c);
  }
  std::vector<proxy::trace::entry> got;
  boost::asio::co_spawn(ioc, follower->wait(got), boost::asio::detached);
  ioc.run();
  ASSERT_EQ(got.size(), 40u);
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(string_field(got[static_cast<std::size_t>(i)].json->text(), "target"),
              "/n/" + std::to_string(i));
  }
  h.unsubscribe(follower);
}

}  // namespace
}  // namespace devspaces::test
