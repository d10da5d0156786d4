#include "proxy/routing/carriers.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace devspaces::proxy::routing {
namespace {

constexpr std::string_view tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

baggage_member bag(std::vector<std::string_view> values, std::string_view key = "azds-route-as") {
  return find_baggage_member(values, key);
}

TEST(Traceparent, ValidVersion00) {
  auto id = parse_traceparent(tp);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(traceparent_span_id(tp), "00f067aa0ba902b7");
  // Surrounding whitespace (OWS) is tolerated.
  EXPECT_TRUE(parse_traceparent(" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\t"));
}

TEST(Traceparent, Malformed) {
  // Uppercase hex, all-zero ids, version ff, wrong lengths, extra fields on version 00.
  EXPECT_FALSE(parse_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
  EXPECT_FALSE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
  EXPECT_FALSE(parse_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"));
  EXPECT_FALSE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"));
  EXPECT_FALSE(parse_traceparent("00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01"));
  EXPECT_FALSE(parse_traceparent(""));
  EXPECT_EQ(traceparent_span_id("garbage"), "");
  // A later version may append fields.
  EXPECT_TRUE(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-ab"));
  EXPECT_FALSE(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01ab"));
}

TEST(Baggage, SingleAndSeveralMembers) {
  auto m = bag({"azds-route-as=azureuser"});
  EXPECT_EQ(m.status, baggage_member::state::found);
  EXPECT_EQ(m.value, "azureuser");
  m = bag({"userId=alice,azds-route-as=dev,serverNode=DF%2028"});
  EXPECT_EQ(m.status, baggage_member::state::found);
  EXPECT_EQ(m.value, "dev");
  EXPECT_EQ(bag({"userId=alice,serverNode=DF%2028"}).status, baggage_member::state::absent);
  EXPECT_EQ(bag({}).status, baggage_member::state::absent);
}

TEST(Baggage, WhitespaceAndProperties) {
  auto m = bag({" userId = alice ,\t azds-route-as = azureuser ; ttl=30 ; propOnly ,x=y"});
  EXPECT_EQ(m.status, baggage_member::state::found);
  EXPECT_EQ(m.value, "azureuser");
  // Key match is case-insensitive, like header names.
  EXPECT_EQ(bag({"AZDS-Route-As=dev"}).value, "dev");
}

TEST(Baggage, PercentEncoding) {
  auto m = bag({"azds-route-as=azure%75ser"});
  EXPECT_EQ(m.status, baggage_member::state::found);
  EXPECT_EQ(m.value, "azureuser");
  // A broken escape in our member makes it a conflict (invalid), elsewhere it is skipped.
  EXPECT_EQ(bag({"azds-route-as=azure%7"}).status, baggage_member::state::conflict);
  EXPECT_EQ(bag({"azds-route-as=azure%zzuser"}).status, baggage_member::state::conflict);
  EXPECT_EQ(bag({"other=%zz,azds-route-as=dev"}).value, "dev");
  // Characters outside baggage-octet (a quote, a backslash) are not a value.
  EXPECT_EQ(bag({"azds-route-as=\"dev\""}).status, baggage_member::state::conflict);
}

TEST(Baggage, SeveralFieldsAndDuplicates) {
  auto m = bag({"a=1", "azds-route-as=dev"});
  EXPECT_EQ(m.status, baggage_member::state::found);
  EXPECT_EQ(m.value, "dev");
  EXPECT_EQ(bag({"azds-route-as=dev", "azds-route-as=dev"}).status, baggage_member::state::found);
  EXPECT_EQ(bag({"azds-route-as=dev,azds-route-as=prod"}).status, baggage_member::state::conflict);
}

TEST(Baggage, MalformedMembersSkippedEmptyElementsAllowed) {
  auto m = bag({",,noequals, =x, bad key=1 ,azds-route-as=dev,"});
  EXPECT_EQ(m.status, baggage_member::state::found);
  EXPECT_EQ(m.value, "dev");
}

TEST(Baggage, OversizeIsNotRead) {
  std::string big = "azds-route-as=dev,pad=" + std::string(max_baggage_bytes, 'x');
  EXPECT_EQ(bag({big}).status, baggage_member::state::absent);
  // Just at the limit it is read.
  std::string fits = "azds-route-as=dev,pad=";
  fits += std::string(max_baggage_bytes - fits.size(), 'x');
  EXPECT_EQ(bag({fits}).status, baggage_member::state::found);
}

struct carrier_case {
  const char* name;
  std::vector<header_ref> headers;
  route_header::state status;
  std::string space;
  route_source source;
};

// The carriers table: order, agreement, invalid values.
TEST(Carriers, Table) {
  using st = route_header::state;
  const std::vector<carrier_case> cases = {
      {"none", {{"host", "serviceb"}}, st::absent, "", route_source::none},
      {"header", {{"Azds-Route-As", "AzureUser"}}, st::valid, "azureuser", route_source::header},
      {"baggage", {{"baggage", "azds-route-as=dev"}}, st::valid, "dev", route_source::baggage},
      {"kubernetes-route-as",
       {{"Kubernetes-Route-As", "dev"}},
       st::valid,
       "dev",
       route_source::kubernetes_route_as},
      {"header and baggage agree",
       {{"baggage", "azds-route-as=dev"}, {"azds-route-as", "dev"}},
       st::valid,
       "dev",
       route_source::header},
      {"baggage and kubernetes agree",
       {{"kubernetes-route-as", "dev"}, {"baggage", "azds-route-as=DEV"}},
       st::valid,
       "dev",
       route_source::baggage},
      {"header and baggage disagree",
       {{"azds-route-as", "dev"}, {"baggage", "azds-route-as=prod"}},
       st::invalid,
       "",
       route_source::none},
      {"header and kubernetes disagree",
       {{"azds-route-as", "dev"}, {"kubernetes-route-as", "prod"}},
       st::invalid,
       "",
       route_source::none},
      {"invalid header, valid baggage",
       {{"azds-route-as", "not a label"}, {"baggage", "azds-route-as=dev"}},
       st::invalid,
       "",
       route_source::none},
      {"invalid baggage value",
       {{"baggage", "azds-route-as=Not_A_Label"}},
       st::invalid,
       "",
       route_source::none},
      {"baggage without our member",
       {{"baggage", "userId=alice"}},
       st::absent,
       "",
       route_source::none},
  };
  for (const auto& c : cases) {
    auto r = read_carriers(c.headers, "azds-route-as");
    EXPECT_EQ(r.status, c.status) << c.name;
    EXPECT_EQ(r.space, c.space) << c.name;
    EXPECT_EQ(r.source, c.source) << c.name;
    EXPECT_EQ(r.route_header_present, c.source == route_source::header) << c.name;
  }
}

TEST(Carriers, CustomRouteHeaderNamesTheBaggageKey) {
  std::vector<header_ref> h{{"baggage", "x-space=dev,azds-route-as=prod"}};
  auto r = read_carriers(h, "x-space");
  EXPECT_EQ(r.status, route_header::state::valid);
  EXPECT_EQ(r.space, "dev");
}

TEST(Carriers, TraceIdFromOneTraceparent) {
  std::vector<header_ref> h{{"TraceParent", tp}};
  auto r = read_carriers(h, "azds-route-as");
  ASSERT_TRUE(r.trace);
  EXPECT_EQ(r.trace->hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  // Two traceparent fields: no usable context.
  h.emplace_back("traceparent", "00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-00f067aa0ba902b7-01");
  EXPECT_FALSE(read_carriers(h, "azds-route-as").trace);
}

}  // namespace
}  // namespace devspaces::proxy::routing
