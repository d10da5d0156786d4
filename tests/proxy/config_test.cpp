#include "proxy/config.hpp"

#include <map>

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace devspaces::proxy {
namespace {

using std::chrono::milliseconds;
using env_map = std::map<std::string, std::string>;

config_result parse(std::vector<std::string> args, env_map env = {}) {
  return parse_proxy_config(args, [env](const std::string& k) -> std::optional<std::string> {
    auto it = env.find(k);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
}

TEST(config, defaults_match_spec) {
  auto r = parse({});
  ASSERT_FALSE(r.error) << *r.error;
  const auto& c = r.cfg;
  EXPECT_EQ(c.outbound_port, 15001);
  EXPECT_EQ(c.inbound_port, 15006);
  EXPECT_EQ(c.admin_host, "0.0.0.0");
  EXPECT_EQ(c.admin_port, 15090);
  EXPECT_EQ(c.space, "default");
  EXPECT_TRUE(c.parent_spaces.empty());
  EXPECT_EQ(c.cluster_domain, "cluster.local");
  EXPECT_EQ(c.resolver, "dns");
  EXPECT_EQ(c.route_header, "azds-route-as");
  EXPECT_TRUE(c.opaque_ports.empty());
  EXPECT_EQ(c.sniff_timeout, milliseconds(100));
  EXPECT_EQ(c.connect_timeout, milliseconds(5000));
  EXPECT_EQ(c.header_timeout, milliseconds(30000));
  EXPECT_EQ(c.idle_timeout, milliseconds(3600000));
  EXPECT_EQ(c.drain_timeout, milliseconds(15000));
  EXPECT_EQ(c.max_header_bytes, 65536u);
  EXPECT_EQ(c.workers, 2u);
  EXPECT_EQ(c.trace_buffer, 1000u);
  EXPECT_EQ(c.trace_body_bytes, 1024u);
  EXPECT_EQ(
      c.trace_redact_headers,
      (std::vector<std::string>{"authorization", "proxy-authorization", "cookie", "set-cookie"}));
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.log_format, "text");
}

TEST(config, every_flag_parses) {
  auto r = parse({"--outbound-port=1",
                  "--inbound-port",
                  "2",
                  "--admin-address",
                  "[::1]:0",
                  "--space",
                  "AzureUser",
                  "--parent-spaces",
                  "dev, default",
                  "--spaces-file",
                  "/tmp/s.json",
                  "--cluster-domain",
                  "Example.Org",
                  "--resolver",
                  "hosts:/h",
                  "--route-header",
                  "X-Route",
                  "--opaque-ports",
                  "22,3306",
                  "--sniff-timeout",
                  "250ms",
                  "--connect-timeout",
                  "2s",
                  "--header-timeout",
                  "1m",
                  "--idle-timeout",
                  "1h",
                  "--drain-timeout",
                  "0s",
                  "--max-header-bytes",
                  "8192",
                  "--workers",
                  "4",
                  "--trace-upstream",
                  "http://c:9/x",
                  "--trace-buffer",
                  "0",
                  "--trace-body-bytes",
                  "0",
                  "--trace-redact-headers",
                  "X-Secret",
                  "--log-level",
                  "debug",
                  "--log-format",
                  "json"});
  ASSERT_FALSE(r.error) << *r.error;
  const auto& c = r.cfg;
  EXPECT_EQ(c.outbound_port, 1);
  EXPECT_EQ(c.inbound_port, 2);
  EXPECT_EQ(c.admin_host, "::1");
  EXPECT_EQ(c.admin_port, 0);
  EXPECT_EQ(c.space, "azureuser");
  EXPECT_EQ(c.parent_spaces, (std::vector<std::string>{"dev", "default"}));
  EXPECT_EQ(c.spaces_file, "/tmp/s.json");
  EXPECT_EQ(c.cluster_domain, "example.org");
  EXPECT_EQ(c.resolver, "hosts:/h");
  EXPECT_EQ(c.route_header, "x-route");
  EXPECT_EQ(c.opaque_ports, (std::vector<std::uint16_t>{22, 3306}));
  EXPECT_EQ(c.sniff_timeout, milliseconds(250));
  EXPECT_EQ(c.connect_timeout, milliseconds(2000));
  EXPECT_EQ(c.header_timeout, milliseconds(60000));
  EXPECT_EQ(c.drain_timeout, milliseconds(0));
  EXPECT_EQ(c.max_header_bytes, 8192u);
  EXPECT_EQ(c.workers, 4u);
  EXPECT_EQ(c.trace_upstream, "http://c:9/x");
  EXPECT_EQ(c.trace_buffer, 0u);
  EXPECT_EQ(c.trace_body_bytes, 0u);
  EXPECT_EQ(c.trace_redact_headers, std::vector<std::string>{"x-secret"});
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.log_format, "json");
}

TEST(config, flags_beat_env_beat_defaults) {
  auto r = parse({}, {{"DEVSPACES_WORKERS", "3"}, {"DEVSPACES_SNIFF_TIMEOUT", "5s"}});
  ASSERT_FALSE(r.error);
  EXPECT_EQ(r.cfg.workers, 3u);
  EXPECT_EQ(r.cfg.sniff_timeout, milliseconds(5000));
  r = parse({"--workers", "5"}, {{"DEVSPACES_WORKERS", "3"}});
  ASSERT_FALSE(r.error);
  EXPECT_EQ(r.cfg.workers, 5u);
}

TEST(config, space_from_pod_namespace_unless_given) {
  EXPECT_EQ(parse({}, {{"POD_NAMESPACE", "team-a"}}).cfg.space, "team-a");
  EXPECT_EQ(parse({}, {{"POD_NAMESPACE", "team-a"}, {"DEVSPACES_SPACE", "b"}}).cfg.space, "b");
  EXPECT_EQ(parse({"--space", "c"}, {{"POD_NAMESPACE", "team-a"}}).cfg.space, "c");
  EXPECT_EQ(parse({}, {{"POD_NAME", "servicea-7d9f"}}).cfg.pod_name, "servicea-7d9f");
}

TEST(config, bad_input_is_one_line_naming_the_flag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"--outbound-port", "0"}, "--outbound-port"},
      {{"--inbound-port", "70000"}, "--inbound-port"},
      {{"--admin-address", "15090"}, "--admin-address"},
      {{"--admin-address", ":15090"}, "--admin-address"},
      {{"--space", "Not_A_Label"}, "--space"},
      {{"--parent-spaces", "a,b,c"}, "--parent-spaces"},
      {{"--parent-spaces", "default"}, "--parent-spaces"},  // the own space: a cycle
      {{"--parent-spaces", "a,a"}, "--parent-spaces"},
      {{"--cluster-domain", "bad..domain"}, "--cluster-domain"},
      {{"--resolver", "hosts:"}, "--resolver"},
      {{"--route-header", "bad header"}, "--route-header"},
      {{"--opaque-ports", "22,x"}, "--opaque-ports"},
      {{"--sniff-timeout", "100"}, "--sniff-timeout"},
      {{"--connect-timeout", "5 s"}, "--connect-timeout"},
      {{"--header-timeout", "-1s"}, "--header-timeout"},
      {{"--idle-timeout", "1d"}, "--idle-timeout"},
      {{"--drain-timeout", ""}, "--drain-timeout"},
      {{"--max-header-bytes", "10"}, "--max-header-bytes"},
      {{"--workers", "0"}, "--workers"},
      {{"--trace-upstream", "https://x"}, "--trace-upstream"},
      {{"--trace-buffer", "x"}, "--trace-buffer"},
      {{"--trace-body-bytes", "-1"}, "--trace-body-bytes"},
      {{"--log-level", "verbose"}, "--log-level"},
      {{"--log-format", "xml"}, "--log-format"},
      {{"--no-such-flag"}, "--no-such-flag"},
  };
  for (const auto& [args, flag] : cases) {
    auto r = parse(args);
    ASSERT_TRUE(r.error) << args[0];
    EXPECT_NE(r.error->find(flag), std::string::npos) << *r.error;
    EXPECT_EQ(r.error->find('\n'), std::string::npos) << *r.error;
  }
  auto r = parse({}, {{"DEVSPACES_WORKERS", "many"}});
  ASSERT_TRUE(r.error);
  EXPECT_NE(r.error->find("DEVSPACES_WORKERS"), std::string::npos);
}

