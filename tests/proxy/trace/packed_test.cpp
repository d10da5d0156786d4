#include "proxy/trace/packed.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proxy/trace/exchange_recorder.hpp"
#include "proxy/trace/hub.hpp"

namespace devspaces::test {
namespace {

namespace packed = proxy::trace::packed;
using packed::item;
using proxy::field_view;
using proxy::trace::exchange_recorder;
using proxy::trace::message_side;

// A packed record with every kind of item, written as the recorder writes them.
void write_sample(packed::buffer& b) {
  packed::writer w(b);
  w.put(item::begin, std::string_view("abc"), std::int64_t{1'700'000'000'000'000'000},
        std::uint8_t{1}, std::string_view("pod-a"), std::string_view("azureuser"));
  w.put(item::client, std::string_view("10.0.0.1:5000"));
  w.put(item::original_dst, std::string_view("10.96.0.10:80"));
  w.put(item::protocol, std::string_view("h2"), std::uint8_t{1}, std::int32_t{7});
  w.put(item::request_line, std::string_view("GET"), std::string_view("/x"), std::string_view("2"));
  w.put(item::host, std::string_view("serviceb"));
  const std::vector<field_view> fields{{"accept", "*/*"}, {"x-empty", ""}};
  w.fields(item::request_field, fields);
  w.put(item::route, std::uint8_t{1}, std::string_view("azureuser"),
        static_cast<std::uint8_t>(proxy::routing::route_source::baggage), std::uint8_t{0},
        std::string_view());
  w.put(item::upstream, std::string_view("10.244.1.7:8080"));
  w.put(item::request_body, std::string_view("ab"));
  w.put(item::request_body, std::string_view("cd"));
  w.put(item::response_head, std::int32_t{200}, std::string_view("OK"), std::string_view("2"));
  w.fields(item::response_field, std::vector<field_view>{{"content-type", "text/plain"}});
  w.put(item::response_body, std::string_view("hello"));
  w.fields(item::trailer, std::vector<field_view>{{"grpc-status", "0"}});
  w.put(item::end, std::int64_t{42}, std::uint8_t{0}, std::string_view(), std::uint64_t{10},
        std::uint8_t{0}, std::uint64_t{5}, std::uint8_t{0});
}

TEST(PackedRecord, EveryItemUnpacksIntoItsField) {
  packed::buffer b;
  write_sample(b);
  proxy::trace::record r;
  ASSERT_TRUE(packed::unpack(b.view(), nullptr, r));
  EXPECT_EQ(r.id, "abc");
  EXPECT_EQ(r.ts.time_since_epoch().count(), 1'700'000'000'000'000'000);
  EXPECT_TRUE(r.outbound);
  EXPECT_EQ(r.pod, "pod-a");
  EXPECT_EQ(r.space, "azureuser");
  EXPECT_EQ(r.client.view(), "10.0.0.1:5000");
  EXPECT_EQ(r.original_dst.view(), "10.96.0.10:80");
  EXPECT_EQ(r.upstream.view(), "10.244.1.7:8080");
  EXPECT_EQ(r.protocol, "h2");
  EXPECT_EQ(r.stream_id, 7);
  EXPECT_EQ(r.request.method, "GET");
  EXPECT_EQ(r.request.target, "/x");
  EXPECT_EQ(r.request.host, "serviceb");
  ASSERT_EQ(r.request.headers.size(), 2u);
  EXPECT_EQ(r.request.headers[1].first, "x-empty");
  EXPECT_EQ(r.request.headers[1].second, "");
  EXPECT_EQ(r.route_as, "azureuser");
  EXPECT_EQ(r.route_as_source, proxy::routing::route_source::baggage);
  EXPECT_FALSE(r.trace_id.has_value());
  EXPECT_EQ(r.request.body.prefix, "abcd");
  EXPECT_EQ(r.request.body.total_bytes, 10u);
  EXPECT_TRUE(r.request.body.truncated);
  ASSERT_TRUE(r.response.has_value());
  EXPECT_EQ(r.response->status, 200);
  EXPECT_EQ(r.response->headers.size(), 1u);
  EXPECT_EQ(r.response->body.prefix, "hello");
  EXPECT_FALSE(r.response->body.truncated);
  ASSERT_EQ(r.response->trailers.size(), 1u);
  EXPECT_EQ(r.response->trailers[0].first, "grpc-status");
  EXPECT_EQ(r.duration.count(), 42);
  EXPECT_FALSE(r.error.has_value());
  EXPECT_NE(r.route, nullptr);  // no decision: the shared "none" decision, never null
}

TEST(PackedRecord, ACutBufferOrAnUnknownItemIsReportedNotReadPast) {
  packed::buffer b;
  write_sample(b);
  const auto whole = b.view();
  // Every cut short of the whole record fails (each item's fields are checked as read).
  for (std::size_t n = 1; n < whole.size(); ++n) {
    proxy::trace::record r;
    const bool ok = packed::unpack(whole.substr(0, n), nullptr, r);
    // A cut that falls exactly between two items is a shorter, valid record.
    if (ok) {
      EXPECT_EQ(r.id, "abc") << n;
    }
  }
  std::string bad(whole);
  bad.push_back(static_cast<char>(0xEE));
  proxy::trace::record r;
  EXPECT_FALSE(packed::unpack(bad, nullptr, r));
  EXPECT_EQ(r.id, "abc");  // what came before the unknown item is kept
  proxy::trace::record cut;
  EXPECT_FALSE(packed::unpack(whole.substr(0, 5), nullptr, cut));  // inside begin's id length
}

TEST(PackedRecord, TheBufferGrowsAndKeepsItsStorageWhenClearedUpToABound) {
  packed::buffer b;
  const std::string big(5000, 'x');
  packed::writer(b).put(item::request_body, std::string_view(big));
  EXPECT_EQ(b.view().size(), 1 + 4 + big.size());
  const char* storage = b.view().data();
  b.clear(16 * 1024);
  EXPECT_TRUE(b.empty());
  packed::writer(b).put(item::host, std::string_view("h"));
  EXPECT_EQ(b.view().data(), storage);
  EXPECT_EQ(b.view(), std::string_view("\x07\x01\0\0\0h", 6));

  // Storage beyond the bound is given back.
  packed::writer(b).put(item::request_body, std::string_view(std::string(40'000, 'y')));
  b.clear(16 * 1024);
  packed::writer(b).put(item::host, std::string_view("h"));
  EXPECT_EQ(b.view().size(), 6u);
  EXPECT_LT(b.capacity(), 16u * 1024);
}

TEST(PackedRecord, EndpointsArePackedAsSocketAddressesAndFormattedWhenUnpacked) {
  using tcp = boost::asio::ip::tcp;
  const tcp::endpoint v4{boost::asio::ip::make_address("10.0.0.7"), 80};
  const tcp::endpoint v6{boost::asio::ip::make_address("fd00::5"), 40000};
  packed::buffer b;
  packed::writer w(b);
  w.put(item::client_address, packed::address_bytes(v6));
  w.put(item::original_dst_address, packed::address_bytes(v4));
  w.put(item::upstream_address, packed::address_bytes(v4));
  proxy::trace::record r;
  ASSERT_TRUE(packed::unpack(b.view(), nullptr, r));
  EXPECT_EQ(r.client.view(), "[fd00::5]:40000");
  EXPECT_EQ(r.original_dst.view(), "10.0.0.7:80");
  EXPECT_EQ(r.upstream.view(), "10.0.0.7:80");

  // Bytes that are no socket address of their family's size are refused.
  auto wrong = std::string(packed::address_bytes(v4));
  wrong.pop_back();
  packed::buffer bad;
  packed::writer(bad).put(item::client_address, std::string_view(wrong));
  proxy::trace::record rb;
  EXPECT_FALSE(packed::unpack(bad.view(), nullptr, rb));
  EXPECT_TRUE(rb.client.empty());
}

std::string body_of(const std::string& json, const std::string& side) {
  const auto at = json.find("\"" + side + "\":{");
  return at == std::string::npos ? std::string() : json.substr(at);
}

// The body policy is decided as the fields arrive: a form post's prefix is never written, and a
// Content-Type that comes later (in the request's trailers) still withholds what was kept.
TEST(PackedRecord, TheBodyPolicyHoldsForFieldsThatArriveLate) {
  proxy::trace::hub h({.buffer = 4, .json = {}, .follower_queue = 8}, nullptr);
  exchange_recorder rec(&h, 64);
  rec.begin({false, "pod-a", "default", "10.0.0.1:5000", "10.0.0.2:80"});
  rec.on_request_head({"POST", "/login", "1.1", "login", {}});
  rec.on_body(message_side::request, std::string_view("user=alice&password=x"));
  const field_view late[] = {{"Content-Type", "application/x-www-form-urlencoded"}};
  rec.on_trailers(message_side::request, late);
  rec.finish(std::chrono::microseconds(1), nullptr);
  const auto json = h.last(1).at(0).json->text();
  EXPECT_NE(
      json.find("\"body_bytes\":21,\"body\":\"\",\"body_truncated\":true,\"body_omitted\":true"),
      std::string::npos)
      << json;
  EXPECT_EQ(json.find("password"), std::string::npos) << json;

  // Only the first Content-Type decides; an empty body is not marked omitted.
  rec.begin({false, "pod-a", "default", "10.0.0.1:5000", "10.0.0.2:80"});
  const field_view two[] = {{"content-type", "text/plain"},
                            {"content-type", "multipart/form-data; boundary=x"}};
  rec.on_request_head({"POST", "/", "1.1", "h", two});
  rec.on_body(message_side::request, std::string_view("kept"));
  const field_view form[] = {{"content-type", "multipart/form-data"}};
  rec.on_response_head({200, "OK", "1.1", form});
  rec.finish(std::chrono::microseconds(1), nullptr);
  const auto second = h.last(1).at(0).json->text();
  EXPECT_NE(second.find("\"body\":\"kept\""), std::string::npos) << second;
  EXPECT_EQ(body_of(second, "response").find("body_omitted"), std::string::npos) << second;
}

}  // namespace
}  // namespace devspaces::test
