#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

namespace devspaces::proxy::io {

/// An endpoint's text in a fixed buffer: "ip:port" (IPv4) or "[ip]:port" (IPv6, with a %scope
/// when link-local; cut at `capacity`, which no real address reaches).
struct endpoint_chars {
  static constexpr std::size_t capacity = 80;
  char data[capacity];
  std::size_t size = 0;
  /// The text.
  std::string_view view() const { return {data, size}; }
};

/// Formats without allocating (IPv4 by hand: every traced request carries three endpoints, and
/// inet_ntop formats through sprintf).
endpoint_chars format_endpoint(const boost::asio::ip::tcp::endpoint& ep);

/// Appends format_endpoint(ep) to `out`.
void append_endpoint(std::string& out, const boost::asio::ip::tcp::endpoint& ep);
/// "ip:port" / "[ip]:port" (append_endpoint into a new string).
std::string endpoint_text(const boost::asio::ip::tcp::endpoint& ep);

/// Closes a socket so that the peer sees a TCP RST instead of a FIN (SO_LINGER with timeout 0).
void close_with_reset(boost::asio::ip::tcp::socket& s);

/// Closes a socket, ignoring errors (the data path never throws).
void close_quietly(boost::asio::ip::tcp::socket& s);

/// True when `addr` is one of this host's addresses (loopback, or bindable without IP_FREEBIND).
bool is_local_address(const boost::asio::ip::address& addr);

/// True for errors that mean the peer reset or vanished (ECONNRESET, EPIPE, ECONNABORTED).
bool is_reset(const boost::system::error_code& ec);
/// Same for a raw errno value.
bool is_reset_errno(int err);

/// True for accept errors caused by resource exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM).
bool is_resource_exhaustion(const boost::system::error_code& ec);

}  // namespace devspaces::proxy::io
