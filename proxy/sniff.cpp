#include "proxy/sniff.hpp"

#include <algorithm>

namespace devspaces::proxy {

sniff_verdict classify_first_bytes(std::string_view bytes) {
  std::size_t i = 0;
  while (i < bytes.size() && i <= max_method_length && bytes[i] >= 'A' && bytes[i] <= 'Z') ++i;
  if (i > max_method_length) return sniff_verdict::tcp;
  if (i == bytes.size()) return sniff_verdict::need_more;
  if (i == 0 || bytes[i] != ' ') return sniff_verdict::tcp;
  if (bytes.substr(0, i) == "PRI")
    return sniff_verdict::tcp;  // "PRI * HTTP/2.0": h2 prior knowledge
  return sniff_verdict::http;
}

std::chrono::milliseconds speculative_connect_delay(std::chrono::milliseconds sniff_timeout) {
  // Client-first protocols send within microseconds of connecting; waiting this long first
  // avoids opening an upstream connection the HTTP router might not use.
  return std::min(sniff_timeout, std::chrono::milliseconds(10));
}

}  // namespace devspaces::proxy
