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

}  // namespace
}  // namespace devspaces::proxy::http
