#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "proxy/inject/mutation.hpp"
#include "proxy/inject/settings.hpp"

namespace devspaces::proxy::inject {

/// What `devspaces-proxy inject` needs besides the injection settings.
struct manifest_options {
  injection_settings settings;
  std::string space;  ///< --space; empty: each object's metadata.namespace, else read at runtime
  std::vector<std::string> parents;  ///< --parent-spaces
  std::string output;                ///< "yaml", "json", or empty: the input's format
};

/// Result of inject_manifests: the rewritten text, or an error line.
struct manifest_result {
  std::string text;
  std::optional<std::string> error;
  std::vector<std::string> notes;  ///< one line per pod template ("deployment/web: injected")
};

/// Injects every pod template in `input` (YAML, multi-document YAML, or JSON): Pod, Deployment,
/// StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob and List items.
/// Other objects pass through unchanged. Injecting the output again changes nothing.
manifest_result inject_manifests(std::string_view input, const manifest_options& opts);

/// Injects the pod templates of one object in place; returns the notes.
std::vector<std::string> inject_object(boost::json::value& obj, const manifest_options& opts);

/// YAML text (one or more documents) → JSON values (plain scalars resolved as YAML 1.2 core:
/// null, booleans, integers, floats; quoted scalars stay strings).
std::vector<boost::json::value> parse_yaml_documents(std::string_view text, std::string* error);

/// JSON values → YAML text, documents separated by "---"; strings that a YAML reader would
/// take for another type are quoted.
std::string to_yaml(const std::vector<boost::json::value>& docs);

/// `devspaces-proxy inject [-f FILE|-] [flags]`: exit 0 done, 2 usage or bad input.
int run_inject_cli(int argc, char** argv);

}  // namespace devspaces::proxy::inject
