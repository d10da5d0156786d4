#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http/parser.hpp"

namespace devspaces::proxy::http {

/// Edits to one parsed head, applied without re-serialising it: the output is the original
/// bytes with a few ranges replaced or text inserted, as a list of pieces for a gather write.
class head_edit {
 public:
  /// Inserts `text` before byte offset `at` (relative to the buffer base).
  void insert(std::uint32_t at, std::string text);
  /// Replaces the bytes of `s` with `text`.
  void replace(byte_span s, std::string text);
  /// True when no edit was made.
  bool empty() const { return edits_.empty(); }

  /// The edited bytes of [start, end) of `base` as consecutive pieces (views into `base` and
  /// into this object; valid while both live and are unchanged).
  std::vector<std::string_view> pieces(const char* base, std::uint32_t start,
                                       std::uint32_t end) const;
  /// The edited bytes joined (tests, traces).
  std::string joined(const char* base, std::uint32_t start, std::uint32_t end) const;

 private:
  struct edit {
    std::uint32_t at;
    std::uint32_t remove;
    std::string text;
  };
  std::vector<edit> edits_;  // kept sorted by offset
};

/// Adds "<name>: <value>\r\n" right before the CRLF that ends the head of `p`.
void add_header(head_edit& e, const parser& p, std::string_view name, std::string_view value);

/// Makes a response head say `Connection: close`: an existing Connection header's value is
/// replaced when it does not already hold the close token, else a header line is added.
void force_connection_close(head_edit& e, const parser& p);

/// True when a comma list header value contains `token` (ASCII case-insensitive).
bool has_token(std::string_view list, std::string_view token);

}  // namespace devspaces::proxy::http
