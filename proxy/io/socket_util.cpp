#include "proxy/io/socket_util.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace devspaces::proxy::io {

void append_endpoint(std::string& out, const boost::asio::ip::tcp::endpoint& ep) {
  const auto addr = ep.address();
  auto append_uint = [&out](unsigned v) {
    char buf[8];
    char* p = buf + sizeof buf;
    do {
      *--p = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    out.append(p, static_cast<std::size_t>(buf + sizeof buf - p));
  };
  if (addr.is_v4()) {
    const auto b = addr.to_v4().to_bytes();
    for (std::size_t i = 0; i < b.size(); ++i) {
      if (i != 0) out.push_back('.');
      append_uint(b[i]);
    }
  } else {
    out.push_back('[');
    out.append(addr.to_string());
    out.push_back(']');
  }
  out.push_back(':');
  append_uint(ep.port());
}

std::string endpoint_text(const boost::asio::ip::tcp::endpoint& ep) {
  std::string out;
  out.reserve(24);
  append_endpoint(out, ep);
  return out;
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
