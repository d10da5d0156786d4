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
  auto own_route = *own.route;
  own_route.decision = routing::decision_kind::own;
  own_route.level = 0;
  own_route.tried = {{"serviceb.azureuser.svc.cluster.local", "10.0.0.9"}};
  own.route = std::make_shared<const routing::route_decision>(std::move(own_route));
  EXPECT_EQ(render(own).substr(0, 43), "servicea-7d9f --pu5-> serviceb (azureuser):");

  auto original = walkthrough_outbound();
  auto original_route = *original.route;
  original_route.decision = routing::decision_kind::original;
  original_route.level.reset();
  original_route.tried = {{"serviceb.azureuser.svc.cluster.local", "nxdomain"}};
  original.route = std::make_shared<const routing::route_decision>(std::move(original_route));
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

TEST(Render, GrpcStatusFromTrailersIsShown) {
  auto r = walkthrough_outbound();
  r.protocol = "h2";
  r.stream_id = 1;
  r.request.method = "POST";
  r.request.target = "/demo.Greeter/SayHello";
  r.request.version = "2";
  r.response->version = "2";
  r.response->reason.clear();
  r.response->headers = {{"content-type", "application/grpc"}};
  r.response->body = {};  // a gRPC message is binary; none here
  r.response->trailers = {{"grpc-status", "5"}, {"grpc-message", "no such user"}};
  EXPECT_EQ(render(r),
            "servicea-7d9f --pu5-> serviceb (default):\n"
            "   POST /demo.Greeter/SayHello HTTP/2\n"
            "servicea-7d9f <-pu5-- serviceb (default):\n"
            "   HTTP/2 200\n"
            "   grpc-status: 5 NOT_FOUND (no such user)\n");
  // Coloured on a terminal: red unless OK.
  const auto coloured =
      trace::render_record(trace::to_json(r, redaction), trace::render_options{true, false});
  EXPECT_NE(coloured.find("\x1b[31mgrpc-status: 5 NOT_FOUND"), std::string::npos) << coloured;
}

TEST(Render, GrpcStatusOfATrailersOnlyAnswerComesFromItsHeaders) {
  auto r = walkthrough_outbound();
  r.request.version = "2";
  r.response->version = "2";
  r.response->reason.clear();
  r.response->headers = {{"content-type", "application/grpc"},
                         {"grpc-status", "14"},
                         {"grpc-message", "devspaces-proxy: upstream unreachable"}};
  r.response->body = {};  // a gRPC message is binary; none here
  const auto text = render(r);
  EXPECT_NE(text.find("   HTTP/2 200\n   grpc-status: 14 UNAVAILABLE (devspaces-proxy: upstream "
                      "unreachable)\n"),
            std::string::npos)
      << text;
}

TEST(Render, NoGrpcLineForOtherAnswers) {
  EXPECT_EQ(render(walkthrough_outbound()).find("grpc-status"), std::string::npos);
}

TEST(Render, NonRecordLinesPassThrough) {
  EXPECT_EQ(trace::render_record("not json"), "not json\n");
}

}  // namespace
}  // namespace devspaces::test
