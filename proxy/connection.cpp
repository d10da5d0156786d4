#include "proxy/connection.hpp"
// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

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
using clock = std::chrono::steady_clock;
using token = asio::as_tuple_t<asio::use_awaitable_t<>>;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr std::size_t sniff_read_size = 4096;

const std::shared_ptr<spdlog::logger>& log() {
  static auto l = logger("conn");
  return l;
}

enum class wait_outcome { readable, timeout, cancelled, error };

/// Waits until `s` is readable or `deadline` passes.
asio::awaitable<wait_outcome> wait_readable(tcp::socket& s, clock::time_point deadline) {
  co_await asio::this_coro::throw_if_cancelled(false);
  if (clock::now() >= deadline) co_return wait_outcome::timeout;
  io::socket_deadline d(s, deadline);
  auto [ec] = co_await s.async_wait(tcp::socket::wait_read, token{});
  co_await d.finish();
  if (!ec) co_return wait_outcome::readable;
  if (d.expired()) co_return wait_outcome::timeout;
  if (ec == asio::error::operation_aborted) co_return wait_outcome::cancelled;
  co_return wait_outcome::error;
}

/// True once the parallel group running this coroutine asked it to stop, even when the request
/// came between two operations and so cancelled none.
bool cancelled(const asio::cancellation_state& cs) {
  return cs.cancelled() != asio::cancellation_type::none;
}

/// What the sniffer learned from the client.
struct sniff_state {
  std::string bytes;
  sniff_verdict verdict = sniff_verdict::need_more;
  bool client_eof = false;
  bool client_error = false;
  bool connect_failed = false;           ///< the early upstream connect failed (not cancelled)
  boost::system::error_code connect_ec;  ///< why, when connect_failed
};

/// Takes what the client has sent so far without blocking (the buffer lives on the thread's
/// stack, not in a coroutine frame); false when nothing is there yet.
bool take_available(tcp::socket& client, sniff_state& st) {
  char buf[sniff_read_size];
  const ssize_t n = ::recv(client.native_handle(), buf, sizeof buf, MSG_DONTWAIT);
  if (n > 0) {
    st.bytes.append(buf, static_cast<std::size_t>(n));
    st.verdict = classify_first_bytes(st.bytes);
  } else if (n == 0) {
    st.client_eof = true;
  } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
    return false;
  } else if (errno != EINTR) {
    st.client_error = true;
  }
  return true;
}

/// Reads the client's first bytes until they classify or `deadline` passes. Bytes already
/// there are taken at once (a client-first protocol has usually sent them before the accept).
asio::awaitable<void> read_first_bytes(tcp::socket& client, sniff_state& st,
                                       clock::time_point deadline) {
  co_await asio::this_coro::throw_if_cancelled(false);
  while (st.verdict == sniff_verdict::need_more && !st.client_eof && !st.client_error) {
    if (take_available(client, st)) continue;
    // Cancelled while a wait was completing (the upstream spoke first): do not wait again.
    const auto cs = co_await asio::this_coro::cancellation_state;
    if (cancelled(cs)) co_return;
    auto w = co_await wait_readable(client, deadline);
    if (w == wait_outcome::timeout || w == wait_outcome::cancelled) co_return;
    if (w == wait_outcome::error) {
      st.client_error = true;
      co_return;
    }
  }
}

/// Connects to the original destination while the sniffer waits, then waits until the
/// upstream speaks (or closes) first. The socket lands in `up` once connected.
asio::awaitable<void> connect_and_listen(const io::connection_context& ctx,
                                         std::optional<tcp::socket>& up,
                                         std::optional<io::connect_result>& failed) {
  co_await asio::this_coro::throw_if_cancelled(false);
  auto r = co_await io::connect_for(ctx, ctx.original_dst);
  if (!r.socket) {
    if (!r.cancelled) failed = std::move(r);
    co_return;
  }
  up = std::move(r.socket);
  // The sniffer may have finished while this connect was completing: its cancellation then
  // reached no pending operation. Waiting now would hold a client-first connection until the
  // upstream speaks or gives up, so look at the cancellation state, not only at the wait.
  const auto cs = co_await asio::this_coro::cancellation_state;
  if (cancelled(cs)) co_return;
  co_await up->async_wait(tcp::socket::wait_read, token{});
}

/// A connection between accept and its protocol handler, in one allocation freed before the
/// connection settles into HTTP or TCP: no coroutine frame keeps moved-from copies of the
/// context and sockets for the connection's life.
struct pending_connection {
  io::connection_context ctx;
  tcp::socket client;
  std::optional<tcp::socket> upstream;
};

/// The rest of the sniff window for a silent client: connects upstream meanwhile and stops
/// waiting when the server speaks first. Its own frame (the connect result, the parallel group)
/// is gone once the sniff ends.
asio::awaitable<void> read_or_connect(pending_connection& c, sniff_state& st,
                                      clock::time_point window_end) {
  co_await asio::this_coro::throw_if_cancelled(false);
  std::optional<io::connect_result> failed;
  auto r = co_await (read_first_bytes(c.client, st, window_end) ||
                     connect_and_listen(c.ctx, c.upstream, failed));
  if (failed) {
    st.connect_failed = true;
    st.connect_ec = failed->ec;
  }
  if (r.index() == 1 && failed) {
    // The upstream is unreachable; an HTTP client may still be routed elsewhere.
    co_await read_first_bytes(c.client, st, window_end);
  }
}

/// Sniffs the client's first bytes (connecting upstream meanwhile, see serve_connection) and
/// sets c.ctx.proto and c.ctx.initial_bytes; false when the connection ends here.
asio::awaitable<bool> sniff(pending_connection& c) {
  co_await asio::this_coro::throw_if_cancelled(false);
  auto& ctx = c.ctx;
  const config& cfg = *ctx.services->cfg;
  const auto start = clock::now();
  const auto window_end = start + cfg.sniff_timeout;
  sniff_state st;
  // 1. A short grace for client-first protocols, which send at once.
  co_await read_first_bytes(c.client, st, start + speculative_connect_delay(cfg.sniff_timeout));
  // 2. Still silent: connect upstream while waiting, and stop waiting if the server speaks first.
  if (st.verdict == sniff_verdict::need_more && !st.client_eof && !st.client_error &&
      clock::now() < window_end) {
    co_await read_or_connect(c, st, window_end);
  }
  if (st.client_error) {
    log()->debug("[C{}] client error while sniffing", ctx.id);
    co_return false;
  }
  ctx.proto = st.verdict == sniff_verdict::http ? protocol::http
              : st.verdict == sniff_verdict::h2 ? protocol::h2
                                                : protocol::tcp;
  ctx.initial_bytes = std::move(st.bytes);
  if (ctx.proto == protocol::tcp && st.connect_failed) {
    ctx.services->metrics->connections(ctx.dir, ctx.proto).Increment();
    log()->debug("[C{}] upstream connect failed dst={} reason={}", ctx.id,
                 io::endpoint_text(ctx.original_dst), st.connect_ec.message());
    co_return false;  // closes the client
  }
  log()->debug("[C{}] sniffed protocol={} first_bytes={} preconnected={}", ctx.id,
               ctx.proto == protocol::http ? "http"
               : ctx.proto == protocol::h2 ? "h2"
                                           : "tcp",
               ctx.initial_bytes.size(), c.upstream.has_value());
  co_return true;
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
