#include "proxy/inject/manifest.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include <yaml-cpp/yaml.h>
#include <boost/json.hpp>

#include "common/options.hpp"

namespace devspaces::proxy::inject {

namespace json = boost::json;

namespace {

bool digits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// YAML 1.2 core schema int: [-+]?[0-9]+
bool looks_int(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  return digits(s);
}

// YAML 1.2 core schema float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool looks_float(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  auto e = s.find_first_of("eE");
  std::string_view mant = s.substr(0, e);
  if (e != std::string_view::npos) {
    std::string_view exp = s.substr(e + 1);
    if (!exp.empty() && (exp[0] == '-' || exp[0] == '+')) exp.remove_prefix(1);
    if (!digits(exp)) return false;
  }
  auto dot = mant.find('.');
  if (dot == std::string_view::npos) return digits(mant);
  std::string_view whole = mant.substr(0, dot), frac = mant.substr(dot + 1);
  if (whole.empty()) return digits(frac);
  return digits(whole) && (frac.empty() || digits(frac));
}

bool is_null_word(const std::string& s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}
bool is_true_word(const std::string& s) {
  return s == "true" || s == "True" || s == "TRUE";
}
bool is_false_word(const std::string& s) {
  return s == "false" || s == "False" || s == "FALSE";
}

// YAML 1.1 readers (several Kubernetes tools) also take these for booleans: quote them.
bool is_yaml11_bool(const std::string& s) {
  static const char* words[] = {"y",  "Y",  "yes", "Yes", "YES", "n",   "N",   "no",
                                "No", "NO", "on",  "On",  "ON",  "off", "Off", "OFF"};
  for (const char* w : words)
    if (s == w) return true;
  return false;
}

json::value scalar_value(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (node.Tag() == "!" || (!node.Tag().empty() && node.Tag() != "?")) {
    if (node.Tag() == "tag:yaml.org,2002:int") return json::value(std::stoll(text));
    return json::value(text);
  }
  if (is_null_word(text)) return nullptr;
  if (is_true_word(text)) return true;
  if (is_false_word(text)) return false;
  if (looks_int(text)) {
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(text.c_str(), &end, 10);
    if (errno == 0) return v;
  }
  if (looks_float(text)) return std::strtod(text.c_str(), nullptr);
  return json::value(text);
}

json::value to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return scalar_value(node);
    case YAML::NodeType::Sequence: {
      json::array a;
      for (const auto& item : node) a.push_back(to_json(item));
      return a;
    }
    case YAML::NodeType::Map: {
      json::object o;
      for (const auto& kv : node) o[kv.first.Scalar()] = to_json(kv.second);
      return o;
    }
  }
  return nullptr;
}

bool needs_quotes(const std::string& s) {
  if (is_null_word(s) || is_true_word(s) || is_false_word(s) || is_yaml11_bool(s)) return true;
  if (looks_int(s) || looks_float(s)) return true;
  if (s == ".inf" || s == "-.inf" || s == ".nan") return true;
  return false;
}

void emit(YAML::Emitter& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      out << YAML::Null;
      break;
    case json::kind::bool_:
      out << (v.get_bool() ? "true" : "false");
      break;
    case json::kind::int64:
      out << v.get_int64();
      break;
    case json::kind::uint64:
      out << v.get_uint64();
      break;
    case json::kind::double_:
      out << v.get_double();
      break;
    case json::kind::string: {
      std::string s(v.get_string());
      if (needs_quotes(s))
        out << YAML::DoubleQuoted << s;
      else if (s.find('\n') != std::string::npos)
        out << YAML::Literal << s;
      else
        out << s;
      break;
    }
    case json::kind::array: {
      const auto& a = v.get_array();
      if (a.empty()) {
        out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
        break;
      }
      out << YAML::BeginSeq;
      for (const auto& item : a) emit(out, item);
      out << YAML::EndSeq;
      break;
    }
    case json::kind::object: {
      const auto& o = v.get_object();
      if (o.empty()) {
        out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        break;
      }
      out << YAML::BeginMap;
      for (const auto& [key, value] : o) {
        std::string k(key);
        out << YAML::Key;
        if (needs_quotes(k)) out << YAML::DoubleQuoted;
        out << k << YAML::Value;
        emit(out, value);
      }
      out << YAML::EndMap;
      break;
    }
  }
}

