#include "proxy/http/parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

namespace devspaces::proxy::http {
namespace {

// Outcome of parsing one message from `input` fed in pieces of `step` bytes (0 = all at once).
struct outcome {
  parse_event event = parse_event::need_more;
  parse_error error = parse_error::none;
  std::size_t consumed = 0;
  std::string body;
  std::string method, target, version, reason;
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::uint32_t head_end = 0;
  bool keep_alive = false;
  bool upgrade = false;
  bool chunked = false;
};

outcome parse(parser::kind k, const std::string& input, std::size_t step = 0,
              std::size_t max_head = 65536, bool head_request = false, bool connect = false,
              bool eof = false) {
  parser p(k, max_head);
  // The bytes live in one buffer, as in the session.
  std::string buf = input;
  p.begin_message(buf.data(), head_request, connect);
  outcome o;
  std::size_t pos = 0;
  while (pos < buf.size()) {
    const std::size_t n = step == 0 ? buf.size() - pos : std::min(step, buf.size() - pos);
    auto r = p.feed(buf.data() + pos, n);
    for (auto s : p.body()) o.body.append(s.data(), s.size());
    pos += r.consumed;
    o.event = r.event;
    if (r.event != parse_event::need_more) break;
  }
  if (o.event == parse_event::need_more && eof) {
    o.event = p.finish();
    for (auto s : p.body()) o.body.append(s.data(), s.size());
  }
  o.error = p.error();
  o.consumed = pos;
  if (p.head_complete()) {
    const auto& h = p.head();
    o.method = p.text(h.method);
    o.target = p.text(h.target);
    o.version = p.text(h.version);
    o.reason = p.text(h.reason);
    o.status = h.status;
    o.head_end = h.end;
    o.chunked = h.chunked;
    for (const auto& f : h.headers) o.headers.emplace_back(p.text(f.name), p.text(f.value));
  }
  o.keep_alive = p.keep_alive();
  o.upgrade = p.upgrade();
  return o;
}

outcome req(const std::string& in, std::size_t step = 0) {
  return parse(parser::kind::request, in, step);
}

TEST(parser, simple_get_spans_in_place) {
  const std::string in =
      "GET /a?b=1 HTTP/1.1\r\nHost: Example.COM:80\r\nX-Mixed-Case:  v  \r\n\r\n";
  auto o = req(in);
  EXPECT_EQ(o.event, parse_event::message_complete);
  EXPECT_EQ(o.consumed, in.size());
  EXPECT_EQ(o.method, "GET");
  EXPECT_EQ(o.target, "/a?b=1");
  EXPECT_EQ(o.version, "1.1");
  ASSERT_EQ(o.headers.size(), 2u);
  EXPECT_EQ(o.headers[0].first, "Host");
  EXPECT_EQ(o.headers[0].second, "Example.COM:80");
  EXPECT_EQ(o.headers[1].first, "X-Mixed-Case");
  EXPECT_EQ(o.headers[1].second, "v");
  EXPECT_EQ(o.head_end, in.size());
  EXPECT_TRUE(o.keep_alive);
}

TEST(parser, every_split_gives_the_same_result) {
  const std::vector<std::pair<parser::kind, std::string>> inputs = {
      {parser::kind::request, "GET / HTTP/1.1\r\nHost: a\r\nEmpty:\r\n\r\n"},
      {parser::kind::request, "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"},
      {parser::kind::request,
       "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-A: x\r\n\r\n"},
      {parser::kind::response,
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
      {parser::kind::response, "HTTP/1.0 404 Not Found\r\nContent-Length: 2\r\n\r\nno"},
  };
  for (const auto& [k, in] : inputs) {
    auto whole = parse(k, in);
    ASSERT_EQ(whole.event, parse_event::message_complete) << in;
    ASSERT_EQ(whole.consumed, in.size()) << in;
    for (std::size_t step = 1; step < in.size(); ++step) {
      auto o = parse(k, in, step);
      EXPECT_EQ(o.event, parse_event::message_complete) << in << " step " << step;
      EXPECT_EQ(o.consumed, in.size());
      EXPECT_EQ(o.body, whole.body);
      EXPECT_EQ(o.headers, whole.headers);
      EXPECT_EQ(o.target, whole.target);
      EXPECT_EQ(o.reason, whole.reason);
    }
  }
  EXPECT_EQ(parse(parser::kind::request, inputs[2].second).body, "hello world");
}

TEST(parser, stops_at_end_of_message_for_pipelining) {
  const std::string first = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string second = "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
  auto o = req(first + second);
  EXPECT_EQ(o.event, parse_event::message_complete);
  EXPECT_EQ(o.consumed, first.size());
  EXPECT_EQ(o.target, "/1");
}

TEST(parser, released_parser_reads_fresh_and_parses_the_next_messages) {
  parser p(parser::kind::request, 65536);
  EXPECT_FALSE(p.active());
  EXPECT_FALSE(p.head_complete());
  EXPECT_TRUE(p.head().headers.empty());

  std::string big = "GET /first HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 40; ++i) big += "X-H" + std::to_string(i) + ": " + std::to_string(i) + "\r\n";
  big += "\r\n";
  p.begin_message(big.data());
  EXPECT_TRUE(p.active());
  EXPECT_EQ(p.feed(big.data(), big.size()).event, parse_event::message_complete);
  EXPECT_EQ(p.head().headers.size(), 41u);

  // Released between exchanges (an idle keep-alive connection): reads as a fresh parser.
  p.release();
  EXPECT_FALSE(p.active());
  EXPECT_FALSE(p.head_complete());
  EXPECT_FALSE(p.message_done());
  EXPECT_FALSE(p.keep_alive());
  EXPECT_EQ(p.error(), parse_error::none);
  EXPECT_TRUE(p.head().headers.empty());
  EXPECT_TRUE(p.body().empty());
  EXPECT_EQ(p.text(byte_span{0, 3}), "");
  EXPECT_EQ(p.find_header("host"), nullptr);

  // Re-created: two pipelined messages with bodies in one buffer, fed a byte at a time.
  const std::string first = "POST /2 HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\nabc";
  const std::string second =
      "PUT /3 HTTP/1.1\r\nHost: c\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n";
  std::string buf = first + second;
  std::size_t pos = 0;
  for (const auto& [target, host, body, size] :
       {std::tuple{"/2", "b", "abc", first.size()}, std::tuple{"/3", "c", "xy", second.size()}}) {
    SCOPED_TRACE(target);
    p.begin_message(buf.data() + pos);
    const std::size_t start = pos;
    std::string got;
    parse_event ev = parse_event::need_more;
    while (ev == parse_event::need_more && pos < buf.size()) {
      auto r = p.feed(buf.data() + pos, 1);
      for (auto b : p.body()) got.append(b.data(), b.size());
      pos += r.consumed;
      ev = r.event;
    }
    EXPECT_EQ(ev, parse_event::message_complete);
    EXPECT_EQ(pos - start, size);
    EXPECT_EQ(p.text(p.head().target), target);
    ASSERT_NE(p.find_header("host"), nullptr);
    EXPECT_EQ(p.text(p.find_header("host")->value), host);
    EXPECT_EQ(p.head().headers.size(), 2u);
    EXPECT_EQ(got, body);
    EXPECT_TRUE(p.keep_alive());
  }
}

TEST(parser, a_released_state_serves_another_parser_of_another_kind) {
  // Released states are reused on the same thread: a response parser taking the state of a
  // request parser must see nothing of the request, and keep its own head limit.
  std::string request = "GET /x HTTP/1.1\r\nHost: a\r\nX-One: 1\r\nX-Two: 2\r\n\r\n";
  std::string response = "HTTP/1.1 204 No Content\r\nServer: s\r\n\r\n";
  parser req(parser::kind::request, 65536);
  req.begin_message(request.data());
  ASSERT_EQ(req.feed(request.data(), request.size()).event, parse_event::message_complete);
  req.release();
  parser resp(parser::kind::response, 32);
  resp.begin_message(response.data());
  EXPECT_EQ(resp.feed(response.data(), response.size()).event, parse_event::error);
  EXPECT_EQ(resp.error(), parse_error::head_too_large);
  resp.release();
  parser resp2(parser::kind::response, 65536);
  resp2.begin_message(response.data());
  EXPECT_EQ(resp2.feed(response.data(), response.size()).event, parse_event::message_complete);
  EXPECT_EQ(resp2.head().status, 204);
  ASSERT_EQ(resp2.head().headers.size(), 1u);
  EXPECT_EQ(resp2.text(resp2.head().headers[0].name), "Server");
  EXPECT_EQ(resp2.text(resp2.head().method), "");
}

TEST(parser, keep_alive_rules) {
  EXPECT_FALSE(req("GET / HTTP/1.0\r\nHost: a\r\n\r\n").keep_alive);
  EXPECT_TRUE(req("GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n").keep_alive);
  EXPECT_FALSE(req("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive);
}

TEST(parser, upgrade_and_connect_requests) {
  auto ws = req("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  EXPECT_EQ(ws.event, parse_event::message_complete);
  EXPECT_TRUE(ws.upgrade);
  auto c = req("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n");
  EXPECT_EQ(c.event, parse_event::message_complete);
  EXPECT_TRUE(c.upgrade);
  EXPECT_EQ(c.target, "a:443");
}

TEST(parser, response_shapes) {
  const auto resp = parser::kind::response;
  auto head = parse(resp, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 0, 65536, true);
  EXPECT_EQ(head.event, parse_event::message_complete);
  EXPECT_EQ(head.body, "");
  auto no_content = parse(resp, "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1");
  EXPECT_EQ(no_content.event, parse_event::message_complete);
  EXPECT_EQ(no_content.consumed, 27u);
  auto not_modified = parse(resp, "HTTP/1.1 304 Not Modified\r\nContent-Length: 4\r\n\r\n");
  EXPECT_EQ(not_modified.event, parse_event::message_complete);
  auto cont = parse(resp, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n");
  EXPECT_EQ(cont.event, parse_event::message_complete);
  EXPECT_EQ(cont.status, 100);
  EXPECT_EQ(cont.consumed, 25u);
  auto eof = parse(resp, "HTTP/1.1 200 OK\r\n\r\nuntil close", 0, 65536, false, false, true);
  EXPECT_EQ(eof.event, parse_event::message_complete);
  EXPECT_EQ(eof.body, "until close");
  EXPECT_FALSE(eof.keep_alive);
  auto switching = parse(
      resp,
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nraw");
  EXPECT_EQ(switching.event, parse_event::message_complete);
  EXPECT_TRUE(switching.upgrade);
  EXPECT_EQ(switching.consumed, 77u);
  auto tunnel =
      parse(resp, "HTTP/1.1 200 Connection established\r\n\r\nraw", 0, 65536, false, true);
  EXPECT_EQ(tunnel.event, parse_event::message_complete);
  EXPECT_TRUE(tunnel.upgrade);
  EXPECT_EQ(tunnel.body, "");
  auto truncated = parse(resp, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", 0, 65536, false,
                         false, true);
  EXPECT_EQ(truncated.event, parse_event::error);
  EXPECT_EQ(truncated.error, parse_error::unexpected_eof);
  auto bad = parse(resp, "HTTP/1.1 2x0 OK\r\n\r\n");
  EXPECT_EQ(bad.event, parse_event::error);
  // Found by fuzzing: llhttp takes one- and two-digit codes.
  for (const char* line : {"HTTP/1.1 2\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 600 X\r\n\r\n",
                           "HTTP/1.1 099 X\r\n\r\n", "HTTP/1.1 2000 X\r\n\r\n"}) {
    SCOPED_TRACE(line);
    auto b = parse(resp, line, 0, 65536, false, false, true);
    EXPECT_EQ(b.event, parse_event::error);
    EXPECT_EQ(b.error, parse_error::bad_status) << describe(b.error);
  }
  auto no_reason = parse(resp, "HTTP/1.1 204\r\n\r\n");
  EXPECT_EQ(no_reason.event, parse_event::message_complete);
}

TEST(parser, head_size_limit) {
  const std::string small = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";  // 27 bytes
  EXPECT_EQ(parse(parser::kind::request, small, 0, small.size()).event,
            parse_event::message_complete);
  auto over = parse(parser::kind::request, small, 0, small.size() - 1);
  EXPECT_EQ(over.error, parse_error::head_too_large);
  std::string big = "GET / HTTP/1.1\r\nX: " + std::string(1000, 'a');
  auto incomplete = parse(parser::kind::request, big, 7, 512);
  EXPECT_EQ(incomplete.event, parse_event::error);
  EXPECT_EQ(incomplete.error, parse_error::head_too_large);
  auto resp = parse(parser::kind::response,
                    "HTTP/1.1 200 OK\r\nX: " + std::string(600, 'b') + "\r\n\r\n", 0, 512);
  EXPECT_EQ(resp.error, parse_error::head_too_large);
}

struct smuggling_case {
  const char* name;
  std::string input;
  parse_error expected;
};

TEST(parser, smuggling_vectors_are_rejected) {
  const std::string get = "POST / HTTP/1.1\r\nHost: a\r\n";
  const std::vector<smuggling_case> cases = {
      {"CL.TE", get + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX",
       parse_error::both_cl_te},
      {"TE.CL", get + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n1\r\nZ\r\n0\r\n\r\n",
       parse_error::both_cl_te},
      {"TE xchunked", get + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
       parse_error::bad_transfer_encoding},
      {"TE space before colon", get + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
       parse_error::invalid_header},
      {"TE chunked not last", get + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
       parse_error::bad_transfer_encoding},
      {"TE duplicate", get + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       parse_error::bad_transfer_encoding},
      {"TE chunked twice in list", get + "Transfer-Encoding: chunked, chunked\r\n\r\n",
       parse_error::bad_transfer_encoding},
      {"TE tab obfuscation", get + "Transfer-Encoding:\tchunked\x0b\r\n\r\n",
       parse_error::invalid_header_char},
      {"TE gzip only", get + "Transfer-Encoding: gzip\r\n\r\n", parse_error::bad_transfer_encoding},
      {"TE chunked with trailing tab, upgrade",
       get + "Upgrade: h\r\nConnection: Upgrade, e\t\r\nTransfer-Encoding: chunked\t\r\n\r\n"
             "5\r\nhello\r\n0\r\n\r\n",
       parse_error::bad_transfer_encoding},
      {"TE chunked with trailing tab", get + "Transfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n",
       parse_error::bad_transfer_encoding},
      {"duplicate CL differing", get + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
       parse_error::duplicate_content_length},
      {"duplicate CL identical", get + "Content-Length: 1\r\nContent-Length: 1\r\n\r\na",
       parse_error::duplicate_content_length},
      {"CL list", get + "Content-Length: 1, 1\r\n\r\na", parse_error::bad_content_length},
      {"CL negative", get + "Content-Length: -1\r\n\r\n", parse_error::bad_content_length},
      {"CL plus sign", get + "Content-Length: +1\r\n\r\na", parse_error::bad_content_length},
      {"chunk size not hex", get + "Transfer-Encoding: chunked\r\n\r\nzz\r\n",
       parse_error::bad_chunk_size},
      {"chunk size 0x prefix", get + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
       parse_error::bad_chunk_size},
      {"chunk size overflow", get + "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\n",
       parse_error::bad_chunk_size},
      {"chunk size negative", get + "Transfer-Encoding: chunked\r\n\r\n-5\r\n",
       parse_error::bad_chunk_size},
      {"chunk data overrun", get + "Transfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
       parse_error::bad_chunk},
      {"obs-fold", get + "X-A: one\r\n two\r\nContent-Length: 0\r\n\r\n", parse_error::obs_fold},
      {"obs-fold TE", get + "Transfer-Encoding: identity\r\n chunked\r\n\r\n",
       parse_error::obs_fold},
      {"bare CR in value", get + "X-A: a\rb\r\n\r\n", parse_error::bare_cr},
      {"bare LF line end", get + "X-A: a\nContent-Length: 0\r\n\r\n", parse_error::bare_lf},
      {"bare LF head end", "GET / HTTP/1.1\nHost: a\n\n", parse_error::bare_lf},
      {"NUL in value", get + std::string("X-A: a\0b\r\n\r\n", 12), parse_error::nul_byte},
      {"NUL in name", get + std::string("X\0A: ab\r\n\r\n", 11), parse_error::nul_byte},
      {"control char in value",
       get + "X-A: a\x01"
             "b\r\n\r\n",
       parse_error::invalid_header_char},
      {"space in name", get + "X A: b\r\n\r\n", parse_error::invalid_header},
      {"bad version", "GET / HTTP/1.2x\r\n\r\n", parse_error::bad_version},
      {"lowercase method", "get / HTTP/1.1\r\n\r\n", parse_error::bad_method},
      {"space in target", "GET /a b HTTP/1.1\r\n\r\n", parse_error::malformed},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto o = req(c.input);
    EXPECT_EQ(o.event, parse_event::error);
    EXPECT_EQ(o.error, c.expected) << describe(o.error);
    // Split at every byte: the verdict is the same (an error), never a completed message.
    for (std::size_t step = 1; step < c.input.size(); ++step) {
      auto s = req(c.input, step);
      EXPECT_NE(s.event, parse_event::message_complete) << "step " << step;
    }
  }
}

struct line_case {
  const char* name;
  std::string input;
  parse_error expected;  // none: accepted
  const char* authority = "";
};

// RFC 9112 §3 request-line and §3.2 Host rules.
// The head scan skips ordinary bytes 16 at a time: a forbidden byte is found at every offset
// of a long line, in both halves of a block and across block edges, and bytes 0x80-0xff (obs-text)
// are not taken for control characters.
TEST(parser, forbidden_bytes_are_found_at_every_offset_of_a_long_line) {
  const std::string get = "GET / HTTP/1.1\r\nHost: a\r\n";
  const std::pair<char, parse_error> bad[] = {{'\0', parse_error::nul_byte},
                                              {'\x01', parse_error::invalid_header_char},
                                              {'\x1f', parse_error::invalid_header_char},
                                              {'\x7f', parse_error::invalid_header_char},
                                              {'\n', parse_error::bare_lf},
                                              {'\r', parse_error::bare_cr}};
  for (std::size_t at = 0; at < 70; ++at) {
    std::string value(70, 'v');
    value[35] = static_cast<char>(0xe9);  // obs-text: allowed in a value
    {
      const auto o = req(get + "X-A: " + value + "\r\n\r\n");
      ASSERT_EQ(o.error, parse_error::none) << at;
      ASSERT_EQ(o.headers.back().second, value);
    }
    for (const auto& [byte, error] : bad) {
      if (at == 35) continue;
      std::string v = value;
      v[at] = byte;
      const auto o = req(get + "X-A: " + v + "\r\n\r\n");
      EXPECT_EQ(o.error, error) << "byte " << int(byte) << " at " << at;
      // Fed a byte at a time, the same answer.
      EXPECT_EQ(req(get + "X-A: " + v + "\r\n\r\n", 1).error, error) << at;
    }
  }
  // obs-fold is still seen right after a long line.
  EXPECT_EQ(req(get + "X-A: " + std::string(40, 'v') + "\r\n\tmore\r\n\r\n").error,
            parse_error::obs_fold);
}

TEST(parser, request_line_and_host_rules) {
  const std::vector<line_case> cases = {
      {"origin-form", "GET /a?b HTTP/1.1\r\nHost: svc:8080\r\n\r\n", parse_error::none, "svc:8080"},
      {"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", parse_error::none, ""},
      {"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", parse_error::none, ""},
      {"IPv6 Host", "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", parse_error::none, "[::1]:80"},
      {"absolute-form wins", "GET http://10.0.0.1:81/x HTTP/1.1\r\nHost: svc\r\n\r\n",
       parse_error::none, "10.0.0.1:81"},
      {"absolute-form uppercase scheme", "GET HTTP://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
       parse_error::none, "a"},
      {"absolute-form query only", "GET http://a?x HTTP/1.1\r\nHost: a\r\n\r\n", parse_error::none,
       "a"},
      {"CONNECT authority", "CONNECT a.b:443 HTTP/1.1\r\nHost: a.b:443\r\n\r\n", parse_error::none,
       "a.b:443"},
      {"OPTIONS asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", parse_error::none, "a"},
      {"HTTP/1.2 processed as 1.1", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", parse_error::none, "a"},
      {"HTTP/1.9", "GET / HTTP/1.9\r\nHost: a\r\n\r\n", parse_error::none, "a"},
      {"missing Host", "GET / HTTP/1.1\r\nX: a\r\n\r\n", parse_error::missing_host},
      {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", parse_error::duplicate_host},
      {"Host list", "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", parse_error::bad_host},
      {"Host list no space", "GET / HTTP/1.1\r\nHost: a,b\r\n\r\n", parse_error::bad_host},
      {"Host userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", parse_error::bad_host},
      {"Host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", parse_error::bad_host},
      {"Host port not digits", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", parse_error::bad_host},
      {"Host port too big", "GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", parse_error::bad_host},
      {"Host empty port", "GET / HTTP/1.1\r\nHost: a:\r\n\r\n", parse_error::bad_host},
      {"Host bad IPv6", "GET / HTTP/1.1\r\nHost: [zz]\r\n\r\n", parse_error::bad_host},
      {"HTTP/1.0 two Hosts", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
       parse_error::duplicate_host},
      {"absolute-form userinfo", "GET http://svc@10.0.0.1/ HTTP/1.1\r\nHost: a\r\n\r\n",
       parse_error::bad_target},
      {"absolute-form empty authority", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n",
       parse_error::bad_host},
      {"absolute-form other scheme", "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
       parse_error::bad_target},
      {"fragment", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", parse_error::bad_target},
      {"asterisk on GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", parse_error::bad_target},
      {"CONNECT origin-form", "CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", parse_error::bad_target},
      {"CONNECT without port", "CONNECT a HTTP/1.1\r\nHost: a\r\n\r\n", parse_error::bad_target},
      {"double space after method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
       parse_error::bad_request_line},
      {"double space before version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
       parse_error::bad_request_line},
      {"HTTP/2.0 in HTTP/1 syntax", "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
       parse_error::unsupported_version},
      {"HTTP/0.9 version", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", parse_error::unsupported_version},
      {"HTTP/3.1", "GET / HTTP/3.1\r\nHost: a\r\n\r\n", parse_error::unsupported_version},
      {"HTTP/1.10", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", parse_error::bad_version},
      {"HTTP/0.9 with headers", "GET /\r\nHost: a\r\n\r\n", parse_error::bad_version},
      {"separator in method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", parse_error::bad_method},
      {"empty header name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n",
       parse_error::invalid_header},
      {"Connection names Host", "GET / HTTP/1.1\r\nHost: a\r\nConnection: host\r\n\r\n",
       parse_error::bad_connection_option},
      {"Connection names CL",
       "POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 1\r\n\r\nx",
       parse_error::bad_connection_option},
      {"HTTP/1.0 chunked", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       parse_error::bad_transfer_encoding},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    parser p(parser::kind::request, 65536);
    std::string buf = c.input;
    p.begin_message(buf.data());
    auto r = p.feed(buf.data(), buf.size());
    if (c.expected == parse_error::none) {
      EXPECT_EQ(r.event, parse_event::message_complete) << describe(p.error());
      EXPECT_EQ(p.text(p.head().authority), c.authority);
    } else {
      EXPECT_EQ(r.event, parse_event::error);
      EXPECT_EQ(p.error(), c.expected) << describe(p.error());
    }
    for (std::size_t step = 1; step < c.input.size(); ++step) {
      auto s = req(c.input, step);
      if (c.expected == parse_error::none) {
        EXPECT_EQ(s.event, parse_event::message_complete) << "step " << step;
      } else {
        EXPECT_EQ(s.event, parse_event::error) << "step " << step;
      }
    }
  }
  EXPECT_EQ(status_for(parse_error::unsupported_version), 505);
  EXPECT_EQ(status_for(parse_error::head_too_large), 431);
  EXPECT_EQ(status_for(parse_error::missing_host), 400);
}

// "GET /" and CRLF is answered at once, not left waiting for a head that never comes.
TEST(parser, http09_request_line_fails_without_more_bytes) {
  for (const std::string in : {"GET /\r\n", "\r\nGET /x\r\n", "GET /\n"}) {
    SCOPED_TRACE(in);
    parser p(parser::kind::request, 65536);
    std::string buf = in;
    p.begin_message(buf.data());
    auto r = p.feed(buf.data(), buf.size());
    EXPECT_EQ(r.event, parse_event::error);
    EXPECT_EQ(status_for(p.error()), 400);
  }
}

TEST(parser, chunk_size_bounds) {
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  struct c {
    const char* name;
    std::string body;
    parse_error expected;
  };
  const std::vector<c> cases = {
      {"16 digits", "0000000000000005\r\nhello\r\n0\r\n\r\n", parse_error::none},
      {"17 digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", parse_error::bad_chunk_size},
      {"17 digits second chunk", "1\r\na\r\n00000000000000001\r\nb\r\n0\r\n\r\n",
       parse_error::bad_chunk_size},
      {"64-bit size", "8000000000000000\r\n", parse_error::bad_chunk_size},
      {"over 64 bits", "10000000000000000\r\n", parse_error::bad_chunk_size},
      {"largest 63-bit size accepted", "7fffffffffffffff\r\nab", parse_error::none},
      {"short extension", "5;a=b\r\nhello\r\n0\r\n\r\n", parse_error::none},
      {"long extension", "5;a=" + std::string(300, 'x') + "\r\nhello\r\n0\r\n\r\n",
       parse_error::bad_chunk},
      {"long extension on last chunk", "0;a=" + std::string(300, 'x') + "\r\n\r\n",
       parse_error::bad_chunk},
      {"allowed trailer", "0\r\nX-Checksum: 1\r\n\r\n", parse_error::none},
      {"Content-Length trailer", "0\r\nContent-Length: 5\r\n\r\n", parse_error::forbidden_trailer},
      {"Transfer-Encoding trailer", "0\r\ntransfer-encoding: chunked\r\n\r\n",
       parse_error::forbidden_trailer},
      {"Host trailer", "0\r\nHost: b\r\n\r\n", parse_error::forbidden_trailer},
      {"If- trailer", "0\r\nIf-Match: x\r\n\r\n", parse_error::forbidden_trailer},
      {"empty trailer name", "0\r\n: x\r\n\r\n", parse_error::invalid_header},
      {"folded trailer", "0\r\nX-A: a\r\n b\r\n\r\n", parse_error::obs_fold},
      {"control char in trailer", "0\r\nX-A: a\x01\r\n\r\n", parse_error::invalid_header},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.name);
    const std::string in = head + k.body;
    for (std::size_t step : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{7}}) {
      auto o = req(in, step);
      if (k.expected == parse_error::none) {
        EXPECT_NE(o.event, parse_event::error) << describe(o.error) << " step " << step;
      } else {
        EXPECT_EQ(o.event, parse_event::error) << "step " << step;
        EXPECT_EQ(o.error, k.expected) << describe(o.error) << " step " << step;
      }
    }
  }
}

TEST(parser, h2c_only_upgrade_is_not_an_upgrade) {
  auto o =
      req("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
          "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n");
  EXPECT_EQ(o.event, parse_event::message_complete);
  EXPECT_FALSE(o.upgrade);
  auto w =
      req("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c, websocket\r\n\r\n");
  EXPECT_TRUE(w.upgrade);
}

TEST(parser, describe_names_the_reason) {
  EXPECT_EQ(describe(parse_error::both_cl_te), "both Content-Length and Transfer-Encoding");
  EXPECT_EQ(describe(parse_error::head_too_large), "head too large");
}

}  // namespace
}  // namespace devspaces::proxy::http
