// HAR, OTLP JSON and access-log mappings of trace records, and the body capture policy.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "proxy/trace/access_log.hpp"
#include "proxy/trace/har.hpp"
#include "proxy/trace/hub.hpp"
#include "proxy/trace/otlp.hpp"
#include "tests/proxy/trace/sample_records.hpp"

namespace devspaces::test {
namespace {

namespace json = boost::json;

json::object parsed(const trace::record& r) {
  return json::parse(trace::to_json(r, {})).as_object();
}

std::string attr(const json::object& span, std::string_view key) {
  for (const auto& a : span.at("attributes").as_array()) {
    const auto& o = a.as_object();
    if (o.at("key").as_string() != key) continue;
    const auto& v = o.at("value").as_object();
    if (v.contains("stringValue")) return std::string(v.at("stringValue").as_string());
    if (v.contains("intValue")) return std::string(v.at("intValue").as_string());
  }
  return "<absent>";
}

TEST(HarMapping, WalkThroughExchange) {
  auto e = trace::har_entry(parsed(walkthrough_outbound()));
  EXPECT_EQ(e.at("startedDateTime").as_string(), "2026-11-21T20:47:09.700123Z");
  EXPECT_DOUBLE_EQ(e.at("time").as_double(), 1.834);
  const auto& req = e.at("request").as_object();
  EXPECT_EQ(req.at("method").as_string(), "GET");
  EXPECT_EQ(req.at("url").as_string(), "http://serviceb/api");
  EXPECT_EQ(req.at("httpVersion").as_string(), "HTTP/1.1");
  EXPECT_EQ(req.at("headers").as_array().size(), 2u);
  EXPECT_EQ(req.at("headers").as_array()[1].as_object().at("name").as_string(), "azds-route-as");
  const auto& res = e.at("response").as_object();
  EXPECT_EQ(res.at("status").as_int64(), 200);
  EXPECT_EQ(res.at("content").as_object().at("text").as_string(), "hello");
  EXPECT_EQ(res.at("content").as_object().at("size").as_int64(), 5);
  EXPECT_EQ(e.at("serverIPAddress").as_string(), "10.0.0.7");
  EXPECT_EQ(e.at("_route").as_object().at("decision").as_string(), "parent");
  EXPECT_DOUBLE_EQ(e.at("timings").as_object().at("wait").as_double(), 1.834);
}

TEST(HarMapping, ErrorWithoutResponseAndBinaryBody) {
  auto e = trace::har_entry(parsed(refused_outbound()));
  EXPECT_EQ(e.at("request").as_object().at("url").as_string(),
            "http://files.example.com:8080/upload?x=1");
  const auto& qs = e.at("request").as_object().at("queryString").as_array();
  ASSERT_EQ(qs.size(), 1u);
  EXPECT_EQ(qs[0].as_object().at("name").as_string(), "x");
  EXPECT_EQ(e.at("response").as_object().at("status").as_int64(), 0);
  EXPECT_EQ(e.at("_error").as_string(), "upstream_connect_refused");
  EXPECT_EQ(e.at("request").as_object().at("postData").as_object().at("mimeType").as_string(),
            "application/octet-stream");
  auto doc = json::parse(trace::har_document({parsed(refused_outbound())}, "0.1.0")).as_object();
  EXPECT_EQ(doc.at("log").as_object().at("version").as_string(), "1.2");
  EXPECT_EQ(doc.at("log").as_object().at("entries").as_array().size(), 1u);
}

TEST(OtlpMapping, ClientSpanJoinsTheRequestTrace) {
  auto r = walkthrough_outbound();
  r.request.headers.emplace_back("traceparent",
                                 "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  r.trace_id = "0af7651916cd43dd8448eb211c80319c";
  auto span = trace::otlp_span(parsed(r));
  EXPECT_EQ(span.at("traceId").as_string(), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(span.at("parentSpanId").as_string(), "b7ad6b7169203331");
  EXPECT_EQ(span.at("spanId").as_string().size(), 16u);
  EXPECT_EQ(span.at("kind").as_int64(), 3);  // CLIENT
  EXPECT_EQ(span.at("name").as_string(), "GET");
  EXPECT_EQ(span.at("startTimeUnixNano").as_string(), "1795294029700123000");
  EXPECT_EQ(span.at("endTimeUnixNano").as_string(), "1795294029701957000");
  EXPECT_EQ(attr(span, "http.request.method"), "GET");
  EXPECT_EQ(attr(span, "url.path"), "/api");
  EXPECT_EQ(attr(span, "server.address"), "serviceb");
  EXPECT_EQ(attr(span, "http.response.status_code"), "200");
  EXPECT_EQ(attr(span, "network.peer.address"), "10.0.0.7");
  EXPECT_EQ(attr(span, "devspaces.route_as"), "azureuser");
  EXPECT_EQ(attr(span, "devspaces.decision"), "parent");
  EXPECT_EQ(attr(span, "devspaces.level"), "1");
  EXPECT_EQ(span.at("status").as_object().at("code").as_int64(), 0);
}

TEST(OtlpMapping, ServerSpanNewTraceAndErrors) {
  auto in = trace::otlp_span(parsed(walkthrough_inbound()));
  EXPECT_EQ(in.at("kind").as_int64(), 2);  // SERVER
  EXPECT_EQ(in.at("traceId").as_string().size(), 32u);
  EXPECT_FALSE(in.contains("parentSpanId"));
  EXPECT_EQ(attr(in, "devspaces.level"), "<absent>");  // original: level null
  auto bad = trace::otlp_span(parsed(refused_outbound()));
  EXPECT_EQ(bad.at("status").as_object().at("code").as_int64(), 2);
  EXPECT_EQ(attr(bad, "error.type"), "upstream_connect_refused");
  EXPECT_EQ(attr(bad, "url.query"), "x=1");
  EXPECT_EQ(attr(bad, "server.port"), "8080");
  EXPECT_EQ(trace::unix_nanos("2026-11-21T20:47:09Z"), 1795294029000000000ULL);
  EXPECT_EQ(trace::unix_nanos("yesterday"), 0u);
}

TEST(OtlpMapping, ExportBodyHoldsOneSpanPerRecord) {
  std::vector<trace::entry> entries;
  for (auto r : {walkthrough_inbound(), walkthrough_outbound()}) {
    entries.push_back(
        {entries.size() + 1, std::make_shared<const trace::lazy_json>(trace::to_json(r, {}))});
  }
  trace::otlp_resource res;
  res.pod = "servicea-7d9f";
  res.space = "azureuser";
  auto body = json::parse(trace::otlp_export_body(entries, res)).as_object();
  const auto& rs = body.at("resourceSpans").as_array().at(0).as_object();
  const auto& spans = rs.at("scopeSpans").as_array().at(0).as_object().at("spans").as_array();
  EXPECT_EQ(spans.size(), 2u);
  const auto& rattrs = rs.at("resource").as_object().at("attributes").as_array();
  EXPECT_EQ(rattrs.at(0).as_object().at("value").as_object().at("stringValue").as_string(),
            "devspaces-proxy");
}

TEST(AccessLog, TextAndJsonLines) {
  auto r = walkthrough_outbound();
  r.trace_id = "0af7651916cd43dd8448eb211c80319c";
  EXPECT_EQ(trace::access_log_line(r, false),
            "direction=outbound method=GET authority=serviceb path=/api status=200 "
            "duration_ms=1.834 upstream=10.0.0.7:80 route_as=azureuser route_as_source=header "
            "decision=parent error=- id=pu5 trace_id=0af7651916cd43dd8448eb211c80319c");
  auto j = json::parse(trace::access_log_line(refused_outbound(), true)).as_object();
  EXPECT_EQ(j.at("direction").as_string(), "outbound");
  EXPECT_EQ(j.at("authority").as_string(), "files.example.com:8080");
  EXPECT_TRUE(j.at("status").is_null());
  EXPECT_EQ(j.at("error").as_string(), "upstream_connect_refused");
  EXPECT_TRUE(j.at("upstream").as_string().empty());
  // Text values with spaces are quoted.
  auto q = walkthrough_outbound();
  q.request.target = "/a b";
  EXPECT_NE(trace::access_log_line(q, false).find("path=\"/a b\""), std::string::npos);
}

TEST(BodyPolicy, FormPostsAreNotCaptured) {
  auto r = walkthrough_outbound();
  r.request.method = "POST";
  r.request.headers.emplace_back("Content-Type",
                                 "application/x-www-form-urlencoded; charset=utf-8");
  set_body(r.request.body, "user=alice&password=hunter2");
  trace::hub_options o;
  trace::apply_body_policy(r, o.omit_body_types);
  EXPECT_TRUE(r.request.body.prefix.empty());
  EXPECT_TRUE(r.request.body.omitted);
  EXPECT_EQ(r.request.body.total_bytes, 27u);
  const auto text = trace::to_json(r, {});
  EXPECT_EQ(text.find("hunter2"), std::string::npos);
  EXPECT_NE(text.find("\"body_omitted\":true"), std::string::npos);
  // Other bodies stay.
  EXPECT_EQ(r.response->body.prefix, "hello");
  auto m = walkthrough_outbound();
  m.request.headers.emplace_back("content-type", "Multipart/Form-Data; boundary=x");
  set_body(m.request.body, "--x\r\n...");
  trace::apply_body_policy(m, o.omit_body_types);
  EXPECT_TRUE(m.request.body.omitted);
  // Through the hub: what /traces serves has no form body.
  trace::hub h(o, nullptr);
  h.push(std::move(r));
  EXPECT_EQ(h.last(1).at(0).json->text().find("hunter2"), std::string::npos);
}

TEST(BodyPolicy, TheContentTypeNameIsMatchedInAnyCaseAndOnlyIt) {
  const trace::hub_options o;
  for (const char* name : {"CONTENT-TYPE", "cOnTeNt-TyPe", "Content-Type"}) {
    auto r = walkthrough_outbound();
    r.request.headers.emplace_back(name, "application/x-www-form-urlencoded");
    set_body(r.request.body, "password=hunter2");
    trace::apply_body_policy(r, o.omit_body_types);
    EXPECT_TRUE(r.request.body.omitted) << name;
  }
  // Names that differ only in a byte whose case bit is the difference from '-' or a letter.
  for (const char* name : {"content\rtype", "content type", "content-typ\x05", "content_type",
                           "content-types", "xcontent-type"}) {
    auto r = walkthrough_outbound();
    r.request.headers.emplace_back(name, "application/x-www-form-urlencoded");
    set_body(r.request.body, "password=hunter2");
    trace::apply_body_policy(r, o.omit_body_types);
    EXPECT_FALSE(r.request.body.omitted) << name;
    EXPECT_EQ(r.request.body.prefix, "password=hunter2") << name;
  }
}

}  // namespace
}  // namespace devspaces::test
