#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace devspaces::test {

/// Two connected loopback TCP sockets: `near` for the code under test, `far` for the test to
/// play the peer with.
struct loopback_pair {
  explicit loopback_pair(boost::asio::io_context& io) : near(io), far(io) {
    boost::asio::ip::tcp::acceptor acc(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    near.connect(acc.local_endpoint());
    far = acc.accept();
  }
  boost::asio::ip::tcp::socket near;
  boost::asio::ip::tcp::socket far;
};

}  // namespace devspaces::test