TEST(config, help_lists_every_flag_and_json_round_trips) {
  auto help = proxy_help();
  for (const char* flag : {"--outbound-port",
                           "--inbound-port",
                           "--admin-address",
                           "--space",
                           "--parent-spaces",
                           "--spaces-file",
                           "--cluster-domain",
                           "--resolver",
                           "--route-header",
                           "--opaque-ports",
                           "--sniff-timeout",
                           "--connect-timeout",
                           "--header-timeout",
                           "--idle-timeout",
                           "--drain-timeout",
                           "--max-header-bytes",
                           "--workers",
                           "--trace-upstream",
                           "--trace-buffer",
                           "--trace-body-bytes",
                           "--trace-redact-headers",
                           "--log-level",
                           "--log-format",
                           "--help",
                           "--version"})
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  auto r = parse({"--sniff-timeout", "250ms", "--opaque-ports", "22"});
  auto v = boost::json::parse(config_to_json(r.cfg)).as_object();
  EXPECT_EQ(v.at("sniff_timeout").as_string(), "250ms");
  EXPECT_EQ(v.at("outbound_port").as_int64(), 15001);
  EXPECT_EQ(v.at("opaque_ports").as_array().at(0).as_int64(), 22);
}

}  // namespace
}  // namespace devspaces::proxy
