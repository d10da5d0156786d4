#include "proxy/trace/exchange_recorder.hpp"

#include <gtest/gtest.h>

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
