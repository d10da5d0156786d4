// libFuzzer target over the session's parse-and-edit path: the request and response parsers
// fed in two pieces (split chosen by the input), then the route-header insertion and the
// Connection: close edit on every completed head. Checks the invariants the session relies on.
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

void run(parser::kind k, const char* data, std::size_t size, std::size_t split, bool head_req,
         bool connect_req) {
  // The session's buffer: fixed, contiguous, the head parsed in place.
  std::vector<char> buf(data, data + size);
  parser p(k, 1024);
  p.begin_message(buf.data(), head_req, connect_req);
  std::size_t pos = 0;
  std::size_t body = 0;
  parse_event ev = parse_event::need_more;
  for (std::size_t end : {split, size}) {
    if (end <= pos) continue;
    auto r = p.feed(buf.data() + pos, end - pos);
    check(r.consumed <= end - pos);
    for (auto s : p.body()) {
      check(s.data() >= buf.data() + pos && s.data() + s.size() <= buf.data() + end);
      body += s.size();
    }
    pos += r.consumed;
    ev = r.event;
    if (ev != parse_event::need_more) break;
  }
  if (ev == parse_event::error) check(p.error() != parse_error::none);
  if (ev == parse_event::need_more) (void)p.finish();
  if (!p.head_complete() || p.error() != parse_error::none) return;

  const auto& h = p.head();
  check(h.start < h.end && h.end <= size);
  check(h.end - h.start <= 1024);
  const std::string_view head(buf.data() + h.start, h.end - h.start);
  check(head.size() >= 4 && head.substr(head.size() - 4) == "\r\n\r\n");
  // No bare CR/LF, NUL or obs-fold survives in an accepted head.
  for (std::size_t i = 0; i < head.size(); ++i) {
    const char c = head[i];
    check(c != '\0');
    if (c == '\r') check(i + 1 < head.size() && head[i + 1] == '\n');
    if (c == '\n') check(i > 0 && head[i - 1] == '\r');
    if (c == '\n' && i + 1 < head.size()) check(head[i + 1] != ' ' && head[i + 1] != '\t');
  }
  // An accepted message never carries both framings.
  bool cl = false, te = false;
  for (const auto& f : h.headers) {
    check(f.name.off >= h.start && f.name.off + f.name.len <= h.end);
    check(f.value.off >= h.start && f.value.off + f.value.len <= h.end);
    cl = cl || iequals(p.text(f.name), "content-length");
    te = te || iequals(p.text(f.name), "transfer-encoding");
  }
  check(!(cl && te));

  head_edit e;
  add_header(e, p, "azds-route-as", "fuzz");
  const std::string edited = e.joined(buf.data(), h.start, h.end);
  const std::string expected =
      std::string(head.substr(0, head.size() - 2)) + "azds-route-as: fuzz\r\n\r\n";
  check(edited == expected);
  if (k == parser::kind::response) {
    head_edit c;
    force_connection_close(c, p);
    const std::string closed = c.joined(buf.data(), h.start, h.end);
    check(closed.size() >= 4 && closed.substr(closed.size() - 4) == "\r\n\r\n");
  }
  (void)body;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t ctl = data[0];
  const char* bytes = reinterpret_cast<const char*>(data + 1);
  const std::size_t n = size - 1;
  const std::size_t split = n == 0 ? 0 : (ctl * 7u) % (n + 1);
  run(parser::kind::request, bytes, n, split, false, false);
  run(parser::kind::response, bytes, n, split, (ctl & 1) != 0, (ctl & 2) != 0);
  return 0;
}
