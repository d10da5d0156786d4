#include "proxy/trace/render.hpp"

#include <string>

#include <gtest/gtest.h>

#include "tests/proxy/trace/golden_util.hpp"
#include "tests/proxy/trace/sample_records.hpp"

namespace devspaces::test {
namespace {

const trace::json_options redaction{{"authorization", "cookie"}};

std::string render(const trace::record& r) {
  return trace::render_record(trace::to_json(r, redaction));
}

TEST(Render, WalkthroughMatchesGolden) {
  // Stream order: the outbound exchange ends before the inbound one that caused it.
  std::string out = render(walkthrough_outbound()) + render(walkthrough_inbound());
  out += render(refused_outbound());
  EXPECT_EQ(out, golden("render_walkthrough.txt", out));
}

TEST(Render, OutboundShowsServiceAndServingSpace) {
  const auto text = render(walkthrough_outbound());
  EXPECT_EQ(text,
            "servicea-7d9f --pu5-> serviceb (default):\n"
            "   GET /api HTTP/1.1\n"
            "servicea-7d9f <-pu5-- serviceb (default):\n"
            "   HTTP/1.1 200 OK\n"
            "   hello\n");
}

TEST(Render, OwnSpaceAndOriginalDestination) {
  auto own = walkthrough_outbound();
  own.route.decision = routing::decision_kind::own;
  own.route.level = 0;
  own.route.tried = {{"serviceb.azureuser.svc.cluster.local", "10.0.0.9"}};
  EXPECT_EQ(render(own).substr(0, 43), "servicea-7d9f --pu5-> serviceb (azureuser):");

  auto original = walkthrough_outbound();
  original.route.decision = routing::decision_kind::original;
  original.route.level.reset();
  original.route.tried = {{"serviceb.azureuser.svc.cluster.local", "nxdomain"}};
  EXPECT_EQ(render(original).substr(0, 32), "servicea-7d9f --pu5-> serviceb:\n");
}

TEST(Render, TruncatedBodyIsMarked) {
  const auto text = render(walkthrough_inbound());
  EXPECT_NE(text.find("   <html><body>xxx"), std::string::npos);
  EXPECT_NE(text.find(" ...<[TRUNCATED]>\n"), std::string::npos);
}

TEST(Render, LongAndManyLinesAreCut) {
  auto r = walkthrough_outbound();
  r.response->body = {};
  r.response->body.append(std::string_view("1\n2\n3\n4\n5\n6\n7\n"), 1024);
  EXPECT_EQ(render(r).substr(render(r).find("200 OK\n") + 7),
            "   1\n   2\n   3\n   4\n   5 ...<[TRUNCATED]>\n");
  r.response->body = {};
  r.response->body.append(std::string(300, 'y'), 1024);
  EXPECT_NE(render(r).find("   " + std::string(160, 'y') + " ...<[TRUNCATED]>\n"),
            std::string::npos);
}

TEST(Render, TerminalEscapesAreNeutralised) {
  auto r = walkthrough_outbound();
  r.response->body = {};
  r.response->body.append(std::string_view("\x1b[31mred"), 1024);
  EXPECT_NE(render(r).find("   .[31mred\n"), std::string::npos);
}

TEST(Render, NonRecordLinesPassThrough) {
  EXPECT_EQ(trace::render_record("not json"), "not json\n");
}

}  // namespace
}  // namespace devspaces::test
