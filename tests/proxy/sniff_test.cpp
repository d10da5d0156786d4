#include "proxy/sniff.hpp"

#include <gtest/gtest.h>

namespace devspaces::proxy {
namespace {

using namespace std::chrono_literals;

TEST(sniff, method_token_and_space_is_http) {
  for (const char* s : {"GET / HTTP/1.1\r\n", "POST ", "OPTIONS *", "PROPFIND /x", "X "})
    EXPECT_EQ(classify_first_bytes(s), sniff_verdict::http) << s;
}

TEST(sniff, everything_else_is_tcp) {
  EXPECT_EQ(classify_first_bytes(std::string_view("\x16\x03\x01\x02\x00", 5)), sniff_verdict::tcp);
  EXPECT_EQ(classify_first_bytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), sniff_verdict::h2);
  EXPECT_EQ(
      classify_first_bytes(std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + std::string(9, '\0')),
      sniff_verdict::h2);
  EXPECT_EQ(classify_first_bytes("PRI * HTTP/2.0\r\n"), sniff_verdict::need_more);
  EXPECT_EQ(classify_first_bytes("PRI * HTTP/1.1\r\n\r\n"), sniff_verdict::tcp);
  EXPECT_EQ(classify_first_bytes("get / HTTP/1.1"), sniff_verdict::tcp);  // lowercase
  EXPECT_EQ(classify_first_bytes(" GET"), sniff_verdict::tcp);
  EXPECT_EQ(classify_first_bytes("GET\t/"), sniff_verdict::tcp);
  EXPECT_EQ(classify_first_bytes("GET/ "), sniff_verdict::tcp);
  EXPECT_EQ(classify_first_bytes("SSH-2.0-OpenSSH"), sniff_verdict::tcp);
  EXPECT_EQ(classify_first_bytes(std::string(21, 'A') + " "), sniff_verdict::tcp);
}

TEST(sniff, uppercase_prefix_waits_for_more) {
  EXPECT_EQ(classify_first_bytes(""), sniff_verdict::need_more);
  EXPECT_EQ(classify_first_bytes("G"), sniff_verdict::need_more);
  EXPECT_EQ(classify_first_bytes("OPTIO"), sniff_verdict::need_more);
  EXPECT_EQ(classify_first_bytes(std::string(20, 'A')), sniff_verdict::need_more);
}

TEST(sniff, speculative_connect_delay_stays_inside_the_window) {
  EXPECT_EQ(speculative_connect_delay(100ms), 10ms);
  EXPECT_EQ(speculative_connect_delay(5ms), 5ms);
  EXPECT_EQ(speculative_connect_delay(0ms), 0ms);
}

}  // namespace
}  // namespace devspaces::proxy
