#pragma once

#include <chrono>
#include <cstddef>
#include <string_view>

namespace devspaces::proxy {

/// What the first bytes of a client stream say about its protocol.
enum class sniff_verdict {
  http,       ///< an HTTP method token (uppercase letters) followed by a space
  h2,         ///< the HTTP/2 connection preface (h2c with prior knowledge, RFC 9113 §3.4)
  tcp,        ///< anything else: TLS, binary protocols
  need_more,  ///< only uppercase letters so far: wait for more bytes (within the window)
};

/// Longest method token the sniffer waits for; longer uppercase runs are raw TCP.
inline constexpr std::size_t max_method_length = 20;

/// The HTTP/2 client connection preface.
inline constexpr std::string_view h2_preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Classifies the bytes a client sent first. Pure; "PRI " not followed by the whole HTTP/2
/// preface is tcp.
sniff_verdict classify_first_bytes(std::string_view bytes);

/// How long the proxy waits for a client's first bytes before it also connects upstream, so a
/// server-first protocol is relayed as soon as the server speaks (well inside --sniff-timeout).
std::chrono::milliseconds speculative_connect_delay(std::chrono::milliseconds sniff_timeout);

}  // namespace devspaces::proxy
