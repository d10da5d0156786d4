#include "proxy/io/socket_util.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace devspaces::proxy::io {

namespace {

constexpr char two_digits[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

char* put_two(char* p, unsigned v) {
  std::memcpy(p, two_digits + 2 * v, 2);
  return p + 2;
}

// Writes v (< 100000) in decimal at p; returns the end. Two digits at a time from a table:
// the endpoints of a traced request are formatted on every request's path.
char* put_decimal(char* p, unsigned v) {
  if (v < 10) {
    *p = static_cast<char>('0' + v);
    return p + 1;
  }
  if (v < 100) return put_two(p, v);
  if (v < 1000) {
    *p++ = static_cast<char>('0' + v / 100);
    return put_two(p, v % 100);
  }
  if (v >= 10000) {
    *p++ = static_cast<char>('0' + v / 10000);
    v %= 10000;
  }
  p = put_two(p, v / 100);
  return put_two(p, v % 100);
}

}  // namespace

endpoint_chars format_endpoint(const boost::asio::ip::tcp::endpoint& ep) {
  endpoint_chars out;
  const auto* sa = ep.data();
  if (sa->sa_family == AF_INET) {
    // "255.255.255.255:65535" is 21 characters: no bounds to check.
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    const auto* b = reinterpret_cast<const unsigned char*>(&in->sin_addr.s_addr);
    char* p = out.data;
    for (int i = 0; i < 4; ++i) {
      if (i != 0) *p++ = '.';
      p = put_decimal(p, b[i]);
    }
    *p++ = ':';
    p = put_decimal(p, ntohs(in->sin_port));
    out.size = static_cast<std::size_t>(p - out.data);
    return out;
  }
  std::size_t n = 0;
  auto put = [&out, &n](char c) {
    if (n < endpoint_chars::capacity) out.data[n++] = c;
  };
  put('[');
  for (char c : ep.address().to_string()) put(c);  // with a %scope when link-local
  put(']');
  put(':');
  char port[8];
  const char* e = put_decimal(port, ep.port());
  for (const char* c = port; c != e; ++c) put(*c);
  out.size = n;
  return out;
}

void append_endpoint(std::string& out, const boost::asio::ip::tcp::endpoint& ep) {
  out.append(format_endpoint(ep).view());
}

std::string endpoint_text(const boost::asio::ip::tcp::endpoint& ep) {
  return std::string(format_endpoint(ep).view());
}

namespace asio = boost::asio;

void close_with_reset(asio::ip::tcp::socket& s) {
  if (!s.is_open()) return;
  ::linger l{1, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  boost::system::error_code ignored;
  s.close(ignored);
}

void close_quietly(asio::ip::tcp::socket& s) {
  boost::system::error_code ignored;
  s.close(ignored);
}

bool is_local_address(const asio::ip::address& addr) {
  if (addr.is_loopback()) return true;
  if (addr.is_unspecified()) return false;
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (addr.is_v4()) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(addr.to_v4().to_uint());
    std::memcpy(&ss, &in, sizeof in);
    len = sizeof in;
  } else {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    auto bytes = addr.to_v6().to_bytes();
    std::memcpy(in6.sin6_addr.s6_addr, bytes.data(), 16);
    in6.sin6_scope_id = addr.to_v6().scope_id();
    std::memcpy(&ss, &in6, sizeof in6);
    len = sizeof in6;
  }
  // Binding a datagram socket succeeds only for an address assigned to this host.
  int fd = ::socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool local = ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0;
  ::close(fd);
  return local;
}

bool is_reset_errno(int v) {
  return v == ECONNRESET || v == EPIPE || v == ECONNABORTED;
}

bool is_reset(const boost::system::error_code& ec) {
  return ec.category() == boost::system::system_category() && is_reset_errno(ec.value());
}

bool is_resource_exhaustion(const boost::system::error_code& ec) {
  if (ec.category() != boost::system::system_category()) return false;
  int v = ec.value();
  return v == EMFILE || v == ENFILE || v == ENOBUFS || v == ENOMEM;
}

}  // namespace devspaces::proxy::io
