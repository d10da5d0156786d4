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

std::vector<std::string_view> head_edit::pieces(const char* base, std::uint32_t start,
                                                std::uint32_t end) const {
  std::vector<std::string_view> out;
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
