#include "proxy/trace/record.hpp"

#include <ctime>
#include <random>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "tests/proxy/trace/golden_util.hpp"
#include "tests/proxy/trace/sample_records.hpp"

namespace devspaces::test {
namespace {

namespace json = boost::json;

const trace::json_options default_redaction{
    {"authorization", "proxy-authorization", "cookie", "set-cookie"}};

json::object parse(const std::string& line) {
  auto v = json::parse(line);
  EXPECT_TRUE(v.is_object());
  return v.as_object();
}

TEST(RecordJson, WalkthroughOutboundMatchesGolden) {
  const auto line = trace::to_json(walkthrough_outbound(), default_redaction);
  EXPECT_EQ(line + "\n", golden("record_outbound.json", line + "\n"));
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(RecordJson, WalkthroughInboundMatchesGolden) {
  const auto line = trace::to_json(walkthrough_inbound(), default_redaction);
  EXPECT_EQ(line + "\n", golden("record_inbound.json", line + "\n"));
}

TEST(RecordJson, FailedExchangeMatchesGolden) {
  const auto line = trace::to_json(refused_outbound(), default_redaction);
  EXPECT_EQ(line + "\n", golden("record_refused.json", line + "\n"));
}

TEST(RecordJson, HasEveryFieldOfTheContract) {
  const auto o = parse(trace::to_json(walkthrough_outbound(), default_redaction));
  for (const char* k :
       {"v", "id", "ts", "duration_us", "direction", "pod", "space", "client", "original_dst",
        "upstream", "route_as", "route_as_source", "route", "request", "response", "error"}) {
    EXPECT_TRUE(o.contains(k)) << k;
  }
  EXPECT_EQ(o.at("v").as_int64(), 1);
  EXPECT_EQ(o.at("ts").as_string(), "2026-11-21T20:47:09.700123Z");
  EXPECT_EQ(o.at("duration_us").as_int64(), 1834);
  EXPECT_EQ(o.at("direction").as_string(), "outbound");
  EXPECT_TRUE(o.at("error").is_null());
  const auto& route = o.at("route").as_object();
  EXPECT_EQ(route.at("service").as_string(), "serviceb");
  EXPECT_EQ(route.at("decision").as_string(), "parent");
  EXPECT_EQ(route.at("level").as_int64(), 1);
  ASSERT_EQ(route.at("tried").as_array().size(), 2u);
  EXPECT_EQ(route.at("tried").as_array()[0].as_object().at("result").as_string(), "nxdomain");
  const auto& req = o.at("request").as_object();
  for (const char* k :
       {"method", "target", "version", "host", "headers", "body_bytes", "body", "body_truncated"}) {
    EXPECT_TRUE(req.contains(k)) << k;
  }
  const auto& res = o.at("response").as_object();
  EXPECT_EQ(res.at("status").as_int64(), 200);
  EXPECT_EQ(res.at("body").as_string(), "hello");
  EXPECT_EQ(res.at("body_bytes").as_int64(), 5);
  EXPECT_FALSE(res.at("body_truncated").as_bool());
  EXPECT_FALSE(res.contains("body_encoding"));
}

TEST(RecordJson, RouteIsPresentWithNullsWhenNoRoutingWasAttempted) {
  const auto o = parse(trace::to_json(refused_outbound(), default_redaction));
  const auto& route = o.at("route").as_object();
  EXPECT_TRUE(route.at("service").is_null());
  EXPECT_EQ(route.at("decision").as_string(), "original");
  EXPECT_TRUE(route.at("level").is_null());
  EXPECT_TRUE(route.at("tried").as_array().empty());
  EXPECT_TRUE(o.at("response").is_null());
  EXPECT_EQ(o.at("error").as_string(), "upstream_connect_refused");
  EXPECT_TRUE(o.at("upstream").is_null());
  EXPECT_TRUE(o.at("route_as").is_null());
  EXPECT_EQ(o.at("route_as_source").as_string(), "none");
}

TEST(RecordJson, LevelIsNullForOriginalEvenIfSet) {
  auto r = refused_outbound();
  auto route = *r.route;
  route.level = 0;
  r.route = std::make_shared<const routing::route_decision>(std::move(route));
  const auto o = parse(trace::to_json(r, default_redaction));
  EXPECT_TRUE(o.at("route").as_object().at("level").is_null());
}

TEST(RecordJson, RedactsConfiguredHeadersCaseInsensitivelyAndLowercasesNames) {
  auto r = walkthrough_outbound();
  r.request.headers = {{"AUTHORIZATION", "Basic dXNlcjpwYXNz"},
                       {"Cookie", "session=1"},
                       {"X-Api-Key", "k"},
                       {"azds-route-as", "azureuser"}};
  r.response->headers = {{"Set-Cookie", "session=2"}, {"Content-Length", "5"}};
  trace::json_options opts{{"authorization", "cookie", "set-cookie", "x-api-key"}};
  const auto line = trace::to_json(r, opts);
  EXPECT_EQ(line.find("dXNlcjpwYXNz"), std::string::npos);
  EXPECT_EQ(line.find("session="), std::string::npos);
  const auto o = parse(line);
  const auto& h = o.at("request").as_object().at("headers").as_array();
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h[0].as_array()[0].as_string(), "authorization");
  EXPECT_EQ(h[0].as_array()[1].as_string(), "[redacted]");
  EXPECT_EQ(h[1].as_array()[1].as_string(), "[redacted]");
  EXPECT_EQ(h[2].as_array()[0].as_string(), "x-api-key");
  EXPECT_EQ(h[2].as_array()[1].as_string(), "[redacted]");
  EXPECT_EQ(h[3].as_array()[1].as_string(), "azureuser");
  const auto& rh = o.at("response").as_object().at("headers").as_array();
  EXPECT_EQ(rh[0].as_array()[1].as_string(), "[redacted]");
  EXPECT_EQ(rh[1].as_array()[1].as_string(), "5");
}

TEST(RecordJson, NothingRedactedWithAnEmptyList) {
  auto r = refused_outbound();
  const auto line = trace::to_json(r, trace::json_options{});
  EXPECT_NE(line.find("Bearer s3cr3t"), std::string::npos);
}

TEST(RecordJson, EscapesControlCharactersQuotesAndInvalidUtf8) {
  auto r = walkthrough_outbound();
  r.request.target = "/a\"b\\c";
  r.request.headers = {{"x-odd", std::string("caf\xe9\x01\ttab", 9)}};
  r.response->body = {};
  set_body(r.response->body, "line1\r\nline2 \xe2\x9c\x93");
  const auto line = trace::to_json(r, default_redaction);
  const auto o = parse(line);  // valid JSON although the header is Latin-1
  EXPECT_EQ(o.at("request").as_object().at("target").as_string(), "/a\"b\\c");
  EXPECT_EQ(o.at("request").as_object().at("headers").as_array()[0].as_array()[1].as_string(),
            "caf\xc3\xa9\x01\ttab");
  EXPECT_EQ(o.at("response").as_object().at("body").as_string(), "line1\r\nline2 \xe2\x9c\x93");
  EXPECT_NE(line.find("\\u0001"), std::string::npos);
}

TEST(RecordJson, BinaryBodyIsBase64) {
  const auto o = parse(trace::to_json(refused_outbound(), default_redaction));
  const auto& req = o.at("request").as_object();
  EXPECT_EQ(req.at("body_encoding").as_string(), "base64");
  EXPECT_EQ(req.at("body").as_string(), "iVBORw0KGgoAAA==");
  EXPECT_EQ(req.at("body_bytes").as_int64(), 10);
  EXPECT_FALSE(req.at("body_truncated").as_bool());
}

TEST(RecordJson, TruncatedTextCutInsideACharacterStaysText) {
  auto r = walkthrough_outbound();
  r.response->body = {};
  // "ü" is two bytes; a limit of 5 keeps "ab" + "ü" + the first byte of the second "ü".
  set_body(r.response->body, "ab\xc3\xbc\xc3\xbc", 5);
  const auto o = parse(trace::to_json(r, default_redaction));
  const auto& res = o.at("response").as_object();
  EXPECT_FALSE(res.contains("body_encoding"));
  EXPECT_EQ(res.at("body").as_string(), "ab\xc3\xbc");
  EXPECT_TRUE(res.at("body_truncated").as_bool());
  EXPECT_EQ(res.at("body_bytes").as_int64(), 6);
}

TEST(RecordJson, InvalidUtf8BodyIsBase64) {
  auto r = walkthrough_outbound();
  r.response->body = {};
  set_body(r.response->body, "ab\xc3(");
  const auto o = parse(trace::to_json(r, default_redaction));
  EXPECT_EQ(o.at("response").as_object().at("body_encoding").as_string(), "base64");
  EXPECT_EQ(o.at("response").as_object().at("body").as_string(), "YWLDKA==");
}

// Every special byte at every offset of a body long enough for the word-at-a-time scans:
// text or base64 decided as a byte-by-byte reading would, and text decoded back exactly.
TEST(RecordJson, SpecialBytesAtEveryOffsetOfALongBody) {
  struct special {
    std::string bytes;
    bool text;
  };
  const std::vector<special> specials = {
      {"\"", true},       {"\\", true},           {"\t", true},
      {"\n", true},       {"\x7f", true},         {"\x1b", true},
      {"\xc3\xa9", true}, {"\xe2\x9c\x93", true}, {std::string(1, '\0'), false},
      {"\x01", false},    {"\x1f", false},        {"\x80", false},
      {"\xff", false},    {"\xc3(", false}};
  for (const auto& sp : specials) {
    for (std::size_t at = 0; at < 24; ++at) {
      std::string body(at, 'a');
      body += sp.bytes;
      body += std::string(24 - at, 'z');
      auto r = walkthrough_outbound();
      r.response->body = {};
      set_body(r.response->body, body);
      r.request.target = "/" + body;  // also escaped as a string, whatever its bytes
      const auto line = trace::to_json(r, default_redaction);
      const auto o = parse(line);
      const auto& res = o.at("response").as_object();
      EXPECT_EQ(!res.contains("body_encoding"), sp.text) << at << " " << line;
      if (sp.text) {
        EXPECT_EQ(res.at("body").as_string(), body) << at;
        EXPECT_EQ(o.at("request").as_object().at("target").as_string(), "/" + body) << at;
      }
    }
  }
}

TEST(AddressText, HoldsTextInlineAndCutsAtCapacity) {
  trace::address_text a;
  EXPECT_TRUE(a.empty());
  a = "[fd00::5]:40000";
  EXPECT_EQ(a.view(), "[fd00::5]:40000");
  const std::string longest =
      "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%averylongifname]:65535";
  a = longest;
  EXPECT_EQ(a.view(), longest);
  a = std::string(200, 'x');
  EXPECT_EQ(a.view(), std::string(trace::address_text::capacity, 'x'));
  auto r = walkthrough_outbound();
  r.upstream = "";
  EXPECT_EQ(parse(trace::to_json(r, default_redaction)).at("upstream"), nullptr);
}

TEST(BodyCapture, KeepsAllTextBelowTheLimit) {
  trace::body_capture b;
  b.append(std::string_view("hello"), 1024);
  EXPECT_EQ(b.prefix, "hello");
  EXPECT_EQ(b.total_bytes, 5u);
  EXPECT_FALSE(b.truncated);
}

TEST(BodyCapture, ChunkedAppendsKeepAPrefixAndCountEverything) {
  trace::body_capture b;
  const std::string chunks[] = {"abc", "defgh", "", "ijklmnop", "q"};
  for (const auto& c : chunks) b.append(c, 6);
  EXPECT_EQ(b.prefix, "abcdef");
  EXPECT_EQ(b.total_bytes, 17u);
  EXPECT_TRUE(b.truncated);
}

TEST(BodyCapture, ExactlyTheLimitIsNotTruncated) {
  trace::body_capture b;
  b.append(std::string_view("abc"), 6);
  b.append(std::string_view("def"), 6);
  EXPECT_EQ(b.prefix, "abcdef");
  EXPECT_FALSE(b.truncated);
  b.append(std::string_view(""), 6);
  EXPECT_FALSE(b.truncated);
  b.append(std::string_view("g"), 6);
  EXPECT_TRUE(b.truncated);
  EXPECT_EQ(b.total_bytes, 7u);
}

TEST(BodyCapture, ZeroLimitKeepsNothingButCounts) {
  trace::body_capture b;
  b.append(std::string_view("abc"), 0);
  EXPECT_TRUE(b.prefix.empty());
  EXPECT_EQ(b.total_bytes, 3u);
  EXPECT_TRUE(b.truncated);
  auto r = walkthrough_outbound();
  r.response->body = b;
  const auto o = parse(trace::to_json(r, default_redaction));
  EXPECT_EQ(o.at("response").as_object().at("body").as_string(), "");
  EXPECT_TRUE(o.at("response").as_object().at("body_truncated").as_bool());
}

TEST(BodyCapture, BinaryChunksAreKeptByteForByte) {
  trace::body_capture b;
  const char part1[] = {'\0', '\xff'};
  const char part2[] = {'\x80', '\x01', '\x02'};
  b.append(std::span<const char>(part1, 2), 4);
  b.append(std::span<const char>(part2, 3), 4);
  EXPECT_EQ(b.prefix, std::string("\0\xff\x80\x01", 4));
  EXPECT_TRUE(b.truncated);
  EXPECT_FALSE(trace::is_text(b.prefix, true));
}

TEST(Text, Classification) {
  EXPECT_TRUE(trace::is_text("", false));
  EXPECT_TRUE(trace::is_text("{\"a\": 1}\r\n\t", false));
  EXPECT_TRUE(trace::is_text("\xe6\x97\xa5\xe6\x9c\xac", false));
  EXPECT_FALSE(trace::is_text(std::string_view("a\0b", 3), false));
  EXPECT_FALSE(trace::is_text("\xc0\xaf", false));      // overlong
  EXPECT_FALSE(trace::is_text("\xed\xa0\x80", false));  // surrogate
  EXPECT_FALSE(trace::is_text("ab\xe6\x97", false));    // cut, not allowed
  EXPECT_TRUE(trace::is_text("ab\xe6\x97", true));      // cut, allowed
  EXPECT_FALSE(
      trace::is_text("ab\xe6\x97"
                     "c",
                     true));  // broken in the middle
}

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(trace::base64_encode(""), "");
  EXPECT_EQ(trace::base64_encode("f"), "Zg==");
  EXPECT_EQ(trace::base64_encode("fo"), "Zm8=");
  EXPECT_EQ(trace::base64_encode("foo"), "Zm9v");
  EXPECT_EQ(trace::base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(trace::base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(trace::base64_encode("foobar"), "Zm9vYmFy");
}

TEST(Timestamp, Rfc3339WithMicrosecondsAndZ) {
  EXPECT_EQ(trace::format_timestamp(sample_time()), "2026-11-21T20:47:09.700123Z");
  EXPECT_EQ(trace::format_timestamp(std::chrono::system_clock::time_point{}),
            "1970-01-01T00:00:00.000000Z");
  using std::chrono::microseconds;
  EXPECT_EQ(trace::format_timestamp(std::chrono::system_clock::time_point{microseconds{-1}}),
            "1969-12-31T23:59:59.999999Z");
  // 2028-02-29 (leap day), 2000-03-01 after a century leap year.
  EXPECT_EQ(trace::format_timestamp(
                std::chrono::system_clock::time_point{microseconds{1835481599'000001LL}}),
            "2028-02-29T23:59:59.000001Z");
  EXPECT_EQ(trace::format_timestamp(
                std::chrono::system_clock::time_point{microseconds{951868800'000000LL}}),
            "2000-03-01T00:00:00.000000Z");
}

TEST(Timestamp, AgreesWithGmtimeOverThreeCenturies) {
  std::mt19937_64 rng(7);
  // 1900-2255 (system_clock counts nanoseconds: about 292 years either side of 1970).
  std::uniform_int_distribution<std::int64_t> secs(-2'208'988'800LL, 9'000'000'000LL);
  for (int i = 0; i < 20000; ++i) {
    const std::int64_t s = secs(rng);
    const auto frac = static_cast<long long>(rng() % 1'000'000);
    const std::int64_t us = s * 1'000'000 + frac;
    const auto t = static_cast<std::time_t>(s);
    std::tm tm{};
    ASSERT_NE(gmtime_r(&t, &tm), nullptr);
    char want[40];
    std::snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    ASSERT_EQ(trace::format_timestamp(
                  std::chrono::system_clock::time_point{std::chrono::microseconds{us}}),
              want)
        << s;
  }
}

TEST(Ids, ShortUniqueBase36) {
  std::set<std::string> seen;
  for (int i = 0; i < 5000; ++i) {
    auto id = trace::next_id();
    EXPECT_GE(id.size(), 3u);
    EXPECT_LE(id.size(), 4u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdefghijklmnopqrstuvwxyz"), std::string::npos);
    EXPECT_TRUE(seen.insert(id).second) << id;
  }
}

}  // namespace
}  // namespace devspaces::test
