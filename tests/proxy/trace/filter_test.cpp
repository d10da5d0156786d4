#include "proxy/trace/filter.hpp"

#include <gtest/gtest.h>

#include "tests/proxy/trace/sample_records.hpp"

namespace devspaces::test {
namespace {

using proxy::trace::record_filter;

std::string line(const trace::record& r) {
  return trace::to_json(r, {});
}

record_filter make(std::initializer_list<std::pair<std::string_view, std::string_view>> kv) {
  record_filter f;
  for (auto [k, v] : kv) {
    std::optional<std::string> problem;
    EXPECT_TRUE(f.set(k, v, problem)) << k;
    EXPECT_FALSE(problem) << k << ": " << problem.value_or("");
  }
  return f;
}

TEST(RecordFilter, EachField) {
  const auto in = line(walkthrough_inbound());
  auto out_rec = walkthrough_outbound();
  out_rec.trace_id = "0af7651916cd43dd8448eb211c80319c";
  const auto out = line(out_rec);
  const auto refused = line(refused_outbound());

  EXPECT_TRUE(record_filter{}.matches_line(in));
  auto f = make({{"direction", "outbound"}});
  EXPECT_FALSE(f.matches_line(in));
  EXPECT_TRUE(f.matches_line(out));
  f = make({{"method", "post"}});
  EXPECT_TRUE(f.matches_line(refused));
  EXPECT_FALSE(f.matches_line(out));
  f = make({{"status", "2xx"}});
  EXPECT_TRUE(f.matches_line(out));
  EXPECT_FALSE(f.matches_line(refused));  // no response: no status
  f = make({{"status", "404,200"}});
  EXPECT_TRUE(f.matches_line(out));
  f = make({{"status", "5xx"}});
  EXPECT_FALSE(f.matches_line(out));
  f = make({{"path", "/up"}});
  EXPECT_TRUE(f.matches_line(refused));
  EXPECT_FALSE(f.matches_line(out));
  f = make({{"route_as", "azureuser"}});
  EXPECT_TRUE(f.matches_line(out));
  EXPECT_FALSE(f.matches_line(refused));
  f = make({{"decision", "parent"}});
  EXPECT_TRUE(f.matches_line(out));
  EXPECT_FALSE(f.matches_line(in));
  f = make({{"error", "any"}});
  EXPECT_TRUE(f.matches_line(refused));
  EXPECT_FALSE(f.matches_line(out));
  f = make({{"error", "upstream_timeout"}});
  EXPECT_FALSE(f.matches_line(refused));
  f = make({{"trace_id", "0AF7651916CD43DD8448EB211C80319C"}});
  EXPECT_TRUE(f.matches_line(out));
  EXPECT_FALSE(f.matches_line(in));
  // Fields combine with "and".
  f = make({{"direction", "outbound"}, {"status", "2xx"}, {"decision", "original"}});
  EXPECT_FALSE(f.matches_line(out));
}

TEST(RecordFilter, BadValuesAndUnknownKeys) {
  record_filter f;
  std::optional<std::string> problem;
  EXPECT_TRUE(f.set("status", "50x", problem));
  EXPECT_TRUE(problem);
  problem.reset();
  EXPECT_TRUE(f.set("direction", "sideways", problem));
  EXPECT_TRUE(problem);
  problem.reset();
  EXPECT_TRUE(f.set("decision", "cousin", problem));
  EXPECT_TRUE(problem);
  problem.reset();
  EXPECT_FALSE(f.set("colour", "red", problem));
  EXPECT_FALSE(problem);
  // Not a record: never matches a non-empty filter.
  EXPECT_FALSE(make({{"method", "GET"}}).matches_line("not json"));
}

TEST(RecordFilter, QueryRoundTrip) {
  auto f = make({{"direction", "outbound"}, {"path", "/a b&c"}, {"error", "any"}});
  EXPECT_EQ(f.to_query(), "direction=outbound&path=/a%20b%26c&error=any");
  auto decoded = proxy::trace::url_decode("/a%20b%26c");
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, "/a b&c");
  EXPECT_FALSE(proxy::trace::url_decode("%4"));
}

}  // namespace
}  // namespace devspaces::test
