#include "common/options.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include <CLI/CLI.hpp>

#include "common/duration.hpp"
#include "common/log_level.hpp"

namespace devspaces::common {

namespace {

std::optional<std::string> apply_one(const option_spec& spec, std::string_view value,
                                     std::string_view source) {
  if (auto err = spec.apply(value)) {
    return std::string(source) + ": '" + std::string(value) + "' " + *err;
  }
  return std::nullopt;
}

/// "--flag=value" becomes "--flag" "value" (CLI11 2.1 reads "--flag=" as a missing value).
std::vector<std::string> split_equals(std::span<const std::string> args) {
  std::vector<std::string> out;
  for (const auto& a : args) {
    auto eq = a.find('=');
    if (a.starts_with("--") && eq != std::string::npos && eq > 2) {
      out.push_back(a.substr(0, eq));
      out.push_back(a.substr(eq + 1));
    } else {
      out.push_back(a);
    }
  }
  return out;
}

std::string unknown_flag_error(std::span<const option_spec> specs, std::string_view name) {
  if (auto s = suggest_flag(specs, name))
    return "unknown flag " + std::string(name) + " (did you mean " + *s + "?)";
  return "unknown flag " + std::string(name) + " (see --help)";
}

/// Optimal string alignment distance (edits, with adjacent transpositions).
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

/// Joins words that must stay on one line ("[env NAME]") in wrap_into's input.
constexpr char nbsp = '\x01';

/// Appends `text` word-wrapped: the first line continues at column `col`, later lines start
/// at `indent`. Runs of spaces inside a line are kept; at a break they are dropped. Words
/// longer than a line get a line of their own.
void wrap_into(std::string& out, std::string_view text, std::size_t col, std::size_t indent,
               std::size_t width) {
  bool first_word = true;
  while (!text.empty()) {
    const auto start = text.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    const std::size_t gap = start;
    text.remove_prefix(start);
    auto end = text.find(' ');
    std::string_view word = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end);
    if (!first_word && col + gap + word.size() > width) {
      out += "\n" + std::string(indent, ' ');
      col = indent;
    } else if (!first_word) {
      out.append(gap, ' ');
      col += gap;
    }
    for (char c : word) out += c == nbsp ? ' ' : c;
    col += word.size();
    first_word = false;
  }
}

/// Where the continuation of a usage line starts: under the text of a "  name   text" row,
/// else under the line's own indent.
std::size_t hang_of(std::string_view line) {
  std::size_t lead = line.find_first_not_of(' ');
  if (lead == std::string_view::npos) return 0;
  if (auto gap = line.find("  ", lead); gap != std::string_view::npos && gap < 40) {
    auto text = line.find_first_not_of(' ', gap);
    if (text != std::string_view::npos) return text;
  }
  return lead;
}

std::string markdown_cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    if (c == '<')
      out += "&lt;";  // "hosts:<path>" is text, not an HTML tag
    else
      out += c;
  }
  return out;
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

  // The command line: CLI11 tokenises (flags, `--flag=value`, the last of a repeated flag,
  // positionals, unknown flags), our table applies and words the errors. Help, its wrapping and
  // the suggestions for unknown flags are ours: CLI11 2.1 (Debian 12) prints descriptions
  // unwrapped and has no suggestions.
  CLI::App app;
  app.set_help_flag();
  app.allow_extras(true);
  std::vector<std::string> values(specs.size());
  try {
    app.add_flag("-h,--help", result.help);
    app.add_flag("--help-markdown", result.help_markdown);
    app.add_flag("--version", result.version);
    for (std::size_t i = 0; i < specs.size(); ++i)
      app.add_option(specs[i].flag, values[i])
          ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  } catch (const CLI::Error& e) {
    result.error = std::string("option table: ") + e.what();
    return result;
  }
  auto tokens = split_equals(args);
  std::reverse(tokens.begin(), tokens.end());  // CLI11 takes the arguments last first
  try {
    app.parse(tokens);
  } catch (const CLI::ArgumentMismatch& e) {
    const std::string what = e.what();
    result.error = what.substr(0, what.find(':')) + ": missing value";
    return result;
  } catch (const CLI::ParseError& e) {
    result.error = e.what();
    return result;
  }
  for (const auto& extra : app.remaining()) {
    if (extra.size() > 1 && extra.front() == '-') {
      result.error = unknown_flag_error(specs, extra);
      return result;
    }
    result.positional.push_back(extra);
  }
  if (result.help || result.help_markdown || result.version) return result;

  for (const auto& s : specs) {
    if (s.env.empty() || !env) continue;
    if (auto value = env(s.env)) {
      if (auto err = apply_one(s, *value, s.env)) {
        result.error = *err;
        return result;
      }
    }
  }
  for (std::size_t i = 0; i < specs.size(); ++i) {
    if (app.count(specs[i].flag) == 0) continue;
    if (auto err = apply_one(specs[i], values[i], specs[i].flag)) {
      result.error = *err;
      return result;
    }
  }
  return result;
}

