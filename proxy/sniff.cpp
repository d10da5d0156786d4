#include "proxy/sniff.hpp"

#include <algorithm>

namespace devspaces::proxy {

sniff_verdict classify_first_bytes(std::string_view bytes) {
  if (!bytes.empty() && bytes.size() < h2_preface.size() && h2_preface.starts_with(bytes)) {
    return sniff_verdict::need_more;
  }
  if (bytes.starts_with(h2_preface)) return sniff_verdict::h2;
  std::size_t i = 0;
  while (i < bytes.size() && i <= max_method_length && bytes[i] >= 'A' && bytes[i] <= 'Z') ++i;
  if (i > max_method_length) return sniff_verdict::tcp;
  if (i == bytes.size()) return sniff_verdict::need_more;
  if (i == 0 || bytes[i] != ' ') return sniff_verdict::tcp;
  if (bytes.substr(0, i) == "PRI") return sniff_verdict::tcp;  // a broken HTTP/2 preface
  return sniff_verdict::http;
}

std::chrono::milliseconds speculative_connect_delay(std::chrono::milliseconds sniff_timeout) {
  // Client-first protocols send within microseconds of connecting; waiting this long first
  // avoids opening an upstream connection the HTTP router might not use.
  return std::min(sniff_timeout, std::chrono::milliseconds(10));
}

}  // namespace devspaces::proxy
