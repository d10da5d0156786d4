#include "common/options.hpp"

#include <charconv>

#include "common/duration.hpp"

namespace devspaces::common {

namespace {

const option_spec* find_flag(std::span<const option_spec> specs, std::string_view name) {
  for (const auto& s : specs)
    if (s.flag == name) return &s;
  return nullptr;
}

std::optional<std::string> apply_one(const option_spec& spec, std::string_view value,
                                     std::string_view source) {
  if (auto err = spec.apply(value)) {
    return std::string(source) + ": '" + std::string(value) + "' " + *err;
  }
  return std::nullopt;
}

}  // namespace

parse_result parse_options(std::span<const option_spec> specs, std::span<const std::string> args,
                           const env_lookup& env) {
  parse_result result;
  for (const auto& s : specs) {
    if (s.default_value.empty()) continue;
    if (auto err = apply_one(s, s.default_value, s.flag + " default")) {
      result.error = *err;
      return result;
    }
  }
  for (const auto& s : specs) {
    if (s.env.empty() || !env) continue;
    if (auto value = env(s.env)) {
      if (auto err = apply_one(s, *value, s.env)) {
        result.error = *err;
        return result;
      }
    }
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      result.help = true;
      continue;
    }
    if (arg == "--version") {
      result.version = true;
      continue;
    }
    if (arg.size() < 3 || arg.substr(0, 2) != "--") {
      result.positional.emplace_back(arg);
      continue;
    }
    std::string_view name = arg;
    std::optional<std::string_view> value;
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    const option_spec* spec = find_flag(specs, name);
    if (!spec) {
      result.error = "unknown flag " + std::string(name) + " (see --help)";
      return result;
    }
    if (!value) {
      if (i + 1 >= args.size()) {
        result.error = std::string(name) + ": missing value";
        return result;
      }
      value = args[++i];
    }
    if (auto err = apply_one(*spec, *value, name)) {
      result.error = *err;
      return result;
    }
  }
  return result;
}

std::string render_help(std::string_view usage, std::span<const option_spec> specs) {
  std::string out(usage);
  out +=
      "\n\nFlags (each also read from its environment variable; flags beat env beat defaults):\n";
  for (const auto& s : specs) {
    out += "  " + s.flag;
    if (s.flag.size() < 26) out.append(26 - s.flag.size(), ' ');
    out += " " + s.help;
    if (!s.env.empty()) out += " [env " + s.env + "]";
    if (!s.default_value.empty()) out += " (default " + s.default_value + ")";
    out += "\n";
  }
  out += "  --help                     this text\n  --version                  print the version\n";
  return out;
}

std::optional<std::uint64_t> parse_uint(std::string_view text, std::uint64_t max) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || p != text.data() + text.size() || v > max) return std::nullopt;
  return v;
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  auto v = parse_uint(text, 65535);
  if (!v || *v == 0) return std::nullopt;
  return static_cast<std::uint16_t>(*v);
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view item = text.substr(start, end - start);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    start = end + 1;
  }
  return out;
}

std::optional<std::vector<std::uint16_t>> parse_port_list(std::string_view text) {
  std::vector<std::uint16_t> out;
  for (const auto& item : split_list(text)) {
    auto p = parse_port(item);
    if (!p) return std::nullopt;
    out.push_back(*p);
  }
  return out;
}

bool is_dns_label(std::string_view t) {
  if (t.empty() || t.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(t.front()) || !alnum(t.back())) return false;
  for (char c : t)
    if (!alnum(c) && c != '-') return false;
  return true;
}

std::string to_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool is_dns_domain(std::string_view d) {
  if (d.empty() || d.size() > 253) return false;
  std::size_t start = 0;
  while (start <= d.size()) {
    auto end = d.find('.', start);
    if (end == std::string_view::npos) end = d.size();
    if (!is_dns_label(d.substr(start, end - start))) return false;
    start = end + 1;
  }
  return true;
}

option_setter port_setter(std::uint16_t& out) {
  return [&out](std::string_view v) -> std::optional<std::string> {
    auto p = parse_port(v);
    if (!p) return "is not a port (1-65535)";
    out = *p;
    return std::nullopt;
  };
}

option_setter duration_setter(std::chrono::milliseconds& out) {
  return [&out](std::string_view v) -> std::optional<std::string> {
    auto d = parse_duration(v);
    if (!d) return "is not a duration (e.g. 250ms, 5s, 2m, 1h)";
    out = *d;
    return std::nullopt;
  };
}

option_setter space_setter(std::string& out) {
  return [&out](std::string_view v) -> std::optional<std::string> {
    auto s = to_lower(v);
    if (!is_dns_label(s)) return "is not a space name (a DNS label)";
    out = s;
    return std::nullopt;
  };
}

option_setter parent_spaces_setter(std::vector<std::string>& out) {
  return [&out](std::string_view v) -> std::optional<std::string> {
    std::vector<std::string> spaces;
    for (const auto& item : split_list(v)) {
      auto s = to_lower(item);
      if (!is_dns_label(s)) return "has '" + item + "', not a space name";
      spaces.push_back(s);
    }
    if (spaces.size() > 2) return "names more than two ancestors (at most 3 levels)";
    out = std::move(spaces);
    return std::nullopt;
  };
}

option_setter domain_setter(std::string& out) {
  return [&out](std::string_view v) -> std::optional<std::string> {
    auto d = to_lower(v);
    if (!is_dns_domain(d)) return "is not a DNS domain";
    out = d;
    return std::nullopt;
  };
}

}  // namespace devspaces::common