std::optional<std::string> suggest_flag(std::span<const option_spec> specs, std::string_view name) {
  std::string wanted = to_lower(name);
  for (char& c : wanted)
    if (c == '_') c = '-';
  const auto body = wanted.find_first_not_of('-');
  if (body == std::string::npos) return std::nullopt;
  wanted = "--" + wanted.substr(body);
  const option_spec* best = nullptr;
  std::size_t best_distance = 0;
  const option_spec* prefix = nullptr;
  std::size_t prefixes = 0;
  for (const auto& s : specs) {
    if (s.flag.starts_with(wanted)) {
      prefix = &s;
      ++prefixes;
    }
    const std::size_t d = edit_distance(wanted, s.flag);
    if (!best || d < best_distance) {
      best = &s;
      best_distance = d;
    }
  }
  // Close: a few edits, relative to the length (so "--x" does not suggest "--space").
  if (best &&
      best_distance <= std::max<std::size_t>(1, std::min<std::size_t>(3, wanted.size() / 4)))
    return best->flag;
  if (prefixes == 1 && wanted.size() > 3) return prefix->flag;
  return std::nullopt;
}

std::size_t terminal_width() {
  std::size_t cols = 0;
  if (const char* env = std::getenv("COLUMNS")) {
    if (auto v = parse_uint(env, 10000)) cols = static_cast<std::size_t>(*v);
  }
  if (cols == 0) {
    winsize ws{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) cols = ws.ws_col;
  }
  if (cols == 0) cols = 80;
  return std::clamp<std::size_t>(cols, 40, 120);
}

std::string render_help(std::string_view usage, std::span<const option_spec> specs,
                        std::size_t width) {
  std::string out;
  // The usage text is reflowed to the width: unindented lines that follow each other form a
  // paragraph, a line indented to the text column of the row above continues that row, and
  // every other line starts a line of its own.
  std::vector<std::string> lines;
  while (!usage.empty()) {
    auto nl = usage.find('\n');
    std::string line(usage.substr(0, nl));
    usage = nl == std::string_view::npos ? std::string_view() : usage.substr(nl + 1);
    const std::size_t lead = line.empty() ? 0 : line.find_first_not_of(' ');
    if (!lines.empty() && !lines.back().empty() && lead != std::string::npos && !line.empty()) {
      const std::string& prev = lines.back();
      const bool prose = lead == 0 && prev.front() != ' ' && !line.starts_with("usage:") &&
                         !prev.starts_with("usage:");
      const bool continuation = lead > 0 && lead == hang_of(prev) && hang_of(prev) != 0 &&
                                prev.find_first_not_of(' ') != lead;
      if (prose || continuation) {
        lines.back() += " " + line.substr(lead);
        continue;
      }
    }
    lines.push_back(std::move(line));
  }
  for (const std::string& text_line : lines) {
    std::string_view line = text_line;
    std::size_t lead = line.find_first_not_of(' ');
    if (lead == std::string_view::npos) lead = 0;
    out.append(line.substr(0, lead));
    wrap_into(out, line.substr(lead), lead, hang_of(line), width);
    out += '\n';
  }
  out += '\n';
  wrap_into(
      out, "Flags (each also read from its environment variable; flags beat env beat defaults):", 0,
      2, width);
  out += '\n';
  constexpr std::size_t flag_col = 28;  // "  " + flag, padded
  // A narrow terminal puts the text under the flag rather than in a thin column.
  const bool stacked = width < flag_col + 30;
  auto row = [&](std::string_view flag, const std::string& text) {
    out += "  ";
    out += flag;
    std::size_t col = 2 + flag.size();
    std::size_t indent = stacked ? 6 : flag_col;
    if (stacked || col + 1 > flag_col) {
      out += "\n" + std::string(indent, ' ');
      col = indent;
    } else {
      out.append(flag_col - col, ' ');
      col = flag_col;
    }
    wrap_into(out, text, col, indent, width);
    out += '\n';
  };
  for (const auto& s : specs) {
    std::string text = s.help;
    if (!s.env.empty()) text += std::string(" [env") + nbsp + s.env + "]";
    if (!s.default_value.empty()) text += std::string(" (default") + nbsp + s.default_value + ")";
    row(s.flag, text);
  }
  row("--help", "this text");
  row("--help-markdown", "the flag table as Markdown (docs/configuration.md)");
  row("--version", "print the version, the commit and the build type");
  return out;
}

std::string render_markdown(std::span<const option_spec> specs) {
  std::string out = "| flag | env | default | meaning |\n|---|---|---|---|\n";
  for (const auto& s : specs) {
    out += "| `" + s.flag + "` | ";
    out += s.env.empty() ? std::string() : "`" + s.env + "`";
    out += " | ";
    out += s.default_value.empty() ? std::string() : "`" + markdown_cell(s.default_value) + "`";
    out += " | " + markdown_cell(s.help) + " |\n";
  }
  return out;
}

std::string version_text(std::string_view program, std::string_view version,
                         std::string_view commit, std::string_view build_type) {
  return std::string(program) + " " + std::string(version) + " (commit " +
         std::string(commit.empty() ? "unknown" : commit) + ", " +
         std::string(build_type.empty() ? "unknown" : build_type) + " build)";
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
    auto d = parse_duration_checked(v);
    if (!d.value) return d.error;
    out = *d.value;
    return std::nullopt;
  };
}

option_setter log_level_setter(std::string& out) {
  return [&out](std::string_view v) -> std::optional<std::string> {
    auto level = parse_log_level(v);
    if (!level) return "is not one of " + std::string(log_level_names()) + " (any case)";
    out = std::string(log_level_name(*level));
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
