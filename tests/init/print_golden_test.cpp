// Golden files of `devspaces-proxy-init print`: the exact restore text per family and the new
// resolv.conf. Regenerate with DEVSPACES_UPDATE_GOLDEN=1 after an intended change, then review
// the diff.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "init/app.hpp"
#include "init/config.hpp"
#include "tests/support/test_support.hpp"

namespace devspaces::init {
namespace {

const std::string k8s_resolv =
    "search azureuser.svc.cluster.local svc.cluster.local cluster.local\n"
    "nameserver 10.96.0.10\n"
    "options ndots:5\n";

config parse(std::vector<std::string> args) {
  auto r = parse_config(args, [](const std::string&) { return std::optional<std::string>(); });
  EXPECT_FALSE(r.error) << *r.error;
  return r.cfg;
}

void check_golden(const std::string& name, const std::string& actual) {
  const auto path = test::source_path("tests/init/golden/" + name + ".golden");
  if (std::getenv("DEVSPACES_UPDATE_GOLDEN")) {
    std::ofstream(path, std::ios::binary) << actual;
    return;
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << "missing golden " << path << " (run with DEVSPACES_UPDATE_GOLDEN=1)";
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), actual) << "print output differs from " << path;
}

struct golden_case {
  std::string name;
  std::vector<std::string> args;
  bool ipv6;
  std::optional<std::string> resolv;
};

class print_golden : public ::testing::TestWithParam<golden_case> {};

TEST_P(print_golden, matches_golden_file) {
  const auto& g = GetParam();
  auto c = parse(g.args);
  auto resolv = c.resolv_conf.empty() ? std::nullopt : g.resolv;
  check_golden(g.name, render_print(c, g.ipv6, resolv));
}

std::string many_ports(int first, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) out += (i ? "," : "") + std::to_string(first + i);
  return out;
}

INSTANTIATE_TEST_SUITE_P(
    init, print_golden,
    ::testing::Values(
        golden_case{"default",
                    {"print", "--space", "azureuser", "--parent-spaces", "default"},
                    false,
                    k8s_resolv},
        golden_case{"inbound_ports",
                    {"print", "--inbound-ports", "80,8080,15090," + many_ports(9000, 16)},
                    false,
                    k8s_resolv},
        golden_case{"exclusions",
                    {"print", "--exclude-inbound-ports", "15090,15021,22",
                     "--exclude-outbound-ports", many_ports(5000, 17)},
                    false,
                    k8s_resolv},
        golden_case{"cidrs",
                    {"print", "--include-outbound-cidrs", "10.0.0.0/8,172.16.5.9/12,fd00::/8",
                     "--exclude-outbound-cidrs", "10.96.0.0/12,10.1.2.3,fd00:198::1/64"},
                    true,
                    k8s_resolv},
        golden_case{"uid_gid",
                    {"print", "--proxy-uid", "2102", "--proxy-gid", "2103", "--inbound-port",
                     "4143", "--outbound-port", "4140"},
                    false,
                    k8s_resolv},
        golden_case{"ipv6",
                    {"print", "--ipv6", "on", "--space", "dev-b", "--parent-spaces",
                     "dev-a,default", "--cluster-domain", "example.internal"},
                    true,
                    "nameserver fd00:10:96::a\nnameserver 10.96.0.10\n"
                    "search default.svc.example.internal svc.example.internal example.internal\n"},
        golden_case{
            "no_dns", {"print", "--resolv-conf", "", "--space", "azureuser"}, true, k8s_resolv}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace devspaces::init
