// Golden files of `devspaces-proxy inject`: one input per kind in tests/proxy/inject/golden,
// its expected output next to it (*.golden). Regenerate with DEVSPACES_UPDATE_GOLDEN=1 after an
// intended change, then review the diff.
#include "proxy/inject/manifest.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "tests/support/test_support.hpp"

namespace devspaces::proxy::inject {
namespace {

namespace json = boost::json;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void check_golden(const std::string& name, const std::string& actual) {
  const auto path = test::source_path("tests/proxy/inject/golden/" + name + ".golden");
  if (std::getenv("DEVSPACES_UPDATE_GOLDEN")) {
    std::ofstream(path, std::ios::binary) << actual;
    return;
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << "missing golden " << path << " (run with DEVSPACES_UPDATE_GOLDEN=1)";
  EXPECT_EQ(read_file(path), actual) << "inject output differs from " << path;
}

manifest_options defaults() {
  manifest_options o;
  o.parents = {};
  return o;
}

class inject_golden : public ::testing::TestWithParam<std::string> {};

TEST_P(inject_golden, matches_golden_and_is_idempotent) {
  const std::string input = read_file(test::source_path("tests/proxy/inject/golden/" + GetParam()));
  ASSERT_FALSE(input.empty());
  auto opts = defaults();
  if (GetParam() == "pod.yaml") opts.parents = {"default"};
  auto once = inject_manifests(input, opts);
  ASSERT_FALSE(once.error) << *once.error;
  check_golden(GetParam(), once.text);
  // Round trip: injecting the output again changes nothing.
  auto twice = inject_manifests(once.text, opts);
  ASSERT_FALSE(twice.error) << *twice.error;
  EXPECT_EQ(once.text, twice.text);
  for (const auto& n : twice.notes)
    EXPECT_EQ(n.find(": injected"), std::string::npos) << "injected twice: " << n;
}

INSTANTIATE_TEST_SUITE_P(kinds, inject_golden,
                         ::testing::Values("pod.yaml", "deployment.yaml", "statefulset.yaml",
                                           "daemonset.yaml", "replicaset.yaml", "job.yaml",
                                           "cronjob.yaml", "list.json", "multi.yaml"),
                         [](const auto& info) {
                           auto n = info.param;
                           return n.substr(0, n.find('.'));
                         });

TEST(inject_manifest, yaml_keeps_types_and_quotes_what_would_change_type) {
  const std::string input =
      "kind: ConfigMap\n"
      "data:\n"
      "  port: \"8080\"\n"
      "  flag: \"yes\"\n"
      "  off: 'off'\n"
      "  empty: \"\"\n"
      "  n: 3\n"
      "  b: true\n"
      "  f: 1.5\n"
      "  s: hello world\n";
  std::string err;
  auto docs = parse_yaml_documents(input, &err);
  ASSERT_EQ(docs.size(), 1u) << err;
  const auto& data = docs[0].at("data").as_object();
  EXPECT_TRUE(data.at("port").is_string());
  EXPECT_TRUE(data.at("flag").is_string());
  EXPECT_TRUE(data.at("empty").is_string());
  EXPECT_TRUE(data.at("n").is_int64());
  EXPECT_TRUE(data.at("b").is_bool());
  EXPECT_TRUE(data.at("f").is_double());
  auto back = parse_yaml_documents(to_yaml(docs), &err);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0], docs[0]);
}

TEST(inject_manifest, yaml_and_json_give_the_same_pod) {
  const std::string yaml_in = read_file(test::source_path("tests/proxy/inject/golden/pod.yaml"));
  std::string err;
  auto docs = parse_yaml_documents(yaml_in, &err);
  ASSERT_EQ(docs.size(), 1u);
  auto opts = defaults();
  auto from_yaml = inject_manifests(yaml_in, opts);
  opts.output = "json";
  auto from_json = inject_manifests(json::serialize(docs[0]), opts);
  ASSERT_FALSE(from_json.error);
  auto y = parse_yaml_documents(from_yaml.text, &err);
  ASSERT_EQ(y.size(), 1u);
  EXPECT_EQ(y[0], json::parse(from_json.text));
}

TEST(inject_manifest, bad_input_is_an_error_line) {
  auto r = inject_manifests("kind: [unclosed", defaults());
  ASSERT_TRUE(r.error);
  EXPECT_NE(r.error->find("YAML"), std::string::npos);
  r = inject_manifests("{\"kind\": ", defaults());
  ASSERT_TRUE(r.error);
  EXPECT_NE(r.error->find("JSON"), std::string::npos);
}

}  // namespace
}  // namespace devspaces::proxy::inject
