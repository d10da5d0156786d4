#include "init/resolv_conf.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/options.hpp"
#include "init/config.hpp"

namespace devspaces::init {

namespace {

constexpr std::string_view was_separator = "; was: ";

struct lines_t {
  std::vector<std::string> lines;
  bool trailing_newline = false;
};

lines_t split_lines(std::string_view text) {
  lines_t out;
  out.trailing_newline = !text.empty() && text.back() == '\n';
  if (out.trailing_newline) text.remove_suffix(1);
  if (text.empty() && !out.trailing_newline) return out;
  std::size_t start = 0;
  while (true) {
    auto nl = text.find('\n', start);
    out.lines.emplace_back(text.substr(start, nl == std::string_view::npos ? nl : nl - start));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return out;
}

std::string join_lines(const lines_t& l) {
  std::string out;
  for (std::size_t i = 0; i < l.lines.size(); ++i) {
    out += l.lines[i];
    if (i + 1 < l.lines.size() || l.trailing_newline) out += '\n';
  }
  return out;
}

std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (i < s.size()) {
    while (i < s.size() && space(s[i])) ++i;
    std::size_t j = i;
    while (j < s.size() && !space(s[j])) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

/// Lowercase without a trailing dot: how two search entries are compared.
std::string norm(std::string_view d) {
  auto s = common::to_lower(d);
  while (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

bool contains(const std::vector<std::string>& list, std::string_view d) {
  auto n = norm(d);
  return std::any_of(list.begin(), list.end(), [&](const auto& x) { return norm(x) == n; });
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += ' ';
    out += s;
  }
  return out;
}

/// "search a b" / "domain a" → its entries; nullopt for other lines. Comments never match.
std::optional<std::vector<std::string>> search_entries(std::string_view line) {
  auto w = words(line);
  if (w.empty() || (w[0] != "search" && w[0] != "domain")) return std::nullopt;
  w.erase(w.begin());
  if (!w.empty() && line.starts_with("domain")) w.resize(1);
  return w;
}

/// Index of the last search/domain line (the one the resolver uses), or -1.
long last_search_line(const std::vector<std::string>& lines) {
  for (long i = static_cast<long>(lines.size()) - 1; i >= 0; --i)
    if (search_entries(lines[static_cast<std::size_t>(i)])) return i;
  return -1;
}

struct marker_t {
  std::vector<std::string> added;
  std::optional<std::string> was;  ///< the original search line, nullopt when there was none
};

std::optional<marker_t> parse_marker(std::string_view line) {
  if (!line.starts_with(resolv_marker)) return std::nullopt;
  line.remove_prefix(resolv_marker.size());
  while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  marker_t m;
  auto sep = line.find(was_separator);
  m.added = words(line.substr(0, sep));
  if (sep != std::string_view::npos) {
    auto was = line.substr(sep + was_separator.size());
    if (was != "-") m.was = std::string(was);
  }
  return m;
}

std::string render_marker(const std::vector<std::string>& added,
                          const std::optional<std::string>& was) {
  return std::string(resolv_marker) + (added.empty() ? "" : " ") + join(added) +
         std::string(was_separator) + (was ? *was : "-");
}

/// The file as it was before apply, as far as it can be told: the marker is removed and the
/// search line goes back to the recorded original when nobody edited it since, otherwise the
/// recorded additions are taken out of what is there now.
struct base_t {
  lines_t file;
  long search_index = -1;           ///< line holding the base search line (-1: none)
  std::optional<std::string> line;  ///< the base search line text
  std::vector<std::string> entries;
  bool had_marker = false;
};

base_t recover_base(std::string_view text) {
  base_t b;
  b.file = split_lines(text);
  std::optional<marker_t> marker;
  for (auto it = b.file.lines.begin(); it != b.file.lines.end(); ++it) {
    if ((marker = parse_marker(*it))) {
      b.file.lines.erase(it);
      break;
    }
  }
  b.had_marker = marker.has_value();
  b.search_index = last_search_line(b.file.lines);
  std::vector<std::string> current;
  if (b.search_index >= 0) {
    b.line = b.file.lines[static_cast<std::size_t>(b.search_index)];
    current = *search_entries(*b.line);
  }
  if (!marker) {
    b.entries = current;
    return b;
  }
  std::vector<std::string> was_entries;
  if (marker->was) was_entries = search_entries(*marker->was).value_or(std::vector<std::string>{});
  bool untouched = std::all_of(current.begin(), current.end(), [&](const auto& d) {
    return contains(was_entries, d) || contains(marker->added, d);
  });
  if (untouched) {
    b.line = marker->was;
    b.entries = was_entries;
  } else {
    for (const auto& d : current)
      if (!contains(marker->added, d)) b.entries.push_back(d);
    b.line =
        b.entries.empty() ? std::nullopt : std::optional<std::string>("search " + join(b.entries));
  }
  return b;
}

/// Writes `line` (or removes the search line when nullopt) at the base position.
void put_search_line(base_t& b, const std::optional<std::string>& line,
                     const std::optional<std::string>& marker) {
  auto& lines = b.file.lines;
  std::size_t at;
  if (b.search_index >= 0) {
    at = static_cast<std::size_t>(b.search_index);
    if (line)
      lines[at] = *line;
    else
      lines.erase(lines.begin() + static_cast<long>(at));
  } else {
    at = lines.size();
    if (line) {
      lines.push_back(*line);
      b.file.trailing_newline = true;
    }
  }
  if (marker) lines.insert(lines.begin() + static_cast<long>(at), *marker);
}

}  // namespace

std::vector<std::string> space_search_domains(std::string_view space,
                                              const std::vector<std::string>& parents,
                                              std::string_view cluster_domain) {
  std::vector<std::string> out;
  auto add = [&](std::string_view s) {
    auto d = std::string(s) + ".svc." + std::string(cluster_domain);
    if (!contains(out, d)) out.push_back(d);
  };
  add(space);
  for (const auto& p : parents) add(p);
  return out;
}

resolv_edit add_search_domains(std::string_view text, const std::vector<std::string>& wanted,
                               search_limits limits) {
  resolv_edit r;
  base_t b = recover_base(text);
  std::vector<std::string> list;
  for (const auto& d : wanted)
    if (!contains(list, d)) list.push_back(d);
  const std::size_t own = list.size();
  for (const auto& d : b.entries)
    if (!contains(list, d)) list.push_back(d);
  // Respect the limits by leaving out the least specific existing entries; ours always stay.
  while (list.size() > own &&
         (list.size() > limits.max_domains || join(list).size() > limits.max_chars)) {
    r.dropped.insert(r.dropped.begin(), list.back());
    list.pop_back();
  }
  for (const auto& d : list)
    if (!contains(b.entries, d)) r.added.push_back(d);
  r.search = list;
  if (r.added.empty() && r.dropped.empty() && list == b.entries) {
    put_search_line(b, b.line, std::nullopt);
  } else {
    put_search_line(b, "search " + join(list), render_marker(r.added, b.line));
  }
  r.text = join_lines(b.file);
  r.changed = r.text != text;
  return r;
}

resolv_edit remove_search_domains(std::string_view text) {
  resolv_edit r;
  base_t b = recover_base(text);
  if (!b.had_marker) {
    r.text = std::string(text);
    r.search = b.entries;
    return r;
  }
  put_search_line(b, b.line, std::nullopt);
  r.text = join_lines(b.file);
  r.search = b.entries;
  r.changed = r.text != text;
  return r;
}

std::vector<std::string> resolv_nameservers(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& line : split_lines(text).lines) {
    auto w = words(line);
    if (w.size() < 2 || w[0] != "nameserver") continue;
    auto addr = w[1].substr(0, w[1].find('%'));
    auto c = parse_cidr(addr);
    if (!c) continue;
    auto plain = c->text.substr(0, c->text.find('/'));
    if (std::find(out.begin(), out.end(), plain) == out.end()) out.push_back(plain);
  }
  return out;
}

std::optional<std::string> read_text_file(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool write_in_place(const std::string& path, std::string_view text, std::string& error) {
  int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) {
    error = "cannot open " + path + " for writing: " + std::strerror(errno);
    return false;
  }
  std::size_t done = 0;
  while (done < text.size()) {
    auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      error = "cannot write " + path + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) {
    error = "cannot sync " + path + ": " + std::strerror(errno);
    ::close(fd);
    return false;
  }
  ::close(fd);
  return true;
}

}  // namespace devspaces::init
