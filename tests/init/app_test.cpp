// The apply/cleanup flow against a fake iptables that keeps its state as restore text: what is
// written, in which order, and that a rerun writes nothing. The real kernel is in tests/e2e.
#include "init/app.hpp"

#include <sstream>

#include <gtest/gtest.h>

#include "init/rules.hpp"

namespace devspaces::init {
namespace {

struct fake_kernel {
  std::string nat;  ///< what iptables-nft-save prints (restore text parses the same way)
  std::vector<std::string> restores;

  system_access access() {
    system_access sys;
    sys.read_file = [](const std::string& path) -> std::optional<std::string> {
      if (path == "/proc/self/status") return "CapEff:\t000001ffffffffff\n";
      return std::nullopt;  // no /proc/net/if_inet6: IPv4 only
    };
    sys.runner = [this](const std::vector<std::string>& argv, std::string_view input,
                        std::chrono::milliseconds) {
      command_result r;
      r.exit_code = 0;
      if (argv[0] == "iptables-nft-save") r.out = nat;
      if (argv[0] == "iptables-nft-restore") {
        restores.emplace_back(input);
        if (input.starts_with("*nat\n:DEVSPACES_"))
          nat = std::string(want);
        else if (input.starts_with("*nat\n-D"))
          nat.clear();
      }
      return r;
    };
    return sys;
  }
  std::string want;
};

config cfg(std::string command) {
  auto r = parse_config(std::vector<std::string>{command, "--iptables", "nft", "--resolv-conf", ""},
                        [](const std::string&) { return std::optional<std::string>(); });
  EXPECT_FALSE(r.error);
  return r.cfg;
}

TEST(init_app, drift_is_swapped_inside_guardrails_and_a_rerun_writes_nothing) {
  fake_kernel k;
  auto c = cfg("apply");
  k.want = render_restore(build_rules(c, family::v4, {}));
  // Drifted: the first DEVSPACES_OUTPUT rule is gone and the OUTPUT jump is doubled.
  k.nat = k.want;
  k.nat.erase(k.nat.find("-A DEVSPACES_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN\n"),
              std::string("-A DEVSPACES_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN\n").size());
  k.nat += "-A OUTPUT -p tcp -j DEVSPACES_OUTPUT\n";
  std::ostringstream out, err;
  ASSERT_EQ(run_command_line(c, k.access(), out, err), exit_ok) << err.str();
  ASSERT_EQ(k.restores.size(), 3u);
  EXPECT_EQ(k.restores[0], guard_restore());
  EXPECT_NE(k.restores[1].find("-D OUTPUT -p tcp -j DEVSPACES_OUTPUT\n"), std::string::npos);
  EXPECT_NE(k.restores[2].find("-X DEVSPACES_GUARD"), std::string::npos);
  EXPECT_NE(out.str().find("missing rule: -A DEVSPACES_OUTPUT -s 127.0.0.6/32"), std::string::npos);

  k.restores.clear();
  out.str("");
  ASSERT_EQ(run_command_line(c, k.access(), out, err), exit_ok);
  EXPECT_TRUE(k.restores.empty());
  EXPECT_NE(out.str().find("nothing to do"), std::string::npos);

  ASSERT_EQ(run_command_line(cfg("cleanup"), k.access(), out, err), exit_ok);
  ASSERT_EQ(k.restores.size(), 1u);
  EXPECT_TRUE(k.restores[0].starts_with("*nat\n-D OUTPUT -p tcp -j DEVSPACES_OUTPUT\n"));
  EXPECT_TRUE(k.nat.empty());
}

TEST(init_app, fresh_apply_is_one_restore_of_the_printed_text) {
  fake_kernel k;
  auto c = cfg("apply");
  k.want = render_restore(build_rules(c, family::v4, {}));
  std::ostringstream out, err;
  ASSERT_EQ(run_command_line(c, k.access(), out, err), exit_ok) << err.str();
  ASSERT_EQ(k.restores.size(), 1u);
  EXPECT_EQ(k.restores[0], k.want);
  EXPECT_NE(render_print(c, false, std::nullopt).find(k.want), std::string::npos);
}

}  // namespace
}  // namespace devspaces::init
