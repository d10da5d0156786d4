// Allocations per traced exchange, counted by replacing the global operator new in this test
// binary (its own executable, so no other test runs with the counting allocator).
#include <cstdlib>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proxy/trace/exchange_recorder.hpp"
#include "proxy/trace/hub.hpp"

namespace {
thread_local std::size_t allocations = 0;  // operator new calls on this thread
}  // namespace

// The replacements pair malloc with free; GCC reads free() in an operator delete as a mismatch.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  ++allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  return operator new(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
#pragma GCC diagnostic pop

namespace devspaces::test {
namespace {

namespace trace = proxy::trace;
namespace routing = proxy::routing;
using proxy::field_view;
using tcp = boost::asio::ip::tcp;

// What the data path hands the recorder for one keep-alive request of a routed HTTP/1 exchange
// (values longer than a string's inline buffer included), built before counting: the route
// decision (shared: the router hands out the one it remembers) and the trace id come from the
// route step.
struct inputs {
  tcp::endpoint client{boost::asio::ip::make_address("10.0.0.1"), 40312};
  tcp::endpoint original_dst{boost::asio::ip::make_address("198.18.0.1"), 8080};
  tcp::endpoint upstream{boost::asio::ip::make_address("127.0.0.1"), 8080};
  std::string body = std::string(1024, 'x');
  std::optional<std::string> route_as{"azureuser"};
  // One decision for every exchange: the router hands its remembered decision to each record.
  std::shared_ptr<const routing::route_decision> decision;
  std::vector<std::optional<std::string>> trace_ids;
};

inputs prepare(std::size_t n) {
  inputs in;
  routing::route_decision d;
  d.service = "serviceb";
  d.decision = routing::decision_kind::parent;
  d.level = 1;
  d.tried = {{"serviceb.azureuser.svc.cluster.local", "nxdomain"},
             {"serviceb.default.svc.cluster.local", "10.244.1.7"}};
  in.decision = std::make_shared<const routing::route_decision>(std::move(d));
  for (std::size_t i = 0; i < n; ++i) in.trace_ids.emplace_back("0af7651916cd43dd8448eb211c80319c");
  return in;
}

void one_exchange(trace::exchange_recorder& rec, inputs& in, std::size_t i) {
  const field_view request[] = {
      {"Host", "serviceb"},
      {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"},
      {"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
      {"azds-route-as", "azureuser"}};
  const field_view response[] = {{"Content-Type", "application/octet-stream"},
                                 {"Content-Length", "1024"},
                                 {"Date", "Mon, 07 Dec 2026 12:00:00 GMT"}};
  rec.begin(trace::exchange_endpoints{true, "servicea-7d9f-abcde", "azureuser", in.client,
                                      in.original_dst});
  rec.on_request_line("GET", "/1k", "1.1");
  rec.on_request_head({"GET", "/1k", "1.1", "serviceb", request});
  rec.on_route(in.route_as, routing::route_source::header, in.decision,
               field_view{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
               std::move(in.trace_ids[i]));
  rec.on_upstream(in.upstream);
  rec.on_response_head({200, "OK", "1.1", response});
  rec.on_body(trace::message_side::response, std::span<const char>(in.body));
  rec.finish(std::chrono::microseconds(150), nullptr);
}

TEST(RecordAllocations, ATracedExchangeNobodyReadsAllocatesNothingOnceTheRingIsFull) {
  trace::hub h({.buffer = 64, .json = {}, .follower_queue = 8}, nullptr);
  trace::exchange_recorder rec(&h, 4096);
  auto in = prepare(400);
  const std::size_t start = allocations;
  for (std::size_t i = 0; i < 200; ++i) one_exchange(rec, in, i);  // the ring fills
  const std::size_t before = allocations;
  EXPECT_GE(before - start, 64u) << "the ring's records are allocated while it fills";
  for (std::size_t i = 200; i < 400; ++i) one_exchange(rec, in, i);
  // The record and its packed buffer (endpoints, start line, fields with values longer than a
  // string's inline buffer, body prefix) come from the record the ring let go of: no
  // allocation for any of them.
  EXPECT_EQ(allocations - before, 0u) << "allocations in 200 exchanges";
  // And the records are whole: the newest one serialises with every part.
  const auto json = h.last(1).at(0).json->text();
  EXPECT_NE(json.find("\"target\":\"/1k\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"upstream\":\"127.0.0.1:8080\""), std::string::npos) << json;
  EXPECT_NE(json.find("[\"user-agent\",\"Mozilla/5.0 (X11"), std::string::npos) << json;
  EXPECT_NE(json.find("\"body_bytes\":1024"), std::string::npos) << json;
}

TEST(RecordAllocations, TracingOffAllocatesNothing) {
  trace::hub h({.buffer = 0, .json = {}, .follower_queue = 8}, nullptr);
  ASSERT_FALSE(h.wanted());
  trace::exchange_recorder rec(&h, 4096);
  auto in = prepare(100);
  const std::size_t before = allocations;
  for (std::size_t i = 0; i < 100; ++i) one_exchange(rec, in, i);
  EXPECT_EQ(allocations - before, 0u);
}

}  // namespace
}  // namespace devspaces::test
