#include "proxy/connection.hpp"
// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/config.hpp"
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
  asio::steady_timer timer(s.get_executor(), deadline);
  auto r = co_await (s.async_wait(tcp::socket::wait_read, token{}) || timer.async_wait(token{}));
  if (r.index() == 1) co_return wait_outcome::timeout;
  auto [ec] = std::get<0>(r);
  if (ec == asio::error::operation_aborted) co_return wait_outcome::cancelled;
  co_return ec ? wait_outcome::error : wait_outcome::readable;
}

/// What the sniffer learned from the client.
struct sniff_state {
  std::string bytes;
  sniff_verdict verdict = sniff_verdict::need_more;
  bool client_eof = false;
  bool client_error = false;
};

/// Reads the client's first bytes until they classify or `deadline` passes.
asio::awaitable<void> read_first_bytes(tcp::socket& client, sniff_state& st,
                                       clock::time_point deadline) {
  co_await asio::this_coro::throw_if_cancelled(false);
  while (st.verdict == sniff_verdict::need_more && !st.client_eof && !st.client_error) {
    auto w = co_await wait_readable(client, deadline);
    if (w == wait_outcome::timeout || w == wait_outcome::cancelled) co_return;
    if (w == wait_outcome::error) {
      st.client_error = true;
      co_return;
    }
    char buf[sniff_read_size];
    ssize_t n = ::recv(client.native_handle(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      st.bytes.append(buf, static_cast<std::size_t>(n));
      st.verdict = classify_first_bytes(st.bytes);
    } else if (n == 0) {
      st.client_eof = true;
    } else if (errno != EAGAIN && errno != EINTR) {
      st.client_error = true;
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
  co_await up->async_wait(tcp::socket::wait_read, token{});
}

}  // namespace

asio::awaitable<void> serve_connection(io::connection_context ctx, tcp::socket client) {
  co_await asio::this_coro::throw_if_cancelled(false);
  const config& cfg = *ctx.services->cfg;
  std::optional<tcp::socket> upstream;
  const auto& opaque = cfg.opaque_ports;
  if (std::find(opaque.begin(), opaque.end(), ctx.original_dst.port()) != opaque.end()) {
    ctx.proto = protocol::tcp;
    co_await dispatch(std::move(ctx), std::move(client), std::nullopt);
    co_return;
  }

  const auto start = clock::now();
  const auto window_end = start + cfg.sniff_timeout;
  sniff_state st;
  // 1. A short grace for client-first protocols, which send at once.
  co_await read_first_bytes(client, st, start + speculative_connect_delay(cfg.sniff_timeout));
  // 2. Still silent: connect upstream while waiting, and stop waiting if the server speaks first.
  std::optional<io::connect_result> failed;
  if (st.verdict == sniff_verdict::need_more && !st.client_eof && !st.client_error &&
      clock::now() < window_end) {
    auto r = co_await (read_first_bytes(client, st, window_end) ||
                       connect_and_listen(ctx, upstream, failed));
    if (r.index() == 1 && failed) {
      // The upstream is unreachable; an HTTP client may still be routed elsewhere.
      co_await read_first_bytes(client, st, window_end);
    }
  }
  if (st.client_error) {
    log()->debug("[C{}] client error while sniffing", ctx.id);
    co_return;
  }
  ctx.proto = st.verdict == sniff_verdict::http ? protocol::http : protocol::tcp;
  ctx.initial_bytes = std::move(st.bytes);
  if (ctx.proto == protocol::tcp && failed) {
    ctx.services->metrics->connections(ctx.dir, ctx.proto).Increment();
    log()->debug("[C{}] upstream connect failed dst={} reason={}", ctx.id,
                 io::endpoint_text(ctx.original_dst), failed->ec.message());
    co_return;  // closes the client
  }
  log()->debug("[C{}] sniffed protocol={} first_bytes={} preconnected={}", ctx.id,
               ctx.proto == protocol::http ? "http" : "tcp", ctx.initial_bytes.size(),
               upstream.has_value());
  co_await dispatch(std::move(ctx), std::move(client), std::move(upstream));
}

asio::awaitable<void> dispatch(io::connection_context ctx, tcp::socket client,
                               std::optional<tcp::socket> upstream) {
  ctx.services->metrics->connections(ctx.dir, ctx.proto).Increment();
  if (ctx.proto == protocol::http) {
    co_await http::run_http_session(std::move(client), std::move(ctx), std::move(upstream));
    co_return;
  }
  co_await serve_tcp(std::move(ctx), std::move(client), std::move(upstream));
}

asio::awaitable<void> serve_tcp(io::connection_context ctx, tcp::socket client,
                                std::optional<tcp::socket> upstream) {
  co_await asio::this_coro::throw_if_cancelled(false);
  if (!upstream) {
    auto r = co_await io::connect_for(ctx, ctx.original_dst);
    if (!r.socket) {
      log()->debug("[C{}] upstream connect failed dst={} error={}", ctx.id,
                   io::endpoint_text(ctx.original_dst), r.ec.message());
      co_return;  // closes the client
    }
    upstream = std::move(r.socket);
  }
  io::relay_options opts;
  opts.idle_timeout = ctx.services->cfg->idle_timeout;
  opts.metrics = ctx.services->metrics;
  opts.dir = ctx.dir;
  opts.id = ctx.id;
  opts.initial_client_bytes = std::move(ctx.initial_bytes);
  opts.splice_after = ctx.services->splice_after;
  auto r = co_await io::relay(std::move(client), std::move(*upstream), std::move(opts));
  if (log()->should_log(spdlog::level::debug)) {
    log()->debug("[C{}] relay closed dst={} end={} rx={} tx={}", ctx.id,
                 io::endpoint_text(ctx.original_dst), io::to_string(r.end), r.rx, r.tx);
  }
}

}  // namespace devspaces::proxy
