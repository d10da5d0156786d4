#include "proxy/http/head_edit.hpp"

#include <algorithm>

namespace devspaces::proxy::http {

void head_edit::insert(std::uint32_t at, std::string text) {
  edit e{at, 0, std::move(text)};
  auto it = std::upper_bound(edits_.begin(), edits_.end(), at,
                             [](std::uint32_t v, const edit& x) { return v < x.at; });
  edits_.insert(it, std::move(e));
}

void head_edit::replace(byte_span s, std::string text) {
  edit e{s.off, s.len, std::move(text)};
  auto it = std::upper_bound(edits_.begin(), edits_.end(), s.off,
                             [](std::uint32_t v, const edit& x) { return v < x.at; });
  edits_.insert(it, std::move(e));
}

head_edit::piece_list head_edit::pieces(const char* base, std::uint32_t start,
                                        std::uint32_t end) const {
  piece_list out;
  out.reserve(edits_.size() * 2 + 1);
  std::uint32_t pos = start;
  for (const auto& e : edits_) {
    if (e.at < pos || e.at > end) continue;  // overlapping or outside edits are ignored
    if (e.at > pos) out.emplace_back(base + pos, e.at - pos);
    if (!e.text.empty()) out.emplace_back(e.text);
    pos = std::min(end, e.at + e.remove);
  }
  if (end > pos) out.emplace_back(base + pos, end - pos);
  return out;
}

std::string head_edit::joined(const char* base, std::uint32_t start, std::uint32_t end) const {
  std::string s;
  for (auto p : pieces(base, start, end)) s.append(p);
  return s;
}

void add_header(head_edit& e, const parser& p, std::string_view name, std::string_view value) {
  std::string line;
  line.reserve(name.size() + value.size() + 4);
  line.append(name).append(": ").append(value).append("\r\n");
  e.insert(p.head().end - 2, std::move(line));
}

bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    auto t = list.substr(0, comma);
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (iequals(t, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

void remove_field(head_edit& e, const parser& p, const header_field& f) {
  // The line ends at the first CR after the value (trailing OWS included); its LF follows.
  auto line = p.text({f.name.off, p.head().end - f.name.off});
  const auto cr = line.find('\r', f.value.off + f.value.len - f.name.off);
  if (cr == std::string_view::npos) return;
  e.replace({f.name.off, static_cast<std::uint32_t>(cr + 2)}, std::string());
}

namespace {

template <class F>
void for_each_token(std::string_view list, F&& f) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    auto t = list.substr(0, comma);
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (!t.empty()) f(t);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

bool contains(std::span<const std::string_view> names, std::string_view n) {
  for (auto k : names) {
    if (iequals(k, n)) return true;
  }
  return false;
}

}  // namespace

void normalize_request(head_edit& e, const parser& p, std::span<const std::string_view> keep) {
  const auto& h = p.head();
  if (h.http_major == 1 && h.http_minor > 1 && h.version.len == 3) e.replace(h.version, "1.1");

  // Which fields Connection names, and which of its tokens the proxy keeps for its own hop.
  std::vector<std::string_view> named;
  bool close = false;
  bool keep_alive = false;
  bool conn_upgrade = false;
  for (const auto& f : h.headers) {
    if (!iequals(p.text(f.name), "connection")) continue;
    for_each_token(p.text(f.value), [&](std::string_view t) {
      if (iequals(t, "close")) {
        close = true;
      } else if (iequals(t, "keep-alive")) {
        keep_alive = true;
      } else if (iequals(t, "upgrade")) {
        conn_upgrade = true;
      } else {
        named.push_back(t);
      }
    });
  }
  const bool upgrading = h.upgrade_requested && conn_upgrade;
  bool te_trailers = false;
  std::string upgrade_value;  // the Upgrade list without h2c
  bool changed_upgrade = false;
  for (const auto& f : h.headers) {
    const auto name = p.text(f.name);
    if (iequals(name, "te")) {
      if (has_token(p.text(f.value), "trailers")) te_trailers = true;
    } else if (iequals(name, "upgrade") && upgrading) {
      for_each_token(p.text(f.value), [&](std::string_view t) {
        if (iequals(t, "h2c")) {
          changed_upgrade = true;
          return;
        }
        if (!upgrade_value.empty()) upgrade_value.append(", ");
        upgrade_value.append(t);
      });
    }
  }

  bool upgrade_written = false;
  bool te_written = false;
  std::vector<const header_field*> connection_lines;
  for (std::size_t i = 0; i < h.headers.size(); ++i) {
    const auto& f = h.headers[i];
    const auto name = p.text(f.name);
    if (static_cast<int>(i) == h.host_index && h.authority_from_target) {
      if (p.text(f.value) != p.text(h.authority)) {
        if (f.value.len == 0) {
          e.insert(f.value.off, std::string(p.text(h.authority)));
        } else {
          e.replace(f.value, std::string(p.text(h.authority)));
        }
      }
      continue;
    }
    if (contains(keep, name)) continue;
    if (iequals(name, "upgrade") && upgrading) {
      if (upgrade_written || upgrade_value.empty()) {
        remove_field(e, p, f);
      } else if (changed_upgrade || p.text(f.value) != upgrade_value) {
        // One Upgrade line carrying every protocol but h2c.
        e.replace(f.value, upgrade_value);
      }
      upgrade_written = true;
      continue;
    }
    if (iequals(name, "te") && te_trailers) {
      if (te_written || p.text(f.value) != "trailers") {
        if (te_written) {
          remove_field(e, p, f);
        } else {
          e.replace(f.value, "trailers");
        }
      }
      te_written = true;
      continue;
    }
    if (iequals(name, "connection")) {
      connection_lines.push_back(&f);
      continue;
    }
    const bool hop = iequals(name, "keep-alive") || iequals(name, "proxy-connection") ||
                     iequals(name, "te") || iequals(name, "upgrade") ||
                     iequals(name, "http2-settings") || contains(named, name);
    if (hop) remove_field(e, p, f);
  }
  if (h.host_index < 0 && h.authority_from_target) add_header(e, p, "Host", p.text(h.authority));

  std::string conn;
  const auto add = [&conn](std::string_view t) {
    if (!conn.empty()) conn.append(", ");
    conn.append(t);
  };
  if (close) add("close");
  if (keep_alive && !close) add("keep-alive");
  if (upgrading && !upgrade_value.empty()) add("upgrade");
  if (te_trailers) add("te");
  // The first Connection line carries the regenerated options (left as received when they
  // are the same); further Connection lines go.
  for (std::size_t i = 0; i < connection_lines.size(); ++i) {
    const auto& f = *connection_lines[i];
    if (i > 0 || conn.empty()) {
      remove_field(e, p, f);
      continue;
    }
    std::string received;
    for_each_token(p.text(f.value), [&received](std::string_view t) {
      if (!received.empty()) received.append(", ");
      received.append(t);
    });
    if (!iequals(received, conn)) {
      if (f.value.len == 0) {
        e.insert(f.value.off, conn);
      } else {
        e.replace(f.value, conn);
      }
    }
  }
  if (connection_lines.empty() && !conn.empty()) add_header(e, p, "Connection", conn);
}

void force_connection_close(head_edit& e, const parser& p) {
  bool seen = false;
  for (const auto& h : p.head().headers) {
    if (!iequals(p.text(h.name), "connection")) continue;
    seen = true;
    if (has_token(p.text(h.value), "close")) return;
    if (h.value.len == 0) {
      e.insert(h.value.off, "close");
    } else {
      e.replace(h.value, "close");
    }
  }
  if (!seen) add_header(e, p, "Connection", "close");
}

}  // namespace devspaces::proxy::http
