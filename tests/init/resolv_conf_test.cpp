#include "init/resolv_conf.hpp"

#include <gtest/gtest.h>

namespace devspaces::init {
namespace {

const std::vector<std::string> wanted = {"azureuser.svc.cluster.local",
                                         "default.svc.cluster.local"};
const std::string marker = "# devspaces-proxy-init added:";

struct resolv_case {
  std::string name;
  std::string input;
  std::string output;
};

class resolv_table : public ::testing::TestWithParam<resolv_case> {};

TEST_P(resolv_table, apply_rerun_cleanup) {
  const auto& t = GetParam();
  auto first = add_search_domains(t.input, wanted);
  EXPECT_EQ(first.text, t.output);
  // Rerun on its own output: byte for byte the same.
  auto second = add_search_domains(first.text, wanted);
  EXPECT_EQ(second.text, first.text);
  EXPECT_FALSE(second.changed);
  EXPECT_EQ(second.search, first.search);
  // The resolver sees our domains first, then what was there, each once.
  ASSERT_GE(first.search.size(), 2u);
  EXPECT_EQ(first.search[0], wanted[0]);
  EXPECT_EQ(first.search[1], wanted[1]);
  // Cleanup restores the original, and is itself idempotent.
  auto removed = remove_search_domains(first.text);
  EXPECT_EQ(removed.text, t.input.empty() || t.input.back() == '\n' ? t.input : t.input + "\n");
  EXPECT_FALSE(remove_search_domains(removed.text).changed);
}

INSTANTIATE_TEST_SUITE_P(
    init, resolv_table,
    ::testing::Values(
        resolv_case{"kubernetes_child_space",
                    "search azureuser.svc.cluster.local svc.cluster.local cluster.local\n"
                    "nameserver 10.96.0.10\noptions ndots:5\n",
                    marker + " default.svc.cluster.local; was: search azureuser.svc.cluster.local "
                             "svc.cluster.local cluster.local\n"
                             "search azureuser.svc.cluster.local default.svc.cluster.local "
                             "svc.cluster.local cluster.local\n"
                             "nameserver 10.96.0.10\noptions ndots:5\n"},
        resolv_case{"own_space_not_first",
                    "nameserver 10.96.0.10\nsearch svc.cluster.local azureuser.svc.cluster.local\n",
                    "nameserver 10.96.0.10\n" + marker +
                        " default.svc.cluster.local; was: search svc.cluster.local "
                        "azureuser.svc.cluster.local\n"
                        "search azureuser.svc.cluster.local default.svc.cluster.local "
                        "svc.cluster.local\n"},
        resolv_case{"no_search_line", "nameserver 10.96.0.10\n",
                    "nameserver 10.96.0.10\n" + marker +
                        " azureuser.svc.cluster.local default.svc.cluster.local; was: -\n"
                        "search azureuser.svc.cluster.local default.svc.cluster.local\n"},
        resolv_case{"empty_file", "",
                    marker + " azureuser.svc.cluster.local default.svc.cluster.local; was: -\n"
                             "search azureuser.svc.cluster.local default.svc.cluster.local\n"},
        resolv_case{"domain_line_and_comments",
                    "; old style comment\n# comment\ndomain corp.example\nnameserver 10.0.0.2\n",
                    "; old style comment\n# comment\n" + marker +
                        " azureuser.svc.cluster.local default.svc.cluster.local; was: domain "
                        "corp.example\n"
                        "search azureuser.svc.cluster.local default.svc.cluster.local "
                        "corp.example\nnameserver 10.0.0.2\n"},
        resolv_case{"two_search_lines_last_wins",
                    "search ignored.example\nsearch Default.SVC.cluster.local. x.example\n",
                    "search ignored.example\n" + marker +
                        " azureuser.svc.cluster.local; was: search Default.SVC.cluster.local. "
                        "x.example\nsearch azureuser.svc.cluster.local default.svc.cluster.local "
                        "x.example\n"},
        resolv_case{"tabs_and_duplicates",
                    "search\ta.example\ta.example  svc.cluster.local\nnameserver 10.0.0.2\n",
                    marker +
                        " azureuser.svc.cluster.local default.svc.cluster.local; was: "
                        "search\ta.example\ta.example  svc.cluster.local\n"
                        "search azureuser.svc.cluster.local default.svc.cluster.local a.example "
                        "svc.cluster.local\nnameserver 10.0.0.2\n"},
        resolv_case{"no_trailing_newline", "nameserver 10.0.0.2",
                    "nameserver 10.0.0.2\n" + marker +
                        " azureuser.svc.cluster.local default.svc.cluster.local; was: -\n"
                        "search azureuser.svc.cluster.local default.svc.cluster.local\n"}),
    [](const auto& info) { return info.param.name; });

TEST(init_resolv_conf, nothing_to_add_leaves_the_file_alone) {
  std::string in =
      "search azureuser.svc.cluster.local default.svc.cluster.local svc.cluster.local\n";
  auto r = add_search_domains(in, wanted);
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(r.text, in);
  EXPECT_TRUE(r.added.empty());
}

TEST(init_resolv_conf, limits_drop_the_least_specific_entries_and_cleanup_restores_them) {
  std::string in =
      "search a.svc.cluster.local svc.cluster.local cluster.local c1.internal "
      "c2.internal c3.internal\nnameserver 10.0.0.2\n";
  auto r = add_search_domains(in, wanted);
  EXPECT_EQ(r.search.size(), 6u);
  EXPECT_EQ(r.dropped, (std::vector<std::string>{"c2.internal", "c3.internal"}));
  EXPECT_FALSE(add_search_domains(r.text, wanted).changed);
  EXPECT_EQ(remove_search_domains(r.text).text, in);

  std::string long_names = "search " + std::string(60, 'x') + ".example " + std::string(60, 'y') +
                           ".example " + std::string(60, 'z') + ".example " + std::string(60, 'w') +
                           ".example\n";
  auto l = add_search_domains(long_names, wanted);
  std::size_t chars = 0;
  for (const auto& d : l.search) chars += d.size() + 1;
  EXPECT_LE(std::string("search ").size() + chars - 1 + 1, 255u);  // fits musl's line buffer
  EXPECT_EQ(l.search[0], wanted[0]);
}

TEST(init_resolv_conf, edits_after_apply_survive_cleanup) {
  auto applied = add_search_domains("search svc.cluster.local\n", wanted).text;
  // Someone appends a domain after apply: cleanup only takes out what apply added.
  auto pos = applied.rfind("svc.cluster.local\n");
  applied.insert(pos + std::string("svc.cluster.local").size(), " extra.example");
  auto removed = remove_search_domains(applied);
  EXPECT_EQ(removed.text, "search svc.cluster.local extra.example\n");
  // And a rerun keeps the edit too.
  auto rerun = add_search_domains(applied, wanted);
  EXPECT_EQ(rerun.search.back(), "extra.example");
}

TEST(init_resolv_conf, other_spaces_on_rerun_replace_the_old_additions) {
  auto first = add_search_domains("search svc.cluster.local\n", wanted);
  auto moved = add_search_domains(first.text, {"dev-b.svc.cluster.local"});
  EXPECT_EQ(moved.search,
            (std::vector<std::string>{"dev-b.svc.cluster.local", "svc.cluster.local"}));
  EXPECT_EQ(remove_search_domains(moved.text).text, "search svc.cluster.local\n");
}

TEST(init_resolv_conf, nameservers_by_family) {
  auto ns = resolv_nameservers(
      "nameserver 10.96.0.10\nnameserver fe80::1%eth0\n#nameserver 1.1.1.1\nnameserver bogus\n"
      "nameserver FD00::A\n");
  EXPECT_EQ(ns, (std::vector<std::string>{"10.96.0.10", "fe80::1", "fd00::a"}));
}

TEST(init_resolv_conf, search_domains_of_the_space_chain) {
  EXPECT_EQ(space_search_domains("azureuser", {"default"}, "cluster.local"), wanted);
  EXPECT_EQ(space_search_domains("default", {"default"}, "c.local"),
            (std::vector<std::string>{"default.svc.c.local"}));
}

}  // namespace
}  // namespace devspaces::init
