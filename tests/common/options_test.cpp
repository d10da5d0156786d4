#include "common/options.hpp"

#include <map>

#include <gtest/gtest.h>

namespace devspaces::common {
namespace {

struct fixture {
  std::string value;
  std::vector<option_spec> specs;
  fixture() {
    specs.push_back({"--name", "TEST_NAME", "dflt", "a name", [this](std::string_view v) {
                       if (v == "bad") return std::optional<std::string>("is bad");
                       value = std::string(v);
                       return std::optional<std::string>();
                     }});
  }
  parse_result parse(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    return parse_options(specs, args, [env](const std::string& k) -> std::optional<std::string> {
      auto it = env.find(k);
      if (it == env.end()) return std::nullopt;
      return it->second;
    });
  }
};

TEST(options, default_then_env_then_flag) {
  fixture f;
  EXPECT_FALSE(f.parse({}).error);
  EXPECT_EQ(f.value, "dflt");
  EXPECT_FALSE(f.parse({}, {{"TEST_NAME", "env"}}).error);
  EXPECT_EQ(f.value, "env");
  EXPECT_FALSE(f.parse({"--name", "flag"}, {{"TEST_NAME", "env"}}).error);
  EXPECT_EQ(f.value, "flag");
  EXPECT_FALSE(f.parse({"--name=eq"}, {{"TEST_NAME", "env"}}).error);
  EXPECT_EQ(f.value, "eq");
}

TEST(options, errors_name_the_source_on_one_line) {
  fixture f;
  auto r = f.parse({"--name", "bad"});
  ASSERT_TRUE(r.error);
  EXPECT_EQ(*r.error, "--name: 'bad' is bad");
  r = f.parse({}, {{"TEST_NAME", "bad"}});
  ASSERT_TRUE(r.error);
  EXPECT_EQ(*r.error, "TEST_NAME: 'bad' is bad");
  r = f.parse({"--nope"});
  ASSERT_TRUE(r.error);
  EXPECT_NE(r.error->find("unknown flag --nope"), std::string::npos);
  r = f.parse({"--name"});
  ASSERT_TRUE(r.error);
  EXPECT_EQ(*r.error, "--name: missing value");
  for (const auto& e : {f.parse({"--name", "bad"}).error, f.parse({"--x"}).error})
    EXPECT_EQ(e->find('\n'), std::string::npos);
}

TEST(options, help_version_positional) {
  fixture f;
  auto r = f.parse({"traces", "--help", "--version", "http://x"});
  EXPECT_TRUE(r.help);
  EXPECT_TRUE(r.version);
  EXPECT_EQ(r.positional, (std::vector<std::string>{"traces", "http://x"}));
  auto help = render_help("usage: x", f.specs);
  EXPECT_NE(help.find("--name"), std::string::npos);
  EXPECT_NE(help.find("TEST_NAME"), std::string::npos);
  EXPECT_NE(help.find("(default dflt)"), std::string::npos);
}

TEST(options, value_parsers) {
  EXPECT_EQ(parse_port("1"), 1);
  EXPECT_EQ(parse_port("65535"), 65535);
  for (const char* bad : {"0", "65536", "", "-1", "80a", " 80", "99999999999999999999"})
    EXPECT_FALSE(parse_port(bad)) << bad;
  EXPECT_EQ(parse_port_list(""), std::vector<std::uint16_t>{});
  EXPECT_EQ(parse_port_list("22, 3306,5432"), (std::vector<std::uint16_t>{22, 3306, 5432}));
  EXPECT_FALSE(parse_port_list("22,x"));
  EXPECT_FALSE(parse_port_list("22,0"));
  EXPECT_EQ(parse_uint("10", 10), 10u);
  EXPECT_FALSE(parse_uint("11", 10));
  EXPECT_EQ(split_list(" a, b ,,c "), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(is_dns_label("azureuser"));
  EXPECT_TRUE(is_dns_label("a-1"));
  EXPECT_TRUE(is_dns_label(std::string(63, 'a')));
  for (const char* bad : {"", "-a", "a-", "A", "a_b", "a.b"})
    EXPECT_FALSE(is_dns_label(bad)) << bad;
  EXPECT_FALSE(is_dns_label(std::string(64, 'a')));
  EXPECT_EQ(to_lower("AbC-1"), "abc-1");
}

}  // namespace
}  // namespace devspaces::common
