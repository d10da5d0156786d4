#pragma once

#include <optional>
#include <system_error>

#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>

namespace devspaces::proxy::io {

/// Decodes a sockaddr returned by SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST (pure, unit-tested).
std::optional<boost::asio::ip::tcp::endpoint> decode_sockaddr(const sockaddr_storage& sa,
                                                              socklen_t len);

/// The destination the client originally connected to, before the kernel's REDIRECT.
/// Uses the option of the socket's family; fails with the errno when there is no NAT entry.
std::optional<boost::asio::ip::tcp::endpoint> original_dst(int fd, std::error_code& ec);

}  // namespace devspaces::proxy::io
