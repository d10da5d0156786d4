#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/container/small_vector.hpp>

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

  /// Pieces of an edited head; a head with up to 7 edits needs no allocation.
  using piece_list = boost::container::small_vector<std::string_view, 15>;
  /// The edited bytes of [start, end) of `base` as consecutive pieces (views into `base` and
  /// into this object; valid while both live and are unchanged).
  piece_list pieces(const char* base, std::uint32_t start, std::uint32_t end) const;
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

/// Rewrites a parsed request head into what a proxy forwards (RFC 9110 §7.6, RFC 9112 §3.2):
///  - HTTP/1.x with a minor version above 1 goes out as HTTP/1.1;
///  - a target that carries an authority (absolute-form, CONNECT) wins over Host: Host is
///    replaced by (or, absent, set to) that authority, so the origin and the router read one;
///  - hop-by-hop fields are removed: Connection and every field it names, Keep-Alive,
///    Proxy-Connection, HTTP2-Settings, TE (a `trailers` offer is kept as "TE: trailers"),
///    and Upgrade unless the request upgrades; the h2c offer is always removed, so the
///    exchange stays HTTP/1.1. Connection is regenerated with only the close/keep-alive
///    tokens received, plus "upgrade" and "te" when those fields are kept.
/// Fields in `keep` (the route header) are never removed, even when Connection names them.
void normalize_request(head_edit& e, const parser& p, std::span<const std::string_view> keep = {});

/// Removes one field line (with its CRLF) from the head of `p`.
void remove_field(head_edit& e, const parser& p, const header_field& f);

/// True when a comma list header value contains `token` (ASCII case-insensitive).
bool has_token(std::string_view list, std::string_view token);

}  // namespace devspaces::proxy::http
