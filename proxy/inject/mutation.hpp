#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "proxy/inject/settings.hpp"

namespace devspaces::proxy::inject {

/// Container names the mutation adds (and recognises an injected pod by).
inline constexpr std::string_view init_container_name = "devspaces-proxy-init";
inline constexpr std::string_view proxy_container_name = "devspaces-proxy";

/// `devspaces.io/inject: "false"` on a pod (template) opts it out.
inline constexpr std::string_view inject_annotation = "devspaces.io/inject";
/// Set to "injected" on every injected pod.
inline constexpr std::string_view status_annotation = "devspaces.io/status";
/// Per-pod overrides of the init's capture settings (same syntax as the flags).
inline constexpr std::string_view inbound_ports_annotation = "devspaces.io/inbound-ports";
inline constexpr std::string_view exclude_inbound_ports_annotation =
    "devspaces.io/exclude-inbound-ports";
inline constexpr std::string_view exclude_outbound_ports_annotation =
    "devspaces.io/exclude-outbound-ports";
inline constexpr std::string_view include_outbound_cidrs_annotation =
    "devspaces.io/include-outbound-cidrs";
inline constexpr std::string_view exclude_outbound_cidrs_annotation =
    "devspaces.io/exclude-outbound-cidrs";

/// Where the pod lives: its space (= namespace) and that space's parents (parent, grandparent).
struct pod_context {
  std::string space;  ///< empty: unknown here, the containers read metadata.namespace
  std::vector<std::string> parents;
};

/// Why a pod was or was not changed.
enum class outcome { injected, already_injected, opted_out, host_network };

/// A word for logs and AdmissionReview messages ("injected", "opted out", ...).
std::string_view describe(outcome o);

/// What the mutation did, plus warnings for annotations it ignored (bad override values).
struct inject_outcome {
  outcome result = outcome::injected;
  std::vector<std::string> warnings;
};

/// Injects the init container and the proxy into a pod template's metadata and spec, in place.
/// Pure: the same input always gives the same output, and an injected template is left alone.
inject_outcome inject_template(boost::json::object& metadata, boost::json::object& spec,
                               const pod_context& ctx, const injection_settings& settings);

/// The RFC 6902 JSON Patch that injects `pod` (a Pod object), as an admission webhook answers.
/// Empty when the pod is not changed.
struct pod_patch {
  inject_outcome outcome;
  boost::json::array ops;
};
pod_patch make_pod_patch(const boost::json::object& pod, const pod_context& ctx,
                         const injection_settings& settings);

/// Applies the "add" operations make_pod_patch produces (paths /a or /a/b) to `doc`.
/// Returns an error line for anything else.
std::optional<std::string> apply_simple_patch(boost::json::object& doc,
                                              const boost::json::array& ops);

// Value checks shared by the flags and the per-pod annotations (nullopt when valid).

/// A comma list of ports ("" allowed).
std::optional<std::string> check_port_list(std::string_view v);
/// "*" or a comma list of ports.
std::optional<std::string> check_inbound_ports(std::string_view v);
/// A comma list of CIDRs or addresses ("" allowed).
std::optional<std::string> check_cidr_list(std::string_view v);
/// "*" or a comma list of CIDRs.
std::optional<std::string> check_include_cidrs(std::string_view v);

}  // namespace devspaces::proxy::inject
