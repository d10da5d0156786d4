#include "proxy/io/connect.hpp"
// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/config.hpp"
#include "proxy/io/connection_context.hpp"
#include "proxy/io/deadline.hpp"
#include "proxy/io/socket_util.hpp"

namespace devspaces::proxy::io {

namespace asio = boost::asio;
using asio::ip::tcp;
using token = asio::as_tuple_t<asio::use_awaitable_t<>>;

connect_failure classify_connect_error(const boost::system::error_code& ec) {
  if (ec == asio::error::connection_refused) return connect_failure::refused;
  if (ec == asio::error::timed_out) return connect_failure::timeout;
  if (ec == asio::error::network_unreachable || ec == asio::error::host_unreachable)
    return connect_failure::unreachable;
  return connect_failure::other;
}

asio::awaitable<connect_result> connect_upstream(tcp::endpoint endpoint,
                                                 std::chrono::milliseconds timeout,
                                                 std::optional<asio::ip::address> source) {
  co_await asio::this_coro::throw_if_cancelled(false);
  auto ex = co_await asio::this_coro::executor;
  connect_result result;
  tcp::socket sock(ex);
  boost::system::error_code ec;
  sock.open(endpoint.protocol(), ec);
  if (ec) {
    result.ec = ec;
    result.reason = connect_failure::other;
    co_return result;
  }
  if (source && source->is_v4() == endpoint.address().is_v4()) {
    // Let connect() pick the ephemeral port so the 4-tuple, not the source port, must be unique.
    int one = 1;
    ::setsockopt(sock.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    boost::system::error_code bind_ec;
    sock.bind(tcp::endpoint(*source, 0), bind_ec);
    if (bind_ec) {
      // The passthrough address is not available: reopen with the default source.
      sock.close(ec);
      sock.open(endpoint.protocol(), ec);
      if (ec) {
        result.ec = ec;
        co_return result;
      }
    }
  }
  sock.set_option(tcp::no_delay(true), ec);
  deadline limit(ex, cancel_on_expire(sock));
  limit.arm_after(timeout);
  auto [cec] = co_await sock.async_connect(endpoint, token{});
  co_await limit.close();
  if (!cec) {
    sock.set_option(tcp::no_delay(true), ec);
    result.socket.emplace(std::move(sock));
    co_return result;
  }
  if (limit.expired()) {
    result.ec = asio::error::timed_out;
    result.reason = connect_failure::timeout;
    co_return result;
  }
  result.ec = cec;
  result.cancelled = cec == asio::error::operation_aborted;
  result.reason = classify_connect_error(cec);
  co_return result;
}

std::optional<asio::ip::address> passthrough_source(const connection_context& ctx,
                                                    const tcp::endpoint& to) {
  if (ctx.dir != direction::inbound) return std::nullopt;
  if (!is_local_address(to.address())) return std::nullopt;
  if (to.address().is_v4()) return asio::ip::make_address_v4("127.0.0.6");
  return asio::ip::make_address_v6("::6");
}

asio::awaitable<connect_result> connect_for(const connection_context& ctx, tcp::endpoint endpoint) {
  co_await asio::this_coro::throw_if_cancelled(false);
  auto timeout = ctx.services && ctx.services->cfg ? ctx.services->cfg->connect_timeout
                                                   : std::chrono::milliseconds(5000);
  auto result = co_await connect_upstream(endpoint, timeout, passthrough_source(ctx, endpoint));
  if (!result.socket && !result.cancelled && ctx.services && ctx.services->metrics)
    ctx.services->metrics->connect_failures(ctx.dir, result.reason).Increment();
  co_return result;
}

}  // namespace devspaces::proxy::io
