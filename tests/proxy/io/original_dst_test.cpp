#include "proxy/io/original_dst.hpp"

#include <arpa/inet.h>

#include <cstring>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

namespace devspaces::proxy::io {
namespace {

namespace asio = boost::asio;

TEST(original_dst, decodes_ipv4) {
  sockaddr_storage ss{};
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(8080);
  ASSERT_EQ(inet_pton(AF_INET, "10.9.9.9", &in.sin_addr), 1);
  std::memcpy(&ss, &in, sizeof in);
  auto ep = decode_sockaddr(ss, sizeof in);
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->address().to_string(), "10.9.9.9");
  EXPECT_EQ(ep->port(), 8080);
  EXPECT_FALSE(decode_sockaddr(ss, sizeof in - 1));  // truncated
}

TEST(original_dst, decodes_ipv6_and_v4_mapped) {
  sockaddr_storage ss{};
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(9090);
  ASSERT_EQ(inet_pton(AF_INET6, "fd00::9", &in6.sin6_addr), 1);
  std::memcpy(&ss, &in6, sizeof in6);
  auto ep = decode_sockaddr(ss, sizeof in6);
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->address().to_string(), "fd00::9");
  EXPECT_EQ(ep->port(), 9090);

  ASSERT_EQ(inet_pton(AF_INET6, "::ffff:198.18.0.2", &in6.sin6_addr), 1);
  std::memcpy(&ss, &in6, sizeof in6);
  ep = decode_sockaddr(ss, sizeof in6);
  ASSERT_TRUE(ep);
  EXPECT_TRUE(ep->address().is_v4());
  EXPECT_EQ(ep->address().to_string(), "198.18.0.2");
}

TEST(original_dst, rejects_other_families) {
  sockaddr_storage ss{};
  ss.ss_family = AF_UNIX;
  EXPECT_FALSE(decode_sockaddr(ss, sizeof ss));
}

TEST(original_dst, without_nat_entry_reports_an_error) {
  // A plain loopback connection has no conntrack NAT entry: the lookup fails with an error.
  asio::io_context io;
  asio::ip::tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket c(io);
  c.connect(acc.local_endpoint());
  auto s = acc.accept();
  std::error_code ec;
  auto ep = original_dst(s.native_handle(), ec);
  if (ep) {
    // With conntrack loaded the kernel may answer with the unchanged destination.
    EXPECT_EQ(*ep, acc.local_endpoint());
  } else {
    EXPECT_TRUE(ec);
  }
}

}  // namespace
}  // namespace devspaces::proxy::io
