#include "proxy/connection.hpp"
// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <algorithm>
#include <memory>

#include <boost/asio/this_coro.hpp>

#include "proxy/config.hpp"
#include "proxy/h2/session.hpp"
#include "proxy/http/session.hpp"
#include "proxy/io/connect.hpp"
#include "proxy/io/relay.hpp"
#include "proxy/io/socket_util.hpp"
#include "proxy/logging.hpp"
#include "proxy/sniff.hpp"

namespace devspaces::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static auto l = logger("conn");
  return l;
}

/// A connection between accept and its protocol handler, in one allocation freed before the
/// connection settles into HTTP or TCP: no coroutine frame keeps moved-from copies of the
/// context and sockets for the connection's life.
struct pending_connection {
  io::connection_context ctx;
  tcp::socket client;
  std::optional<tcp::socket> upstream;
};

/// The protocol handler for a sniff verdict.
protocol protocol_for(sniff_verdict v) {
  switch (v) {
    case sniff_verdict::http:
      return protocol::http;
    case sniff_verdict::h2:
      return protocol::h2;
    default:
      return protocol::tcp;
  }
}

/// Runs the sniff window and keeps what it learned in `c`; false when the connection ends here.
/// Its own frame (the sniff result) is gone once the sniff ends.
asio::awaitable<bool> sniff(pending_connection& c) {
  co_await asio::this_coro::throw_if_cancelled(false);
  auto s = co_await sniff_connection(c.ctx, c.client);
  c.ctx.proto = protocol_for(s.verdict);
  c.ctx.initial_bytes = std::move(s.bytes);
  c.upstream = std::move(s.upstream);
  co_return s.proceed;
}

asio::awaitable<void> sniff_then_dispatch(std::unique_ptr<pending_connection> c) {
  co_await asio::this_coro::throw_if_cancelled(false);
  const bool go = co_await sniff(*c);
  if (!go) co_return;
  auto next = dispatch(std::move(c->ctx), std::move(c->client), std::move(c->upstream));
  c.reset();
  co_await std::move(next);
}

/// Connects c.upstream to the original destination; false (logged) when that fails.
asio::awaitable<bool> connect_original(pending_connection& c) {
  co_await asio::this_coro::throw_if_cancelled(false);
  auto r = co_await io::connect_for(c.ctx, c.ctx.original_dst);
  if (!r.socket) {
    log()->debug("[C{}] upstream connect failed dst={} error={}", c.ctx.id,
                 io::endpoint_text(c.ctx.original_dst), r.ec.message());
    co_return false;
  }
  c.upstream = std::move(r.socket);
  co_return true;
}

io::relay_options relay_options_for(io::connection_context& ctx) {
  io::relay_options opts;
  opts.idle_timeout = ctx.services->cfg->idle_timeout;
  opts.metrics = ctx.services->metrics;
  opts.dir = ctx.dir;
  opts.id = ctx.id;
  opts.initial_client_bytes = std::move(ctx.initial_bytes);
  opts.splice_after = ctx.services->splice_after;
  return opts;
}

asio::awaitable<void> connect_and_relay(std::unique_ptr<pending_connection> c) {
  co_await asio::this_coro::throw_if_cancelled(false);
  if (!c->upstream) {
    const bool connected = co_await connect_original(*c);
    if (!connected) co_return;  // closes the client
  }
  const auto id = c->ctx.id;
  const auto dst = c->ctx.original_dst;
  // The options are a temporary of this statement, not a frame variable.
  auto relay = io::relay(std::move(c->client), std::move(*c->upstream), relay_options_for(c->ctx));
  c.reset();
  const auto r = co_await std::move(relay);
  if (log()->should_log(spdlog::level::debug)) {
    log()->debug("[C{}] relay closed dst={} end={} rx={} tx={}", id, io::endpoint_text(dst),
                 io::to_string(r.end), r.rx, r.tx);
  }
}

}  // namespace

// serve_connection, dispatch and serve_tcp are plain functions returning the awaitable of the
// coroutine that does the work, so the chain of frames an idle connection holds stays short.

asio::awaitable<void> serve_connection(io::connection_context ctx, tcp::socket client) {
  const auto& opaque = ctx.services->cfg->opaque_ports;
  if (std::find(opaque.begin(), opaque.end(), ctx.original_dst.port()) != opaque.end()) {
    ctx.proto = protocol::tcp;
    return dispatch(std::move(ctx), std::move(client), std::nullopt);
  }
  return sniff_then_dispatch(std::make_unique<pending_connection>(
      pending_connection{std::move(ctx), std::move(client), std::nullopt}));
}

asio::awaitable<void> dispatch(io::connection_context ctx, tcp::socket client,
                               std::optional<tcp::socket> upstream) {
  ctx.services->metrics->connections(ctx.dir, ctx.proto).Increment();
  if (ctx.proto == protocol::http) {
    return http::run_http_session(std::move(client), std::move(ctx), std::move(upstream));
  }
  if (ctx.proto == protocol::h2) {
    return h2::run_h2_session(std::move(client), std::move(ctx), std::move(upstream));
  }
  return serve_tcp(std::move(ctx), std::move(client), std::move(upstream));
}

asio::awaitable<void> serve_tcp(io::connection_context ctx, tcp::socket client,
                                std::optional<tcp::socket> upstream) {
  return connect_and_relay(std::make_unique<pending_connection>(
      pending_connection{std::move(ctx), std::move(client), std::move(upstream)}));
}

}  // namespace devspaces::proxy
