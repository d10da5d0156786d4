#include <gtest/gtest.h>

#include "proxy/http/route_step.hpp"

namespace devspaces::proxy::http {
namespace {

TEST(upstream_connect_failed, maps_each_failure_to_its_answer) {
  const auto timeout = upstream_connect_failed(connect_failure::timeout);
  EXPECT_FALSE(timeout.next);
  EXPECT_EQ(timeout.end, exchange_end::answer);
  EXPECT_EQ(timeout.step, exchange_step::upstream);
  EXPECT_EQ(timeout.status, 504);
  EXPECT_STREQ(timeout.error, "upstream_timeout");
  const auto refused = upstream_connect_failed(connect_failure::refused);
  EXPECT_EQ(refused.status, 502);
  EXPECT_STREQ(refused.error, "upstream_connect_refused");
  EXPECT_EQ(refused.reason, "bad gateway: upstream refused the connection");
  EXPECT_STREQ(upstream_connect_failed(connect_failure::unreachable).error, "upstream_unreachable");
  EXPECT_STREQ(upstream_connect_failed(connect_failure::other).error, "upstream_connect_error");
}

}  // namespace
}  // namespace devspaces::proxy::http
