#include "proxy/io/upstream_pool.hpp"

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>

namespace devspaces::proxy::io {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

/// A connected pair on loopback: what the pool holds (client) and the server side.
struct pair {
  tcp::socket client;
  tcp::socket server;
};

pair connect_pair(asio::io_context& io, tcp::acceptor& acc) {
  tcp::socket c(io);
  c.connect(acc.local_endpoint());
  auto s = acc.accept();
  return {std::move(c), std::move(s)};
}

struct pool_test : ::testing::Test {
  asio::io_context io;
  tcp::acceptor acc{io, {asio::ip::make_address("127.0.0.1"), 0}};
  tcp::endpoint ep = acc.local_endpoint();
};

TEST_F(pool_test, take_returns_what_was_put_most_recent_first) {
  upstream_pool pool(io.get_executor());
  auto a = connect_pair(io, acc);
  auto b = connect_pair(io, acc);
  auto b_port = b.client.local_endpoint().port();
  pool.put(ep, std::move(a.client));
  pool.put(ep, std::move(b.client));
  EXPECT_EQ(pool.size(), 2u);
  auto got = pool.take(ep);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->local_endpoint().port(), b_port);
  EXPECT_TRUE(pool.take(ep));
  EXPECT_FALSE(pool.take(ep));
  EXPECT_FALSE(pool.take(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 1)));
}

TEST_F(pool_test, dead_and_dirty_sockets_are_discarded) {
  upstream_pool pool(io.get_executor());
  auto closed = connect_pair(io, acc);
  auto dirty = connect_pair(io, acc);
  pool.put(ep, std::move(closed.client));
  pool.put(ep, std::move(dirty.client));
  closed.server.close();                               // the upstream closed the idle connection
  asio::write(dirty.server, asio::buffer("junk", 4));  // bytes nobody asked for
  // Loopback delivers the FIN and the bytes before close()/write() return.
  EXPECT_FALSE(pool.take(ep));
  EXPECT_EQ(pool.size(), 0u);
}

TEST_F(pool_test, bounds_and_idle_timeout) {
  upstream_pool pool(io.get_executor(), 3, 2, 50ms);
  std::vector<pair> keep;
  for (int i = 0; i < 3; ++i) {
    keep.push_back(connect_pair(io, acc));
    pool.put(ep, std::move(keep.back().client));
  }
  EXPECT_EQ(pool.size(), 2u);  // per-endpoint bound
  auto other = tcp::endpoint(asio::ip::make_address("127.0.0.1"), 2);
  for (int i = 0; i < 2; ++i) {
    keep.push_back(connect_pair(io, acc));
    pool.put(other, std::move(keep.back().client));
  }
  EXPECT_EQ(pool.size(), 3u);  // total bound
  // After the idle timeout the sweep timer closes them all.
  io.run_for(300ms);
  EXPECT_EQ(pool.size(), 0u);
  EXPECT_FALSE(pool.take(ep));
}

TEST(kept_socket_reusable, trusts_a_recent_exchange_and_peeks_after) {
  asio::io_context io;
  tcp::acceptor acc{io, {asio::ip::make_address("127.0.0.1"), 0}};
  tcp::socket c(io);
  c.connect(acc.local_endpoint());
  auto s = acc.accept();
  const auto now = std::chrono::steady_clock::now();
  EXPECT_TRUE(kept_socket_reusable(c, now, now));
  s.close();  // the upstream closes it
  EXPECT_TRUE(kept_socket_reusable(c, now - 10ms, now)) << "within the trust window: no recv";
  EXPECT_FALSE(kept_socket_reusable(c, now - 2s, now)) << "after it: the peek sees the FIN";
  EXPECT_FALSE(kept_socket_reusable(c, now - 2s, now, 0ms));
  c.close();
  EXPECT_FALSE(kept_socket_reusable(c, now, now));
}

}  // namespace
}  // namespace devspaces::proxy::io
