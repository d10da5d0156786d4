#include "proxy/routing/space_tree.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/support/test_support.hpp"

namespace devspaces::proxy::routing {
namespace {

using strings = std::vector<std::string>;

space_tree_result build(std::string_view own, strings parents, std::string_view file) {
  return build_space_tree(own, parents, file);
}

TEST(SpaceTree, OwnChainOnly) {
  auto r = build("azureuser", {"default"}, "");
  ASSERT_TRUE(r.tree) << r.error;
  EXPECT_EQ(r.tree->chain("azureuser"), (strings{"azureuser", "default"}));
  EXPECT_EQ(r.tree->chain("default"), (strings{"default"}));
  EXPECT_EQ(r.tree->chain("unknown"), (strings{"unknown"}));
}

TEST(SpaceTree, ThreeLevelsFromFlags) {
  auto r = build("dev", {"team", "default"}, "");
  ASSERT_TRUE(r.tree) << r.error;
  EXPECT_EQ(r.tree->chain("dev"), (strings{"dev", "team", "default"}));
}

TEST(SpaceTree, TooManyParentFlags) {
  auto r = build("a", {"b", "c", "d"}, "");
  EXPECT_FALSE(r.tree);
  EXPECT_NE(r.error.find("parent"), std::string::npos);
}

TEST(SpaceTree, InvalidNames) {
  EXPECT_FALSE(build("Bad_Name", {}, "").tree);
  EXPECT_FALSE(build("a", {"b_c"}, "").tree);
  EXPECT_FALSE(build("a", {}, R"({"spaces": {"x_y": {}}})").tree);
  EXPECT_FALSE(build("a", {}, R"({"spaces": {"x": {"parent": "y.z"}}})").tree);
  EXPECT_FALSE(build("a", {}, R"({"spaces": {"x": {"parent": 3}}})").tree);
}

TEST(SpaceTree, FromFile) {
  auto r = build("azureuser", {},
                 R"({"spaces": {"default": {}, "azureuser": {"parent": "default"},
                     "Dev": {"parent": "azureuser"}, "root": {"parent": null}}})");
  ASSERT_TRUE(r.tree) << r.error;
  EXPECT_EQ(r.tree->chain("azureuser"), (strings{"azureuser", "default"}));
  EXPECT_EQ(r.tree->chain("dev"), (strings{"dev", "azureuser", "default"}));
  EXPECT_EQ(r.tree->chain("root"), (strings{"root"}));
  EXPECT_EQ(
      r.tree->to_json(),
      R"({"spaces":{"azureuser":{"parent":"default"},"default":{},"dev":{"parent":"azureuser"},"root":{}}})");
}

TEST(SpaceTree, FileWinsOverFlags) {
  auto r = build("azureuser", {"default"}, R"({"spaces": {"azureuser": {"parent": "team"}}})");
  ASSERT_TRUE(r.tree) << r.error;
  EXPECT_EQ(r.tree->chain("azureuser"), (strings{"azureuser", "team"}));
}

TEST(SpaceTree, BadJson) {
  for (const char* text : {"{", "[]", "{}", R"({"spaces": []})", R"({"spaces": {"a": 1}})",
                           "not json", R"({"spaces": {"a": {}, "A": {}}})"}) {
    auto r = build("default", {}, text);
    EXPECT_FALSE(r.tree) << text;
    EXPECT_FALSE(r.error.empty()) << text;
  }
}

TEST(SpaceTree, Cycles) {
  auto self = build("a", {}, R"({"spaces": {"a": {"parent": "a"}}})");
  EXPECT_FALSE(self.tree);
  EXPECT_NE(self.error.find("cycle"), std::string::npos) << self.error;
  auto two = build("a", {}, R"({"spaces": {"a": {"parent": "b"}, "b": {"parent": "a"}}})");
  EXPECT_FALSE(two.tree);
  EXPECT_NE(two.error.find("cycle"), std::string::npos) << two.error;
  auto via_flags = build("a", {"b"}, R"({"spaces": {"b": {"parent": "a"}}})");
  EXPECT_FALSE(via_flags.tree);
}

TEST(SpaceTree, TooDeep) {
  auto r = build("a", {},
                 R"({"spaces": {"a": {"parent": "b"}, "b": {"parent": "c"},
                     "c": {"parent": "d"}}})");
  EXPECT_FALSE(r.tree);
  EXPECT_NE(r.error.find("deeper"), std::string::npos) << r.error;
  auto flags_plus_file = build("a", {"b", "c"}, R"({"spaces": {"c": {"parent": "d"}}})");
  EXPECT_FALSE(flags_plus_file.tree);
}

