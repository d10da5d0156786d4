#include "proxy/inject/mutation.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "common/options.hpp"
#include "proxy/inject/settings.hpp"

namespace devspaces::proxy::inject {
namespace {

namespace json = boost::json;

json::object pod(std::string extra_spec = "", std::string annotations = "") {
  std::string text = R"({"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-7d9f-",
    "namespace":"azureuser","labels":{"app":"web"})";
  if (!annotations.empty()) text += ",\"annotations\":{" + annotations + "}";
  text += R"(},"spec":{)" + extra_spec + (extra_spec.empty() ? "" : ",") +
          R"("containers":[{"name":"web","image":"example/web:1"}]}})";
  return json::parse(text).as_object();
}

json::object injected(json::object p, const injection_settings& s = {},
                      pod_context ctx = {"azureuser", {"default"}}) {
  auto patch = make_pod_patch(p, ctx, s);
  EXPECT_EQ(patch.outcome.result, outcome::injected);
  EXPECT_FALSE(apply_simple_patch(p, patch.ops));
  return p;
}

const json::object& container(const json::object& p, std::string_view list, std::string_view name) {
  for (const auto& c : p.at("spec").at(list).as_array())
    if (c.at("name").as_string() == name) return c.as_object();
  static const json::object none;
  ADD_FAILURE() << "no " << name << " in " << list;
  return none;
}

std::string env_of(const json::object& c, std::string_view name) {
  for (const auto& e : c.at("env").as_array())
    if (e.at("name").as_string() == name) {
      if (const auto* v = e.as_object().if_contains("value")) return std::string(v->as_string());
      return "fieldRef:" +
             std::string(e.at("valueFrom").at("fieldRef").at("fieldPath").as_string());
    }
  return "<unset>";
}

TEST(inject_mutation, native_sidecar_order_and_security) {
  auto p = injected(pod());
  const auto& inits = p.at("spec").at("initContainers").as_array();
  ASSERT_EQ(inits.size(), 2u);
  EXPECT_EQ(inits[0].at("name").as_string(), "devspaces-proxy-init");
  EXPECT_EQ(inits[1].at("name").as_string(), "devspaces-proxy");
  EXPECT_EQ(p.at("spec").at("containers").as_array().size(), 1u);

  const auto& init = inits[0].as_object();
  EXPECT_EQ(init.at("securityContext").at("capabilities").at("add"),
            json::parse(R"(["NET_ADMIN","NET_RAW"])"));
  EXPECT_EQ(init.at("securityContext").at("capabilities").at("drop"), json::parse(R"(["ALL"])"));
  EXPECT_EQ(init.at("securityContext").at("runAsUser"), 0);

  const auto& proxy = inits[1].as_object();
  EXPECT_EQ(proxy.at("restartPolicy"), "Always");
  EXPECT_EQ(proxy.at("startupProbe").at("httpGet").at("path"), "/readyz");
  EXPECT_EQ(proxy.at("startupProbe").at("httpGet").at("port"), 15090);
  const auto& sc = proxy.at("securityContext").as_object();
  EXPECT_EQ(sc.at("runAsUser"), 1337);
  EXPECT_EQ(sc.at("runAsGroup"), 1337);
  EXPECT_EQ(sc.at("runAsNonRoot"), true);
  EXPECT_EQ(sc.at("readOnlyRootFilesystem"), true);
  EXPECT_EQ(sc.at("allowPrivilegeEscalation"), false);
  EXPECT_EQ(sc.at("capabilities"), json::parse(R"({"drop":["ALL"]})"));
  EXPECT_EQ(sc.at("seccompProfile").at("type"), "RuntimeDefault");
  EXPECT_FALSE(proxy.contains("lifecycle"));
}

TEST(inject_mutation, env_carries_every_setting) {
  injection_settings s;
  s.admin_port = 16090;
  s.trace_upstream = "http://collector:8080/ingest";
  s.otlp_endpoint = "http://otel:4318/v1/traces";
  s.spaces_url = "http://injector:8080/spaces";
  s.exclude_outbound_cidrs = "10.96.0.0/12";
  auto p = injected(pod(), s, {"azureuser", {"default", "root"}});
  const auto& init = container(p, "initContainers", "devspaces-proxy-init");
  const auto& proxy = container(p, "initContainers", "devspaces-proxy");
  EXPECT_EQ(env_of(init, "DEVSPACES_SPACE"), "azureuser");
  EXPECT_EQ(env_of(init, "DEVSPACES_PARENT_SPACES"), "default,root");
  EXPECT_EQ(env_of(init, "DEVSPACES_ADMIN_PORT"), "16090");
  EXPECT_EQ(env_of(init, "DEVSPACES_EXCLUDE_OUTBOUND_CIDRS"), "10.96.0.0/12");
  EXPECT_EQ(env_of(init, "DEVSPACES_PROXY_UID"), "1337");
  EXPECT_EQ(env_of(proxy, "DEVSPACES_ADMIN_ADDRESS"), "0.0.0.0:16090");
  EXPECT_EQ(env_of(proxy, "DEVSPACES_SPACE"), "azureuser");
  EXPECT_EQ(env_of(proxy, "DEVSPACES_PARENT_SPACES"), "default,root");
  EXPECT_EQ(env_of(proxy, "DEVSPACES_TRACE_UPSTREAM"), "http://collector:8080/ingest");
  EXPECT_EQ(env_of(proxy, "DEVSPACES_OTLP_ENDPOINT"), "http://otel:4318/v1/traces");
  EXPECT_EQ(env_of(proxy, "DEVSPACES_SPACES_URL"), "http://injector:8080/spaces");
  EXPECT_EQ(env_of(proxy, "POD_NAME"), "fieldRef:metadata.name");
  EXPECT_EQ(env_of(proxy, "POD_NAMESPACE"), "fieldRef:metadata.namespace");
  // Every port comes from the one admin port value.
  EXPECT_EQ(proxy.at("ports").at(0).at("containerPort"), 16090);
  EXPECT_EQ(proxy.at("readinessProbe").at("httpGet").at("port"), 16090);
  EXPECT_EQ(proxy.at("livenessProbe").at("httpGet").at("port"), 16090);
  EXPECT_EQ(p.at("metadata").at("annotations").at("prometheus.io/port"), "16090");
}

TEST(inject_mutation, unknown_space_reads_the_namespace_at_runtime) {
  auto p = injected(pod(), {}, {"", {}});
  EXPECT_EQ(env_of(container(p, "initContainers", "devspaces-proxy"), "DEVSPACES_SPACE"),
            "fieldRef:metadata.namespace");
}

TEST(inject_mutation, classic_mode_container_with_post_start_wait) {
  injection_settings s;
  s.mode = sidecar_mode::classic;
  auto p = injected(pod(R"("initContainers":[{"name":"migrate","image":"m"}])"), s);
  const auto& inits = p.at("spec").at("initContainers").as_array();
  ASSERT_EQ(inits.size(), 2u);
  EXPECT_EQ(inits[0].at("name").as_string(), "migrate");  // runs before capture starts
  EXPECT_EQ(inits[1].at("name").as_string(), "devspaces-proxy-init");
  const auto& containers = p.at("spec").at("containers").as_array();
  ASSERT_EQ(containers.size(), 2u);
  EXPECT_EQ(containers[0].at("name").as_string(), "devspaces-proxy");
  const auto& cmd = containers[0].at("lifecycle").at("postStart").at("exec").at("command");
  EXPECT_EQ(cmd.at(1), "wait-ready");
  EXPECT_FALSE(containers[0].as_object().contains("restartPolicy"));
  EXPECT_EQ(p.at("metadata").at("annotations").at("kubectl.kubernetes.io/default-container"),
            "web");
}

TEST(inject_mutation, existing_init_containers_follow_the_proxy) {
  auto p = injected(pod(R"("initContainers":[{"name":"migrate","image":"m"}],
                           "securityContext":{"runAsNonRoot":true,"runAsUser":1000})"));
  const auto& inits = p.at("spec").at("initContainers").as_array();
  ASSERT_EQ(inits.size(), 3u);
  EXPECT_EQ(inits[2].at("name").as_string(), "migrate");
  // The pod's own security context is kept; the init overrides it for itself only.
  EXPECT_EQ(p.at("spec").at("securityContext").at("runAsUser"), 1000);
  EXPECT_EQ(inits[0].at("securityContext").at("runAsNonRoot"), false);
}

TEST(inject_mutation, skips_opted_out_host_network_and_injected) {
  auto p = pod("", R"("devspaces.io/inject":"false")");
  EXPECT_EQ(make_pod_patch(p, {}, {}).outcome.result, outcome::opted_out);
  EXPECT_TRUE(make_pod_patch(p, {}, {}).ops.empty());
  p = pod(R"("hostNetwork":true)");
  EXPECT_EQ(make_pod_patch(p, {}, {}).outcome.result, outcome::host_network);
  auto once = injected(pod());
  auto again = make_pod_patch(once, {"azureuser", {"default"}}, {});
  EXPECT_EQ(again.outcome.result, outcome::already_injected);
  EXPECT_TRUE(again.ops.empty());
  // A pod that carries the containers but lost the annotation is still recognised.
  once.at("metadata").as_object().erase("annotations");
  EXPECT_EQ(make_pod_patch(once, {}, {}).outcome.result, outcome::already_injected);
}

TEST(inject_mutation, annotation_overrides_and_bad_values_warn) {
  auto p = pod("", R"("devspaces.io/exclude-outbound-ports":"3306,5432",
                     "devspaces.io/include-outbound-cidrs":"10.0.0.0/8",
                     "devspaces.io/exclude-inbound-ports":"22,nope",
                     "devspaces.io/exclude-outbound-cidrs":"10.300.0.0/16")");
  auto patch = make_pod_patch(p, {"azureuser", {}}, {});
  ASSERT_EQ(patch.outcome.result, outcome::injected);
  ASSERT_EQ(patch.outcome.warnings.size(), 2u);
  EXPECT_NE(patch.outcome.warnings[0].find("exclude-inbound-ports"), std::string::npos);
  ASSERT_FALSE(apply_simple_patch(p, patch.ops));
  const auto& init = container(p, "initContainers", "devspaces-proxy-init");
  EXPECT_EQ(env_of(init, "DEVSPACES_EXCLUDE_OUTBOUND_PORTS"), "3306,5432");
  EXPECT_EQ(env_of(init, "DEVSPACES_INCLUDE_OUTBOUND_CIDRS"), "10.0.0.0/8");
  EXPECT_EQ(env_of(init, "DEVSPACES_EXCLUDE_INBOUND_PORTS"), "");
  EXPECT_EQ(env_of(init, "DEVSPACES_EXCLUDE_OUTBOUND_CIDRS"), "");
}

TEST(inject_mutation, app_scrape_annotations_win) {
  auto p = injected(pod("", R"("prometheus.io/scrape":"true","prometheus.io/port":"9102",
                               "team":"payments")"));
  const auto& ann = p.at("metadata").at("annotations").as_object();
  EXPECT_EQ(ann.at("prometheus.io/port"), "9102");
  EXPECT_FALSE(ann.contains("prometheus.io/path"));
  EXPECT_EQ(ann.at("team"), "payments");
  EXPECT_EQ(ann.at("devspaces.io/status"), "injected");
  auto plain = injected(pod());
  EXPECT_EQ(plain.at("metadata").at("annotations").at("prometheus.io/port"), "15090");
  EXPECT_EQ(plain.at("metadata").at("annotations").at("prometheus.io/path"), "/metrics");
}

TEST(inject_mutation, patch_paths_escape_and_only_add) {
  auto patch = make_pod_patch(pod("", R"("a/b":"c")"), {"x", {}}, {});
  for (const auto& op : patch.ops) {
    EXPECT_EQ(op.at("op"), "add");
    EXPECT_TRUE(op.at("path").as_string().starts_with("/"));
  }
  EXPECT_EQ(patch.ops.size(), 2u);  // metadata/annotations, spec/initContainers
}

TEST(inject_mutation, value_checks) {
  EXPECT_FALSE(check_cidr_list("10.0.0.0/8, fd00::/8,10.1.2.3"));
  EXPECT_TRUE(check_cidr_list("10.0.0.0/33"));
  EXPECT_TRUE(check_cidr_list("10.0.0.0/"));
  EXPECT_TRUE(check_cidr_list("example.com"));
  EXPECT_FALSE(check_include_cidrs("*"));
  EXPECT_FALSE(check_inbound_ports("*"));
  EXPECT_TRUE(check_port_list("0"));
  EXPECT_FALSE(check_port_list(""));
}

// --proxy-log-level takes level names the way operators write them (the proxy's own parser):
// any case, `warning` for `warn`; the pod gets the canonical name.
TEST(inject_settings, proxy_log_level_any_case_normalised) {
  const auto level = [](std::string value) -> std::optional<std::string> {
    injection_settings s;
    const auto specs = injection_options(s);
    const std::vector<std::string> args{"--proxy-log-level", std::move(value)};
    const auto parsed = common::parse_options(
        specs, args, [](const std::string&) { return std::optional<std::string>{}; });
    if (parsed.error) return std::nullopt;
    return s.log_level;
  };
  EXPECT_EQ(level("debug"), "debug");
  EXPECT_EQ(level("DEBUG"), "debug");
  EXPECT_EQ(level("Warning"), "warn");
  EXPECT_EQ(level("WARN"), "warn");
  EXPECT_EQ(level("Error"), "error");
  EXPECT_EQ(level("off"), "off");
  EXPECT_EQ(level("verbose"), std::nullopt);
  EXPECT_EQ(level(""), std::nullopt);

  injection_settings s;
  const auto specs = injection_options(s);
  const std::vector<std::string> args{"--proxy-log-level=Warning"};
  ASSERT_FALSE(common::parse_options(specs, args, [](const std::string&) {
                 return std::optional<std::string>{};
               }).error);
  const auto p = injected(pod(), s);
  EXPECT_EQ(env_of(container(p, "initContainers", "devspaces-proxy"), "DEVSPACES_LOG_LEVEL"),
            "warn");
}

}  // namespace
}  // namespace devspaces::proxy::inject
