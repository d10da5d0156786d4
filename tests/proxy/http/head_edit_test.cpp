#include "proxy/http/head_edit.hpp"

#include <gtest/gtest.h>

#include <string>

namespace devspaces::proxy::http {
namespace {

struct parsed {
  std::string buf;
  parser p;
  explicit parsed(std::string in, parser::kind k = parser::kind::request)
      : buf(std::move(in)), p(k, 65536) {
    p.begin_message(buf.data());
    auto r = p.feed(buf.data(), buf.size());
    EXPECT_TRUE(p.head_complete()) << describe(p.error());
    (void)r;
  }
  std::string edited(const head_edit& e) const {
    return e.joined(buf.data(), p.head().start, p.head().end);
  }
};

TEST(head_edit, inserts_route_header_before_final_crlf_byte_exact) {
  parsed m("GET /x HTTP/1.1\r\nhOST:   Azureuser.S.default.X  \r\nX-B:\tkeep\r\n\r\nbody");
  head_edit e;
  add_header(e, m.p, "azds-route-as", "azureuser");
  EXPECT_EQ(m.edited(e),
            "GET /x HTTP/1.1\r\nhOST:   Azureuser.S.default.X  \r\nX-B:\tkeep\r\n"
            "azds-route-as: azureuser\r\n\r\n");
}

TEST(head_edit, no_edit_is_identity) {
  parsed m("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  head_edit e;
  EXPECT_TRUE(e.empty());
  EXPECT_EQ(m.edited(e), m.buf);
  EXPECT_EQ(e.pieces(m.buf.data(), m.p.head().start, m.p.head().end).size(), 1u);
}

TEST(head_edit, head_without_headers) {
  parsed m("GET / HTTP/1.0\r\n\r\n");
  head_edit e;
  add_header(e, m.p, "azds-route-as", "s1");
  EXPECT_EQ(m.edited(e), "GET / HTTP/1.0\r\nazds-route-as: s1\r\n\r\n");
}

TEST(head_edit, connection_close_added_to_response) {
  parsed m("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", parser::kind::response);
  head_edit e;
  force_connection_close(e, m.p);
  EXPECT_EQ(m.edited(e), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

TEST(head_edit, connection_keep_alive_value_replaced) {
  parsed m("HTTP/1.1 200 OK\r\nconnection:  Keep-Alive\r\nContent-Length: 0\r\n\r\n",
           parser::kind::response);
  head_edit e;
  force_connection_close(e, m.p);
  EXPECT_EQ(m.edited(e), "HTTP/1.1 200 OK\r\nconnection:  close\r\nContent-Length: 0\r\n\r\n");
}

// Found by the fuzzer: llhttp reports an empty value past the line end, and "close" was
// inserted after the CRLF, corrupting the head.
TEST(head_edit, empty_connection_value_is_filled_in_on_its_own_line) {
  for (const char* sep : {":", ": ", ":\t \t"}) {
    parsed m(std::string("HTTP/1.1 200 OK\r\nConnection") + sep + "\r\nContent-Length: 0\r\n\r\n",
             parser::kind::response);
    ASSERT_EQ(m.p.head().headers.size(), 2u);
    EXPECT_EQ(m.p.text(m.p.head().headers[0].value), "");
    head_edit e;
    force_connection_close(e, m.p);
    EXPECT_EQ(m.edited(e), std::string("HTTP/1.1 200 OK\r\nConnection") + sep +
                               "close\r\nContent-Length: 0\r\n\r\n");
  }
}

TEST(head_edit, connection_close_already_present_is_untouched) {
  parsed m("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", parser::kind::response);
  head_edit e;
  force_connection_close(e, m.p);
  EXPECT_TRUE(e.empty());
}

TEST(head_edit, multiple_edits_in_order) {
  parsed m("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n", parser::kind::response);
  head_edit e;
  add_header(e, m.p, "X-Last", "1");
  force_connection_close(e, m.p);
  EXPECT_EQ(m.edited(e), "HTTP/1.1 200 OK\r\nConnection: close\r\nX-Last: 1\r\n\r\n");
}

TEST(head_edit, has_token) {
  EXPECT_TRUE(has_token("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(has_token(" close ", "close"));
  EXPECT_FALSE(has_token("closed", "close"));
}

std::string normalized(const std::string& in) {
  parsed m(in);
  head_edit e;
  const std::string_view keep[] = {"azds-route-as"};
  normalize_request(e, m.p, keep);
  return m.edited(e);
}

TEST(head_edit, normalize_leaves_a_plain_request_byte_exact) {
  const std::string in = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nX: 1\r\n\r\n";
  EXPECT_EQ(normalized(in), in);
  const std::string ws =
      "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
  EXPECT_EQ(normalized(ws), ws);
}

TEST(head_edit, normalize_removes_hop_by_hop_fields) {
  EXPECT_EQ(normalized("GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-A, x-b\r\nX-A: 1\r\n"
                       "Keep-Alive: timeout=5\r\nX-B: 2\r\nProxy-Connection: keep-alive\r\n"
                       "X-C: 3\r\n\r\n"),
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-C: 3\r\n\r\n");
  // Several Connection lines: one regenerated line remains.
  EXPECT_EQ(normalized("GET / HTTP/1.1\r\nConnection: X-A\r\nHost: a\r\nConnection: keep-alive\r\n"
                       "X-A: 1\r\n\r\n"),
            "GET / HTTP/1.1\r\nConnection: keep-alive\r\nHost: a\r\n\r\n");
  // Nothing left to say: no Connection line at all.
  EXPECT_EQ(normalized("GET / HTTP/1.1\r\nHost: a\r\nConnection: X-A\r\nX-A: 1\r\n\r\n"),
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
}

TEST(head_edit, normalize_keeps_the_route_header_even_when_named) {
  EXPECT_EQ(normalized("GET / HTTP/1.1\r\nHost: a\r\nConnection: azds-route-as\r\n"
                       "azds-route-as: s1\r\n\r\n"),
            "GET / HTTP/1.1\r\nHost: a\r\nazds-route-as: s1\r\n\r\n");
}

TEST(head_edit, normalize_te_keeps_only_trailers) {
  EXPECT_EQ(normalized("GET / HTTP/1.1\r\nHost: a\r\nTE: gzip\r\n\r\n"),
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(normalized("GET / HTTP/1.1\r\nHost: a\r\nTE: trailers, deflate\r\n\r\n"),
            "GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nConnection: te\r\n\r\n");
  EXPECT_EQ(normalized("GET / HTTP/1.1\r\nHost: a\r\nConnection: TE\r\nTE: trailers\r\n\r\n"),
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: TE\r\nTE: trailers\r\n\r\n");
}

TEST(head_edit, normalize_removes_the_h2c_offer) {
  // curl --http2 and Java's HttpClient on cleartext.
  EXPECT_EQ(normalized("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                       "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nAccept: */*\r\n\r\n"),
            "GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n");
  EXPECT_EQ(normalized("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                       "Upgrade: h2c, websocket\r\n\r\n"),
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  // Upgrade without the Connection option is not an upgrade: removed.
  EXPECT_EQ(normalized("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"),
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
}

TEST(head_edit, normalize_makes_host_agree_with_an_absolute_target) {
  EXPECT_EQ(normalized("GET http://10.0.0.1:81/x HTTP/1.1\r\nHost: svc\r\n\r\n"),
            "GET http://10.0.0.1:81/x HTTP/1.1\r\nHost: 10.0.0.1:81\r\n\r\n");
  EXPECT_EQ(normalized("GET http://a/x HTTP/1.1\r\nHost:\r\n\r\n"),
            "GET http://a/x HTTP/1.1\r\nHost:a\r\n\r\n");
  EXPECT_EQ(normalized("GET http://a/x HTTP/1.0\r\n\r\n"),
            "GET http://a/x HTTP/1.0\r\nHost: a\r\n\r\n");
  const std::string same = "GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n";
  EXPECT_EQ(normalized(same), same);
}

TEST(head_edit, normalize_sends_http_1_1_for_higher_minors) {
  EXPECT_EQ(normalized("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
}

}  // namespace
}  // namespace devspaces::proxy::http