// A temporary spaces file, removed at the end of the test.
struct temp_file {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() /
      ("routing-spaces-" + std::to_string(::getpid()) + "-" +
       ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".json");
  ~temp_file() { std::filesystem::remove(path); }
  // Replaces the file (new inode, as a ConfigMap update does).
  void write(std::string_view text) const {
    auto tmp = path;
    tmp += ".tmp";
    std::ofstream(tmp, std::ios::trunc) << text;
    std::filesystem::rename(tmp, path);
  }
};

TEST(SpaceTree, LoadFromConfig) {
  temp_file f;
  config cfg;
  cfg.space = "azureuser";
  cfg.spaces_file = f.path.string();
  auto missing = load_space_tree(cfg);
  EXPECT_FALSE(missing.tree);
  EXPECT_NE(missing.error.find(cfg.spaces_file), std::string::npos);
  f.write("{oops");
  auto bad = load_space_tree(cfg);
  EXPECT_FALSE(bad.tree);
  EXPECT_NE(bad.error.find("--spaces-file"), std::string::npos) << bad.error;
  f.write(R"({"spaces": {"azureuser": {"parent": "default"}}})");
  auto good = load_space_tree(cfg);
  ASSERT_TRUE(good.tree) << good.error;
  EXPECT_EQ(good.tree->chain("azureuser"), (strings{"azureuser", "default"}));
}

double value(prometheus::Counter& c) {
  return c.Value();
}

TEST(SpaceTreeWatcher, ReloadsGoodKeepsLastGoodOnError) {
  temp_file f;
  f.write(R"({"spaces": {"azureuser": {"parent": "default"}}})");
  auto cfg = std::make_shared<config>();
  cfg->space = "azureuser";
  cfg->spaces_file = f.path.string();
  auto initial = load_space_tree(*cfg);
  ASSERT_TRUE(initial.tree) << initial.error;
  auto holder = std::make_shared<space_tree_holder>(initial.tree);
  proxy_metrics metrics;

  boost::asio::io_context io;
  space_tree_watcher watcher(io.get_executor(), cfg, metrics, holder,
                             std::chrono::milliseconds(10));
  watcher.start();
  std::thread runner([&] { io.run(); });
  auto chain_of = [&](std::string_view s) { return holder->get()->chain(s); };
  auto& ok = metrics.config_reloads(true);
  auto& err = metrics.config_reloads(false);

  // Good change.
  f.write(R"({"spaces": {"azureuser": {"parent": "team"}, "team": {"parent": "default"}}})");
  EXPECT_TRUE(test::wait_for([&] { return value(ok) == 1; }));
  EXPECT_EQ(chain_of("azureuser"), (strings{"azureuser", "team", "default"}));

  // Unparsable: counted once, last good kept.
  f.write("{\"spaces\": ");
  EXPECT_TRUE(test::wait_for([&] { return value(err) == 1; }));
  EXPECT_EQ(chain_of("azureuser"), (strings{"azureuser", "team", "default"}));

  // Cycle.
  f.write(R"({"spaces": {"azureuser": {"parent": "team"}, "team": {"parent": "azureuser"}}})");
  EXPECT_TRUE(test::wait_for([&] { return value(err) == 2; }));
  EXPECT_EQ(chain_of("azureuser"), (strings{"azureuser", "team", "default"}));

  // Too deep.
  f.write(R"({"spaces": {"azureuser": {"parent": "a"}, "a": {"parent": "b"},
              "b": {"parent": "c"}}})");
  EXPECT_TRUE(test::wait_for([&] { return value(err) == 3; }));
  EXPECT_EQ(chain_of("azureuser"), (strings{"azureuser", "team", "default"}));

  // Removed: an error, tree kept; back again: ok.
  std::filesystem::remove(f.path);
  EXPECT_TRUE(test::wait_for([&] { return value(err) == 4; }));
  f.write(R"({"spaces": {"azureuser": {}}})");
  EXPECT_TRUE(test::wait_for([&] { return value(ok) == 2; }));
  EXPECT_EQ(chain_of("azureuser"), (strings{"azureuser"}));
  EXPECT_EQ(value(err), 4);

  boost::asio::post(io, [&] { watcher.stop(); });
  runner.join();
}

TEST(SpaceTreeWatcher, CheckNowWithoutChangeDoesNothing) {
  temp_file f;
  f.write(R"({"spaces": {}})");
  auto cfg = std::make_shared<config>();
  cfg->spaces_file = f.path.string();
  auto holder = std::make_shared<space_tree_holder>(load_space_tree(*cfg).tree);
  proxy_metrics metrics;
  boost::asio::io_context io;
  space_tree_watcher watcher(io.get_executor(), cfg, metrics, holder);
  EXPECT_FALSE(watcher.check_now());
  f.write(R"({"spaces": {"default": {}}})");
  EXPECT_TRUE(watcher.check_now());
  EXPECT_FALSE(watcher.check_now());
  EXPECT_EQ(metrics.config_reloads(true).Value(), 1);
}

}  // namespace
}  // namespace devspaces::proxy::routing
