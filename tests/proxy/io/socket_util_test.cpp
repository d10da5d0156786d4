#include "proxy/io/socket_util.hpp"

#include <gtest/gtest.h>

namespace devspaces::test {
namespace {

namespace asio = boost::asio;
using asio::ip::make_address;
using asio::ip::tcp;

TEST(endpoint_text, ipv4_is_dotted_quad_and_port) {
  EXPECT_EQ(proxy::io::endpoint_text(tcp::endpoint(make_address("198.18.0.1"), 8080)),
            "198.18.0.1:8080");
  EXPECT_EQ(proxy::io::endpoint_text(tcp::endpoint(make_address("0.0.0.0"), 0)), "0.0.0.0:0");
  EXPECT_EQ(proxy::io::endpoint_text(tcp::endpoint(make_address("255.255.255.255"), 65535)),
            "255.255.255.255:65535");
  EXPECT_EQ(proxy::io::endpoint_text(tcp::endpoint(make_address("10.0.100.9"), 80)),
            "10.0.100.9:80");
}

TEST(endpoint_text, every_octet_and_port_width_matches_the_decimal_text) {
  const unsigned ports[] = {0, 9, 10, 99, 100, 999, 1000, 9999, 10000, 10005, 65535};
  for (unsigned v = 0; v < 256; ++v) {
    const auto o = std::to_string(v);
    const auto address = boost::asio::ip::address_v4(
        {static_cast<unsigned char>(v), 0, static_cast<unsigned char>(v), 7});
    for (unsigned port : ports) {
      const auto ep = tcp::endpoint(address, static_cast<unsigned short>(port + v));
      EXPECT_EQ(proxy::io::endpoint_text(ep),
                o + ".0." + o + ".7:" + std::to_string(static_cast<unsigned short>(port + v)));
    }
  }
}

TEST(endpoint_text, ipv6_is_bracketed) {
  EXPECT_EQ(proxy::io::endpoint_text(tcp::endpoint(make_address("::1"), 15001)), "[::1]:15001");
  EXPECT_EQ(proxy::io::endpoint_text(tcp::endpoint(make_address("fd00::6"), 80)), "[fd00::6]:80");
  EXPECT_EQ(proxy::io::endpoint_text(tcp::endpoint(make_address("::ffff:198.18.0.1"), 1)),
            "[::ffff:198.18.0.1]:1");
}

TEST(endpoint_text, matches_asio_address_text) {
  for (const char* a : {"198.18.0.1", "::1", "fe80::1%1", "::ffff:10.0.0.1"}) {
    const tcp::endpoint ep(make_address(a), 15090);
    const auto text = ep.address().to_string();
    const auto want = ep.address().is_v6() ? "[" + text + "]:15090" : text + ":15090";
    EXPECT_EQ(proxy::io::format_endpoint(ep).view(), want) << a;
    EXPECT_EQ(proxy::io::endpoint_text(ep), want) << a;
  }
}

TEST(endpoint_text, appends) {
  std::string out = "dst=";
  proxy::io::append_endpoint(out, tcp::endpoint(make_address("127.0.0.6"), 9));
  EXPECT_EQ(out, "dst=127.0.0.6:9");
}

}  // namespace
}  // namespace devspaces::test