json::object* object_at(json::value& v, std::initializer_list<std::string_view> path) {
  json::value* cur = &v;
  for (auto key : path) {
    auto* obj = cur->if_object();
    if (obj == nullptr) return nullptr;
    cur = obj->if_contains(key);
    if (cur == nullptr) return nullptr;
  }
  return cur->if_object();
}

std::string string_at(const json::object& obj, std::string_view key) {
  const auto* v = obj.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::string lower(std::string s) {
  return common::to_lower(s);
}

}  // namespace

std::vector<std::string> inject_object(json::value& obj, const manifest_options& opts) {
  std::vector<std::string> notes;
  auto* root = obj.if_object();
  if (root == nullptr) return notes;
  const std::string kind = string_at(*root, "kind");
  if (kind == "List") {
    if (auto* items = root->if_contains("items"); items != nullptr && items->is_array())
      for (auto& item : items->get_array()) {
        auto more = inject_object(item, opts);
        notes.insert(notes.end(), more.begin(), more.end());
      }
    return notes;
  }
  json::object* metadata = nullptr;
  json::object* spec = nullptr;
  json::value* holder = nullptr;  // the object holding metadata + spec of the pod template
  if (kind == "Pod") {
    holder = &obj;
  } else if (kind == "Deployment" || kind == "StatefulSet" || kind == "DaemonSet" ||
             kind == "ReplicaSet" || kind == "ReplicationController" || kind == "Job") {
    if (auto* s = object_at(obj, {"spec"}); s != nullptr) holder = s->if_contains("template");
  } else if (kind == "CronJob") {
    if (auto* s = object_at(obj, {"spec", "jobTemplate", "spec"}); s != nullptr)
      holder = s->if_contains("template");
  }
  if (holder == nullptr || !holder->is_object()) return notes;
  auto& h = holder->get_object();
  if (!h["metadata"].is_object()) h["metadata"] = json::object();
  if (!h["spec"].is_object()) h["spec"] = json::object();
  metadata = &h["metadata"].get_object();
  spec = &h["spec"].get_object();

  pod_context ctx;
  ctx.parents = opts.parents;
  ctx.space = opts.space;
  const auto* own_md = object_at(obj, {"metadata"});
  if (ctx.space.empty() && own_md != nullptr) ctx.space = string_at(*own_md, "namespace");
  auto result = inject_template(*metadata, *spec, ctx, opts.settings);
  std::string name = own_md != nullptr ? string_at(*own_md, "name") : std::string();
  if (name.empty() && own_md != nullptr) name = string_at(*own_md, "generateName");
  std::string note = lower(kind) + "/" + name + ": " + std::string(describe(result.result));
  for (const auto& w : result.warnings) note += "; " + w;
  notes.push_back(std::move(note));
  return notes;
}

std::vector<json::value> parse_yaml_documents(std::string_view text, std::string* error) {
  std::vector<json::value> docs;
  try {
    for (const auto& node : YAML::LoadAll(std::string(text))) {
      if (node.IsNull()) continue;
      docs.push_back(to_json(node));
    }
  } catch (const YAML::Exception& e) {
    if (error) *error = std::string("not valid YAML: ") + e.what();
    docs.clear();
  }
  return docs;
}

std::string to_yaml(const std::vector<json::value>& docs) {
  std::string out;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    YAML::Emitter e;
    e.SetIndent(2);
    e.SetSeqFormat(YAML::Block);
    emit(e, docs[i]);
    if (i > 0) out += "---\n";
    out += e.c_str();
    out += "\n";
  }
  return out;
}

