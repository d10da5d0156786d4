// The proxy's command line as users write it: Go-style durations, level names in any case,
// suggestions for mistyped flags, and --help / --help-markdown / --version recognised.
#include <map>

#include <gtest/gtest.h>

#include "proxy/config.hpp"

namespace devspaces::proxy {
namespace {

using std::chrono::milliseconds;

config_result parse_cli(std::vector<std::string> args,
                        std::map<std::string, std::string> env = {}) {
  return parse_proxy_config(args, [env](const std::string& k) -> std::optional<std::string> {
    auto it = env.find(k);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
}

TEST(config_cli, go_durations_and_level_names) {
  auto r = parse_cli({"--idle-timeout", "1m30s", "--connect-timeout=1.5s", "--sniff-timeout",
                      "500ms", "--drain-timeout", "0", "--log-level", "WARNING"},
                     {{"DEVSPACES_HEADER_TIMEOUT", "2h45m"}});
  ASSERT_FALSE(r.error) << *r.error;
  EXPECT_EQ(r.cfg.idle_timeout, milliseconds(90'000));
  EXPECT_EQ(r.cfg.connect_timeout, milliseconds(1'500));
  EXPECT_EQ(r.cfg.sniff_timeout, milliseconds(500));
  EXPECT_EQ(r.cfg.drain_timeout, milliseconds(0));
  EXPECT_EQ(r.cfg.header_timeout, milliseconds(9'900'000));
  EXPECT_EQ(r.cfg.log_level, "warn");  // stored by its canonical name
  for (const char* level : {"warn", "Warn", "warning", "TRACE", "Error", "off"}) {
    auto l = parse_cli({"--log-level", level});
    EXPECT_FALSE(l.error) << level;
  }
  r = parse_cli({}, {{"DEVSPACES_LOG_LEVEL", "Debug"}});
  ASSERT_FALSE(r.error);
  EXPECT_EQ(r.cfg.log_level, "debug");
}

TEST(config_cli, errors_name_the_flag_and_suggest) {
  const struct {
    std::vector<std::string> args;
    const char* error;
  } cases[] = {
      {{"--idle-timout", "5s"}, "unknown flag --idle-timout (did you mean --idle-timeout?)"},
      {{"--trace_buffer", "5"}, "unknown flag --trace_buffer (did you mean --trace-buffer?)"},
      {{"--idle-timeout", "-1s"}, "--idle-timeout: '-1s' is negative (a duration is 0 or more)"},
      {{"--idle-timeout", "90"},
       "--idle-timeout: '90' has a number without a unit (ns, us, ms, s, m, h; e.g. 1m30s)"},
      {{"--log-level", "verbose"},
       "--log-level: 'verbose' is not one of trace, debug, info, warn, error, off (any case)"},
      {{"--workers"}, "--workers: missing value"},
  };
  for (const auto& c : cases) {
    auto r = parse_cli(c.args);
    ASSERT_TRUE(r.error) << c.args[0];
    EXPECT_EQ(*r.error, c.error);
  }
}

TEST(config_cli, help_markdown_and_version_are_recognised) {
  EXPECT_TRUE(parse_cli({"--help-markdown"}).help_markdown);
  EXPECT_TRUE(parse_cli({"--version"}).version);
  auto r = parse_cli({"--help"}, {{"DEVSPACES_WORKERS", "many"}});  // help despite a bad env
  EXPECT_TRUE(r.help);
  EXPECT_FALSE(r.error);
  // The help lists each flag of the table once, wrapped; the Markdown table has a row for each.
  config scratch;
  const auto specs = proxy_options(scratch);
  const auto help = proxy_help();
  const auto md = common::render_markdown(specs);
  for (const auto& s : specs) {
    EXPECT_NE(help.find("  " + s.flag + " "), std::string::npos) << s.flag;
    EXPECT_NE(md.find("| `" + s.flag + "` |"), std::string::npos) << s.flag;
  }
}

}  // namespace
}  // namespace devspaces::proxy
