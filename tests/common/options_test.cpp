#include "common/options.hpp"

#include <cstdlib>
#include <map>

#include <gtest/gtest.h>

namespace devspaces::common {
namespace {

struct fixture {
  std::string value;
  std::string other;
  std::chrono::milliseconds timeout{};
  std::vector<option_spec> specs;
  fixture() {
    specs.push_back({"--name", "TEST_NAME", "dflt", "a name", [this](std::string_view v) {
                       if (v == "bad") return std::optional<std::string>("is bad");
                       value = std::string(v);
                       return std::optional<std::string>();
                     }});
    specs.push_back({"--other", "", "", "another value", [this](std::string_view v) {
                       other = std::string(v);
                       return std::optional<std::string>();
                     }});
    specs.push_back({"--idle-timeout", "TEST_IDLE", "1h", "idle", duration_setter(timeout)});
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

TEST(options, command_line_forms) {
  fixture f;
  EXPECT_FALSE(f.parse({"--name=a=b"}).error);  // only the first '=' splits
  EXPECT_EQ(f.value, "a=b");
  EXPECT_FALSE(f.parse({"--other=", "--name", "x"}).error);  // empty after '='
  EXPECT_EQ(f.other, "");
  EXPECT_EQ(f.value, "x");
  EXPECT_FALSE(f.parse({"--other", "", "pos"}).error);
  EXPECT_EQ(f.other, "");
  EXPECT_FALSE(f.parse({"--name", "a", "--name", "b"}).error);  // the last one wins
  EXPECT_EQ(f.value, "b");
  EXPECT_FALSE(f.parse({"--other", "-5"}).error);  // a value may start with '-'
  EXPECT_EQ(f.other, "-5");
  auto r = f.parse({"apply", "--idle-timeout", "1m30s", "more"});
  ASSERT_FALSE(r.error) << *r.error;
  EXPECT_EQ(f.timeout, std::chrono::milliseconds(90'000));
  EXPECT_EQ(r.positional, (std::vector<std::string>{"apply", "more"}));
  EXPECT_FALSE(f.parse({"--idle-timeout=1.5s"}).error);
  EXPECT_EQ(f.timeout, std::chrono::milliseconds(1'500));
  r = f.parse({"--idle-timeout", "-1s"});
  ASSERT_TRUE(r.error);
  EXPECT_EQ(*r.error, "--idle-timeout: '-1s' is negative (a duration is 0 or more)");
  r = f.parse({}, {{"TEST_IDLE", "1x"}});
  ASSERT_TRUE(r.error);
  EXPECT_EQ(*r.error, "TEST_IDLE: '1x' has an unknown unit 'x' (ns, us, ms, s, m, h)");
  r = f.parse({"-x"});
  ASSERT_TRUE(r.error);
  EXPECT_NE(r.error->find("unknown flag -x"), std::string::npos) << *r.error;
}

TEST(options, unknown_flags_suggest_the_flag_meant) {
  fixture f;
  const struct {
    const char* given;
    const char* meant;  // nullptr: no suggestion
  } cases[] = {
      {"--idle-timout", "--idle-timeout"},
      {"--idle_timeout", "--idle-timeout"},
      {"--Idle-Timeout", "--idle-timeout"},
      {"--idel-timeout", "--idle-timeout"},
      {"--idle", "--idle-timeout"},
      {"--nmae", "--name"},
      {"-name", "--name"},
      {"--x", nullptr},
      {"--completely-different", nullptr},
  };
  for (const auto& c : cases) {
    auto r = f.parse({c.given, "1s"});
    ASSERT_TRUE(r.error) << c.given;
    EXPECT_EQ(r.error->find('\n'), std::string::npos);
    if (c.meant) {
      EXPECT_EQ(*r.error,
                std::string("unknown flag ") + c.given + " (did you mean " + c.meant + "?)");
      EXPECT_EQ(suggest_flag(f.specs, c.given), c.meant);
    } else {
      EXPECT_EQ(*r.error, std::string("unknown flag ") + c.given + " (see --help)");
      EXPECT_FALSE(suggest_flag(f.specs, c.given)) << c.given;
    }
  }
}

TEST(options, help_wins_over_a_bad_environment) {
  fixture f;
  auto r = f.parse({"--help"}, {{"TEST_NAME", "bad"}});
  EXPECT_FALSE(r.error);
  EXPECT_TRUE(r.help);
  r = f.parse({"--help-markdown"});
  EXPECT_TRUE(r.help_markdown);
  r = f.parse({"-h"});
  EXPECT_TRUE(r.help);
}

TEST(options, help_wraps_to_the_width) {
  fixture f;
  f.specs[1].help =
      "a long explanation of another value that goes on and on well past any terminal edge, "
      "so that it has to be wrapped over several lines";
  for (std::size_t width : {40u, 60u, 80u, 120u}) {
    auto help = render_help(
        "usage: x [flags]\n  apply    a command with a description that is long enough to "
        "wrap on a narrow terminal",
        f.specs, width);
    std::size_t start = 0, lines = 0;
    while (start < help.size()) {
      auto end = help.find('\n', start);
      EXPECT_LE(end - start, width) << width << ": " << help.substr(start, end - start);
      start = end + 1;
      ++lines;
    }
    EXPECT_GT(lines, 6u);
    // Nothing is lost: every word of the help is still there.
    for (const char* word : {"--other", "several", "lines", "[env", "TEST_NAME]", "(default",
                             "dflt)", "narrow", "--version", "--help-markdown"})
      EXPECT_NE(help.find(word), std::string::npos) << width << " " << word;
  }
  auto wide = render_help("usage: x", f.specs, 120);
  EXPECT_NE(wide.find("  --name                    a name [env TEST_NAME] (default dflt)\n"),
            std::string::npos)
      << wide;
}

TEST(options, terminal_width_follows_columns) {
  ::setenv("COLUMNS", "63", 1);
  EXPECT_EQ(terminal_width(), 63u);
  ::setenv("COLUMNS", "10", 1);
  EXPECT_EQ(terminal_width(), 40u);
  ::setenv("COLUMNS", "500", 1);
  EXPECT_EQ(terminal_width(), 120u);
  ::unsetenv("COLUMNS");
  EXPECT_GE(terminal_width(), 40u);  // a terminal's width, or 80 when stdout is not one
  EXPECT_LE(terminal_width(), 120u);
}

TEST(options, markdown_table_and_version_line) {
  fixture f;
  f.specs[1].help = "a|b <path>";
  EXPECT_EQ(render_markdown(f.specs),
            "| flag | env | default | meaning |\n|---|---|---|---|\n"
            "| `--name` | `TEST_NAME` | `dflt` | a name |\n"
            "| `--other` |  |  | a\\|b &lt;path> |\n"
            "| `--idle-timeout` | `TEST_IDLE` | `1h` | idle |\n");
  EXPECT_EQ(version_text("prog", "1.2.3", "0123456789ab", "Release"),
            "prog 1.2.3 (commit 0123456789ab, Release build)");
  EXPECT_EQ(version_text("prog", "1.2.3", "", ""), "prog 1.2.3 (commit unknown, unknown build)");
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
