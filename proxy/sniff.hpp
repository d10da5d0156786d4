#pragma once

#include <chrono>
#include <cstddef>
#include <string_view>

namespace devspaces::proxy {

/// What the first bytes of a client stream say about its protocol.
enum class sniff_verdict {
  http,       ///< an HTTP method token (uppercase letters) followed by a space
  tcp,        ///< anything else: TLS, the HTTP/2 preface, binary protocols
  need_more,  ///< only uppercase letters so far: wait for more bytes (within the window)
};

/// Longest method token the sniffer waits for; longer uppercase runs are raw TCP.
inline constexpr std::size_t max_method_length = 20;

/// Classifies the bytes a client sent first. Pure; "PRI " (the HTTP/2 preface) is tcp.
sniff_verdict classify_first_bytes(std::string_view bytes);

/// How long the proxy waits for a client's first bytes before it also connects upstream, so a
/// server-first protocol is relayed as soon as the server speaks (well inside --sniff-timeout).
std::chrono::milliseconds speculative_connect_delay(std::chrono::milliseconds sniff_timeout);

}  // namespace devspaces::proxy
