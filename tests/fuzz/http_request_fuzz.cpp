// libFuzzer target over the session's request path: the request parser fed in two pieces
// (split chosen by the input), then the edits the session makes to every accepted head
// (normalize_request and the route-header insertion). The edited head must parse again, frame
// the body the same way, carry exactly one Host equal to the routed authority, and hold no
// hop-by-hop field and no h2c offer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "proxy/http/head_edit.hpp"
#include "proxy/http/parser.hpp"

using namespace devspaces::proxy::http;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

struct parsed {
  parse_event ev = parse_event::need_more;
  std::size_t consumed = 0;
};

parsed feed_split(parser& p, std::vector<char>& buf, std::size_t split) {
  parsed out;
  std::size_t pos = 0;
  for (std::size_t end : {split, buf.size()}) {
    if (end <= pos) continue;
    auto r = p.feed(buf.data() + pos, end - pos);
    check(r.consumed <= end - pos);
    for (auto s : p.body())
      check(s.data() >= buf.data() + pos && s.data() + s.size() <= buf.data() + end);
    pos += r.consumed;
    out.ev = r.event;
    if (out.ev != parse_event::need_more) break;
  }
  out.consumed = pos;
  return out;
}

void run(const char* data, std::size_t size, std::size_t split) {
  std::vector<char> buf(data, data + size);
  parser p(parser::kind::request, 1024);
  p.begin_message(buf.data());
  const auto r = feed_split(p, buf, split);
  if (r.ev == parse_event::error) check(p.error() != parse_error::none);
  if (r.ev == parse_event::error) check(status_for(p.error()) >= 400);
  if (!p.head_complete() || p.error() != parse_error::none) return;

  const auto& h = p.head();
  check(h.start < h.end && h.end <= size && h.end - h.start <= 1024);
  const std::string_view head(buf.data() + h.start, h.end - h.start);
  check(head.size() >= 4 && head.substr(head.size() - 4) == "\r\n\r\n");
  for (std::size_t i = 0; i < head.size(); ++i) {
    const char c = head[i];
    check(c != '\0');
    if (c == '\r') check(i + 1 < head.size() && head[i + 1] == '\n');
    if (c == '\n') check(i > 0 && head[i - 1] == '\r');
    if (c == '\n' && i + 1 < head.size()) check(head[i + 1] != ' ' && head[i + 1] != '\t');
  }
  check(h.http_major == 1);
  int hosts = 0;
  for (const auto& f : h.headers) {
    check(f.name.len > 0);
    check(f.name.off >= h.start && f.name.off + f.name.len <= h.end);
    check(f.value.off >= h.start && f.value.off + f.value.len <= h.end);
    if (iequals(p.text(f.name), "host")) ++hosts;
  }
  check(hosts <= 1);
  if (h.http_minor >= 1) check(hosts == 1);

  const std::string authority(p.text(h.authority));
  const bool chunked = h.chunked;
  const bool has_cl = h.has_content_length;
  const auto cl = h.content_length;
  const std::string method(p.text(h.method));
  const std::string target(p.text(h.target));

  head_edit e;
  const std::string_view keep[] = {"azds-route-as"};
  normalize_request(e, p, keep);
  add_header(e, p, "azds-route-as", "fuzz");
  std::string edited = e.joined(buf.data(), h.start, h.end);

  // The edited head is a valid request of its own with the same meaning for framing/routing.
  std::vector<char> again(edited.begin(), edited.end());
  parser q(parser::kind::request, 4096);
  q.begin_message(again.data());
  auto r2 = q.feed(again.data(), again.size());
  check(r2.event != parse_event::error);
  check(q.head_complete());
  const auto& g = q.head();
  check(g.end == again.size());
  check(q.text(g.method) == method && q.text(g.target) == target);
  check(g.http_major == 1 && g.http_minor <= 1);
  check(g.chunked == chunked && g.has_content_length == has_cl && g.content_length == cl);
  check(q.text(g.authority) == authority);
  std::vector<std::string> named;
  for (const auto& f : g.headers) {
    const auto n = q.text(f.name);
    const auto v = q.text(f.value);
    check(!iequals(n, "keep-alive") && !iequals(n, "proxy-connection") &&
          !iequals(n, "http2-settings"));
    if (iequals(n, "upgrade")) check(!has_token(v, "h2c"));
    if (iequals(n, "te")) check(v == "trailers");
    if (iequals(n, "host") && !authority.empty()) check(v == authority);
    if (iequals(n, "connection")) {
      std::string_view list = v;
      while (!list.empty()) {
        const auto comma = list.find(',');
        auto t = list.substr(0, comma);
        while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
        while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
        // Empty list elements are allowed (RFC 9110 §5.6.1) and mean nothing.
        check(t.empty() || iequals(t, "close") || iequals(t, "keep-alive") ||
              iequals(t, "upgrade") || iequals(t, "te"));
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t ctl = data[0];
  const char* bytes = reinterpret_cast<const char*>(data + 1);
  const std::size_t n = size - 1;
  const std::size_t split = n == 0 ? 0 : (ctl * 7u) % (n + 1);
  run(bytes, n, split);
  return 0;
}
