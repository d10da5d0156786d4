#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace devspaces::proxy {

namespace io {
struct connection_context;
}

/// What the first bytes of a client stream say about its protocol.
enum class sniff_verdict {
  http,       ///< optional empty lines, then a token (any tchar, any case) and SP or HTAB,
              ///< or a first line ending in an HTTP version whose method holds a separator
  h2,         ///< the HTTP/2 connection preface (h2c with prior knowledge)
  tcp,        ///< anything else: TLS, binary protocols
  need_more,  ///< a prefix of one of the above: wait for more bytes
};

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
inline constexpr std::string_view h2_preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How many bytes the classifier looks at: a stream still undecided after this many (a very
/// long token, or a very long run of empty lines) is HTTP, so the parser rejects it instead of
/// an origin reading it unparsed.
inline constexpr std::size_t sniff_limit = 4096;

/// Classifies the bytes a client sent first. Pure. Anything an HTTP/1 server could read as the
/// start of a request line is `http`, so nothing that might be taken for a request bypasses
/// the parser; the HTTP/2 preface is `h2`.
sniff_verdict classify_first_bytes(std::string_view bytes);

/// How long the proxy waits for a client's first bytes before it also connects upstream, so a
/// server-first protocol is relayed as soon as the server speaks (well inside --sniff-timeout).
std::chrono::milliseconds speculative_connect_delay(std::chrono::milliseconds sniff_timeout);

/// What the sniff window learned about one connection, to be handed to its protocol handler
/// (the client's bytes are replayed from `bytes`, like a prefixed stream).
struct sniff_result {
  /// http, h2 or tcp; tcp also when the upstream spoke first or the client ended early.
  sniff_verdict verdict = sniff_verdict::tcp;
  /// Bytes already read from the client (counted in bytes_total{flow="rx"}).
  std::string bytes;
  /// A connection to the original destination opened while waiting, else empty.
  std::optional<boost::asio::ip::tcp::socket> upstream;
  /// False when the connection ends here: the client failed, or a raw TCP connection whose
  /// upstream could not be reached (the client is then closed).
  bool proceed = true;
};

/// Runs the sniff window of one accepted client connection:
/// - bytes the client sent at once are classified at once;
/// - a client silent for speculative_connect_delay() makes the proxy connect to the original
///   destination meanwhile; when that upstream speaks first the verdict is tcp (server-first
///   protocols see no delay);
/// - while the upstream stays silent, the client's first bytes are classified whenever they
///   come (also long after --sniff-timeout): a slow HTTP client is still parsed and routed;
/// - when the upstream connect fails or the upstream closes without a byte, the client gets
///   until --sniff-timeout to show it is HTTP (routing may send it elsewhere), else it closes.
/// Counts the bytes read in bytes_total{flow="rx"}. Never throws.
boost::asio::awaitable<sniff_result> sniff_connection(const io::connection_context& ctx,
                                                      boost::asio::ip::tcp::socket& client);

}  // namespace devspaces::proxy
