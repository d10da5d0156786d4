#include "init/verify.hpp"

#include <gtest/gtest.h>

#include "init/loopback.hpp"

namespace devspaces::init {
namespace {

config parse(std::vector<std::string> args) {
  auto r = parse_config(args, [](const std::string&) { return std::optional<std::string>(); });
  EXPECT_FALSE(r.error) << *r.error;
  return r.cfg;
}

TEST(init_verify, cidr_contains) {
  EXPECT_TRUE(cidr_contains(*parse_cidr("10.0.0.0/8"), "10.255.1.2"));
  EXPECT_FALSE(cidr_contains(*parse_cidr("10.0.0.0/8"), "11.0.0.1"));
  EXPECT_TRUE(cidr_contains(*parse_cidr("0.0.0.0/0"), "198.18.255.1"));
  EXPECT_TRUE(cidr_contains(*parse_cidr("fd00::/8"), "fd00:198:18:ffff::1"));
  EXPECT_FALSE(cidr_contains(*parse_cidr("fd00::/8"), "10.0.0.1"));
  EXPECT_FALSE(cidr_contains(*parse_cidr("198.18.0.0/15"), "198.20.0.1"));
}

TEST(init_verify, outbound_target_is_captured_by_the_config) {
  auto t = outbound_probe_target(parse({}), family::v4);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->address, "198.18.255.1");
  EXPECT_EQ(t->port, 15002);
  t = outbound_probe_target(parse({"--exclude-outbound-ports", "15002,80"}), family::v6);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->address, "fd00:198:18:ffff::1");
  EXPECT_EQ(t->port, 8080);
  // Only 10/8 captured: the test goes inside it.
  t = outbound_probe_target(parse({"--include-outbound-cidrs", "10.0.0.0/8"}), family::v4);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->address, "10.0.0.1");
  // Nothing of the family captured: nothing to test.
  EXPECT_FALSE(
      outbound_probe_target(parse({"--include-outbound-cidrs", "10.0.0.0/8"}), family::v6));
  EXPECT_FALSE(outbound_probe_target(
      parse({"--include-outbound-cidrs", "10.0.0.0/8", "--exclude-outbound-cidrs", "10.0.0.0/16"}),
      family::v4));
}

TEST(init_verify, inbound_port_is_captured_and_not_excluded) {
  EXPECT_EQ(inbound_probe_port(parse({})), 15002);
  EXPECT_EQ(inbound_probe_port(parse({"--inbound-ports", "15090,8080"})), 8080);
  EXPECT_FALSE(inbound_probe_port(parse({"--inbound-ports", ""})));
  EXPECT_FALSE(inbound_probe_port(parse({"--inbound-ports", "15090"})));
}

TEST(init_loopback, passthrough_address_in_if_inet6) {
  EXPECT_TRUE(
      has_passthrough_v6("00000000000000000000000000000001 01 80 10 80       lo\n"
                         "00000000000000000000000000000006 01 80 10 80       lo\n"));
  EXPECT_FALSE(has_passthrough_v6("00000000000000000000000000000001 01 80 10 80       lo\n"));
  EXPECT_FALSE(has_passthrough_v6("00000000000000000000000000000006 02 80 00 80     eth0\n"));
  EXPECT_FALSE(has_passthrough_v6(""));
}

}  // namespace
}  // namespace devspaces::init
