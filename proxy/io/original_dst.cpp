#include "proxy/io/original_dst.hpp"

#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>

#include <cerrno>
#include <cstring>

namespace devspaces::proxy::io {

namespace asio = boost::asio;

std::optional<asio::ip::tcp::endpoint> decode_sockaddr(const sockaddr_storage& sa, socklen_t len) {
  if (sa.ss_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in in{};
    std::memcpy(&in, &sa, sizeof in);
    asio::ip::address_v4 addr(ntohl(in.sin_addr.s_addr));
    return asio::ip::tcp::endpoint(addr, ntohs(in.sin_port));
  }
  if (sa.ss_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, &sa, sizeof in6);
    asio::ip::address_v6::bytes_type bytes;
    std::memcpy(bytes.data(), in6.sin6_addr.s6_addr, 16);
    asio::ip::address_v6 addr(bytes, in6.sin6_scope_id);
    if (addr.is_v4_mapped())
      return asio::ip::tcp::endpoint(asio::ip::make_address_v4(asio::ip::v4_mapped, addr),
                                     ntohs(in6.sin6_port));
    return asio::ip::tcp::endpoint(addr, ntohs(in6.sin6_port));
  }
  return std::nullopt;
}

std::optional<asio::ip::tcp::endpoint> original_dst(int fd, std::error_code& ec) {
  sockaddr_storage local{};
  socklen_t local_len = sizeof local;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) {
    ec.assign(errno, std::generic_category());
    return std::nullopt;
  }
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  int rc = local.ss_family == AF_INET6 ? ::getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &sa, &len)
                                       : ::getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &sa, &len);
  if (rc != 0) {
    ec.assign(errno, std::generic_category());
    return std::nullopt;
  }
  ec.clear();
  auto ep = decode_sockaddr(sa, len);
  if (!ep) ec = std::make_error_code(std::errc::address_family_not_supported);
  return ep;
}

}  // namespace devspaces::proxy::io
