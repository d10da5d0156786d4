// libFuzzer target over the session's response path: the response parser (for a GET, a HEAD
// or a CONNECT request, chosen by the input) fed in two pieces, then the Connection: close
// edit the session makes when it ends a connection. Checks the invariants the session relies
// on: spans inside the buffer, a clean head, one framing, and an edited head that still parses
// with the same status and framing.
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

void run(const char* data, std::size_t size, std::size_t split, bool head_req, bool connect_req,
         bool eof) {
  std::vector<char> buf(data, data + size);
  parser p(parser::kind::response, 1024);
  p.begin_message(buf.data(), head_req, connect_req);
  std::size_t pos = 0;
  parse_event ev = parse_event::need_more;
  for (std::size_t end : {split, size}) {
    if (end <= pos) continue;
    auto r = p.feed(buf.data() + pos, end - pos);
    check(r.consumed <= end - pos);
    for (auto s : p.body())
      check(s.data() >= buf.data() + pos && s.data() + s.size() <= buf.data() + end);
    pos += r.consumed;
    ev = r.event;
    if (ev != parse_event::need_more) break;
  }
  if (ev == parse_event::error) check(p.error() != parse_error::none);
  if (ev == parse_event::need_more && eof) {
    ev = p.finish();
    if (ev == parse_event::error) check(p.error() != parse_error::none);
  }
  if (!p.head_complete() || p.error() != parse_error::none) return;

  const auto& h = p.head();
  check(h.start < h.end && h.end <= size && h.end - h.start <= 1024);
  check(h.status >= 100 && h.status <= 599);
  const std::string_view head(buf.data() + h.start, h.end - h.start);
  check(head.size() >= 4 && head.substr(head.size() - 4) == "\r\n\r\n");
  for (std::size_t i = 0; i < head.size(); ++i) {
    const char c = head[i];
    check(c != '\0');
    if (c == '\r') check(i + 1 < head.size() && head[i + 1] == '\n');
    if (c == '\n') check(i > 0 && head[i - 1] == '\r');
  }
  bool cl = false, te = false;
  for (const auto& f : h.headers) {
    check(f.name.off >= h.start && f.name.off + f.name.len <= h.end);
    check(f.value.off >= h.start && f.value.off + f.value.len <= h.end);
    cl = cl || iequals(p.text(f.name), "content-length");
    te = te || iequals(p.text(f.name), "transfer-encoding");
  }
  check(!(cl && te));

  head_edit c;
  force_connection_close(c, p);
  std::string closed = c.joined(buf.data(), h.start, h.end);
  std::vector<char> again(closed.begin(), closed.end());
  parser q(parser::kind::response, 4096);
  q.begin_message(again.data(), head_req, connect_req);
  auto r2 = q.feed(again.data(), again.size());
  check(r2.event != parse_event::error);
  check(q.head_complete());
  check(q.head().status == h.status && q.head().chunked == h.chunked &&
        q.head().content_length == h.content_length);
  bool close = false;
  for (const auto& f : q.head().headers) {
    if (iequals(q.text(f.name), "connection") && has_token(q.text(f.value), "close")) close = true;
  }
  check(close);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t ctl = data[0];
  const char* bytes = reinterpret_cast<const char*>(data + 1);
  const std::size_t n = size - 1;
  const std::size_t split = n == 0 ? 0 : (ctl * 7u) % (n + 1);
  run(bytes, n, split, (ctl & 1) != 0, (ctl & 2) != 0, (ctl & 4) != 0);
  return 0;
}