manifest_result inject_manifests(std::string_view input, const manifest_options& opts) {
  manifest_result r;
  auto first = input.find_first_not_of(" \t\r\n");
  const bool json_in =
      first != std::string_view::npos && (input[first] == '{' || input[first] == '[');
  std::vector<json::value> docs;
  if (json_in) {
    boost::system::error_code ec;
    auto v = json::parse(input, ec);
    if (ec) {
      r.error = "not valid JSON: " + ec.message();
      return r;
    }
    docs.push_back(std::move(v));
  } else {
    std::string err;
    docs = parse_yaml_documents(input, &err);
    if (!err.empty()) {
      r.error = err;
      return r;
    }
  }
  for (auto& d : docs) {
    auto notes = inject_object(d, opts);
    r.notes.insert(r.notes.end(), notes.begin(), notes.end());
  }
  const std::string out_format = opts.output.empty() ? (json_in ? "json" : "yaml") : opts.output;
  if (out_format == "json") {
    if (docs.size() == 1) {
      r.text = json::serialize(docs.front()) + "\n";
    } else {
      json::array items(docs.begin(), docs.end());
      r.text = json::serialize(json::object{
                   {"apiVersion", "v1"}, {"kind", "List"}, {"items", std::move(items)}}) +
               "\n";
    }
  } else {
    r.text = to_yaml(docs);
  }
  return r;
}

int run_inject_cli(int argc, char** argv) {
  manifest_options opts;
  std::string file = "-";
  auto specs = injection_options(opts.settings);
  specs.push_back(
      {"--file", "", "-", "file to read, - for stdin (also -f)", [&file](std::string_view v) {
         file = std::string(v);
         return std::optional<std::string>();
       }});
  specs.push_back({"--space", "", "", "the space (default: each object's namespace)",
                   common::space_setter(opts.space)});
  specs.push_back({"--parent-spaces", "", "", "comma list: parent, grandparent of the space",
                   common::parent_spaces_setter(opts.parents)});
  specs.push_back({"--output", "", "", "yaml or json (default: the input's format; also -o)",
                   [&opts](std::string_view v) -> std::optional<std::string> {
                     if (v != "yaml" && v != "json" && !v.empty()) return "must be yaml or json";
                     opts.output = std::string(v);
                     return std::nullopt;
                   }});
  std::vector<std::string> args(argv + 2, argv + argc);
  for (auto& a : args) {
    if (a == "-f")
      a = "--file";
    else if (a == "-o")
      a = "--output";
  }
  // Only flags reach the injection settings: the environment of the machine running
  // `inject` is not the cluster's.
  auto parsed = common::parse_options(
      specs, args, [](const std::string&) { return std::optional<std::string>(); });
  if (parsed.help) {
    std::fputs(common::render_help("devspaces-proxy inject [-f FILE|-] [flags]\n"
                                   "Adds devspaces-proxy-init and devspaces-proxy to the pod "
                                   "templates of Kubernetes manifests (YAML or JSON).",
                                   specs)
                   .c_str(),
               stdout);
    return 0;
  }
  auto fail = [](const std::string& line) {
    std::fprintf(stderr, "devspaces-proxy inject: %s\n", line.c_str());
    return 2;
  };
  if (parsed.error) return fail(*parsed.error);
  if (!parsed.positional.empty()) return fail("unexpected argument '" + parsed.positional[0] + "'");
  if (auto e = check_settings(opts.settings)) return fail(*e);
  std::string input;
  if (file == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    input = ss.str();
  } else {
    std::ifstream in(file, std::ios::binary);
    if (!in) return fail(file + ": cannot be read");
    std::ostringstream ss;
    ss << in.rdbuf();
    input = ss.str();
  }
  auto r = inject_manifests(input, opts);
  if (r.error) return fail((file == "-" ? std::string("stdin") : file) + ": " + *r.error);
  for (const auto& n : r.notes) std::fprintf(stderr, "%s\n", n.c_str());
  std::fwrite(r.text.data(), 1, r.text.size(), stdout);
  return 0;
}

}  // namespace devspaces::proxy::inject
