#include "proxy/sniff.hpp"
// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/config.hpp"
#include "proxy/io/connect.hpp"
#include "proxy/io/connection_context.hpp"
#include "proxy/io/deadline.hpp"
#include "proxy/io/socket_util.hpp"
#include "proxy/logging.hpp"

namespace devspaces::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using clock = std::chrono::steady_clock;
using token = asio::as_tuple_t<asio::use_awaitable_t<>>;
using namespace asio::experimental::awaitable_operators;

namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static auto l = logger("conn");
  return l;
}

/// RFC 9110 §5.6.2 tchar.
bool is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

/// Skips leading empty lines (CRLF or LF, RFC 9112 §2.2); npos when the bytes end inside them
/// (or in a CR whose LF has not come yet), `bad` when a CR is followed by something else.
constexpr std::size_t bad = std::string_view::npos - 1;
std::size_t skip_empty_lines(std::string_view b) {
  std::size_t i = 0;
  while (i < b.size()) {
    if (b[i] == '\n') {
      ++i;
    } else if (b[i] == '\r') {
      if (i + 1 == b.size()) return std::string_view::npos;
      if (b[i + 1] != '\n') return bad;
      i += 2;
    } else {
      return i;
    }
  }
  return std::string_view::npos;
}

/// A request line whose method holds a separator ("G(T / HTTP/1.1"): not a token, but an
/// origin that splits the line at whitespace reads it as a request. From `i` (just past the
/// first token, at a visible non-token character) to the end of the first line: visible
/// characters and whitespace only, and the line ends in whitespace, "HTTP/", digit, ".", digit.
/// need_more while the line is still coming; tcp for any other byte or line.
sniff_verdict classify_line_with_separator(std::string_view b, std::size_t i) {
  auto lf = b.find('\n', i);
  const bool complete = lf != std::string_view::npos;
  auto line = b.substr(i, complete ? lf - i : std::string_view::npos);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF, or its CR so far
  for (const char ch : line) {
    const auto c = static_cast<unsigned char>(ch);
    if (!(c == ' ' || c == '\t' || (c > 0x20 && c < 0x7f))) return sniff_verdict::tcp;
  }
  if (!complete) return sniff_verdict::need_more;
  constexpr std::string_view version = " HTTP/d.d";
  if (line.size() < version.size()) return sniff_verdict::tcp;
  const auto tail = line.substr(line.size() - version.size());
  for (std::size_t k = 0; k < version.size(); ++k) {
    const auto c = static_cast<unsigned char>(tail[k]);
    const char want = version[k];
    const bool ok = want == ' '   ? (c == ' ' || c == '\t')
                    : want == 'd' ? (c >= '0' && c <= '9')
                                  : std::toupper(c) == want;
    if (!ok) return sniff_verdict::tcp;
  }
  return sniff_verdict::http;
}

}  // namespace

sniff_verdict classify_first_bytes(std::string_view bytes) {
  const auto undecided =
      bytes.size() >= sniff_limit ? sniff_verdict::http : sniff_verdict::need_more;
  const auto n = std::min(bytes.size(), h2_preface.size());
  if (n > 0 && bytes.substr(0, n) == h2_preface.substr(0, n)) {
    return n == h2_preface.size() ? sniff_verdict::h2 : sniff_verdict::need_more;
  }
  const auto start = skip_empty_lines(bytes);
  if (start == std::string_view::npos) return undecided;
  if (start == bad) return sniff_verdict::tcp;
  auto i = start;
  while (i < bytes.size() && is_tchar(static_cast<unsigned char>(bytes[i]))) ++i;
  if (i == bytes.size()) return undecided;
  if (i == start) return sniff_verdict::tcp;
  if (bytes[i] == ' ' || bytes[i] == '\t') return sniff_verdict::http;
  const auto c = static_cast<unsigned char>(bytes[i]);
  if (c > 0x20 && c < 0x7f) {
    const auto v = classify_line_with_separator(bytes, i);
    return v == sniff_verdict::need_more ? undecided : v;
  }
  return sniff_verdict::tcp;
}

std::chrono::milliseconds speculative_connect_delay(std::chrono::milliseconds sniff_timeout) {
  // Client-first protocols send within microseconds of connecting; waiting this long first
  // avoids opening an upstream connection the HTTP router might not use.
  return std::min(sniff_timeout, std::chrono::milliseconds(10));
}

namespace {

constexpr std::size_t sniff_read_size = 4096;

/// The state of one sniff window.
struct window {
  window(const io::connection_context& c, tcp::socket& s)
      : ctx(c), client(s), client_wait(s.get_executor(), io::cancel_on_expire(s)) {}
  const io::connection_context& ctx;
  tcp::socket& client;
  io::deadline client_wait;  ///< ends a wait for the client's bytes (closed when the sniff ends)
  sniff_result out;
  sniff_verdict verdict = sniff_verdict::need_more;
  bool client_done = false;      ///< EOF or an error: no more bytes will come
  bool client_failed = false;    ///< an error (not EOF)
  bool upstream_failed = false;  ///< the early connect failed, or the upstream closed silently
  boost::system::error_code upstream_ec;

  clock::time_point window_end;        ///< accept + --sniff-timeout
  clock::time_point first_bytes_at{};  ///< when the client's first bytes came

  bool undecided() const { return verdict == sniff_verdict::need_more && !client_done; }

  /// How long to wait for the client: bytes that do not decide yet (a method still being
  /// typed) get the rest of the window, or a window of their own when they came late: late
  /// bytes are classified as if they had come in time.
  clock::time_point client_deadline(clock::time_point otherwise) const {
    if (first_bytes_at == clock::time_point{}) return otherwise;
    const auto own = first_bytes_at + ctx.services->cfg->sniff_timeout;
    return std::min(otherwise, std::max(window_end, own));
  }
};

enum class wait_outcome { readable, timeout, cancelled, error };

/// Waits until the client is readable or `until` passes (the window's deadline cancels the wait).
asio::awaitable<wait_outcome> wait_readable(window& w, clock::time_point until) {
  co_await asio::this_coro::throw_if_cancelled(false);
  if (clock::now() >= until) co_return wait_outcome::timeout;
  w.client_wait.reset();
  w.client_wait.arm(until);
  auto [ec] = co_await w.client.async_wait(tcp::socket::wait_read, token{});
  w.client_wait.disarm();
  if (!ec) co_return wait_outcome::readable;
  if (w.client_wait.expired()) co_return wait_outcome::timeout;
  if (ec == asio::error::operation_aborted) co_return wait_outcome::cancelled;
  co_return wait_outcome::error;
}

/// True once the parallel group running this coroutine asked it to stop, even when the request
/// came between two operations and so cancelled none.
bool cancelled(const asio::cancellation_state& cs) {
  return cs.cancelled() != asio::cancellation_type::none;
}

/// Takes what the client has sent so far without blocking (the buffer lives on the thread's
/// stack, not in a coroutine frame); false when nothing is there yet.
bool take_available(window& w) {
  char buf[sniff_read_size];
  const auto room = std::min(sizeof buf, sniff_limit - std::min(sniff_limit, w.out.bytes.size()));
  const ssize_t n =
      ::recv(w.client.native_handle(), buf, std::max<std::size_t>(room, 1), MSG_DONTWAIT);
  if (n > 0) {
    if (w.out.bytes.empty()) w.first_bytes_at = clock::now();
    w.out.bytes.append(buf, static_cast<std::size_t>(n));
    if (auto* m = w.ctx.services->metrics)
      m->bytes(w.ctx.dir, flow::rx).Increment(static_cast<double>(n));
    w.verdict = classify_first_bytes(w.out.bytes);
  } else if (n == 0) {
    w.client_done = true;
  } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
    return false;
  } else if (errno != EINTR) {
    w.client_done = w.client_failed = true;
  }
  return true;
}

/// Reads the client's first bytes until they classify or `deadline` passes. Bytes already
/// there are taken at once (a client-first protocol has usually sent them before the accept).
asio::awaitable<void> read_first_bytes(window& w, clock::time_point deadline) {
  co_await asio::this_coro::throw_if_cancelled(false);
  while (w.undecided()) {
    if (take_available(w)) continue;
    // Cancelled while a wait was completing (the upstream spoke first): do not wait again.
    const auto cs = co_await asio::this_coro::cancellation_state;
    if (cancelled(cs)) co_return;
    auto r = co_await wait_readable(w, w.client_deadline(deadline));
    if (r == wait_outcome::timeout || r == wait_outcome::cancelled) co_return;
    if (r == wait_outcome::error) w.client_done = w.client_failed = true;
  }
}

/// True when a readable upstream sent bytes; false when it closed or failed without any.
bool upstream_has_bytes(tcp::socket& up) {
  char c;
  const ssize_t n = ::recv(up.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
}

/// Connects to the original destination while the client is silent, then waits until the
/// upstream speaks first (returns) or the client's bytes decide (this is cancelled). An
/// upstream that closes without a byte is dropped: the client's bytes still decide.
asio::awaitable<void> connect_and_listen(window& w) {
  co_await asio::this_coro::throw_if_cancelled(false);
  auto r = co_await io::connect_for(w.ctx, w.ctx.original_dst);
  if (!r.socket) {
    if (!r.cancelled) w.upstream_failed = true, w.upstream_ec = r.ec;
    co_return;
  }
  w.out.upstream = std::move(r.socket);
  // The client side may have finished while this connect was completing: its cancellation then
  // reached no pending operation. Waiting now would hold a client-first connection until the
  // upstream speaks or gives up, so look at the cancellation state, not only at the wait.
  const auto cs = co_await asio::this_coro::cancellation_state;
  if (cancelled(cs)) co_return;
  auto [ec] = co_await w.out.upstream->async_wait(tcp::socket::wait_read, token{});
  if (ec == asio::error::operation_aborted) co_return;
  if (!ec && upstream_has_bytes(*w.out.upstream)) co_return;  // server-first
  io::close_quietly(*w.out.upstream);
  w.out.upstream.reset();
  w.upstream_failed = true;
  w.upstream_ec = ec ? ec : asio::error::eof;
}

/// The client stayed silent through the grace period: connect meanwhile and wait for whichever
/// side speaks first, for as long as the connection may stay idle.
asio::awaitable<void> race_client_and_upstream(window& w, clock::time_point window_end) {
  co_await asio::this_coro::throw_if_cancelled(false);
  const auto idle_end = clock::now() + w.ctx.services->cfg->idle_timeout;
  auto r = co_await (read_first_bytes(w, idle_end) || connect_and_listen(w));
  if (r.index() == 1 && w.upstream_failed) {
    // Nobody to relay raw bytes to: an HTTP client may still be routed elsewhere.
    co_await read_first_bytes(w, std::max(window_end, clock::now()));
  }
}

void settle(window& w) {
  auto& out = w.out;
  out.verdict = w.verdict == sniff_verdict::need_more ? sniff_verdict::tcp : w.verdict;
  if (w.client_failed) {
    log()->debug("[C{}] client error while sniffing", w.ctx.id);
    out.proceed = false;
  } else if (out.verdict == sniff_verdict::tcp && w.upstream_failed && !out.upstream) {
    // Counted here: the connection never reaches the dispatch that counts the others.
    w.ctx.services->metrics->connections(w.ctx.dir, protocol::tcp).Increment();
    log()->debug("[C{}] upstream connect failed dst={} reason={}", w.ctx.id,
                 io::endpoint_text(w.ctx.original_dst), w.upstream_ec.message());
    out.proceed = false;
  }
}

}  // namespace

asio::awaitable<sniff_result> sniff_connection(const io::connection_context& ctx,
                                               tcp::socket& client) {
  co_await asio::this_coro::throw_if_cancelled(false);
  const config& cfg = *ctx.services->cfg;
  const auto start = clock::now();
  window w(ctx, client);
  w.window_end = start + cfg.sniff_timeout;
  // 1. A short grace for client-first protocols, which send at once.
  co_await read_first_bytes(w, start + speculative_connect_delay(cfg.sniff_timeout));
  // 2. Still silent: connect upstream while waiting, and stop waiting if the server speaks first.
  if (w.undecided()) co_await race_client_and_upstream(w, w.window_end);
  co_await w.client_wait.close();
  settle(w);
  log()->debug("[C{}] sniffed verdict={} first_bytes={} preconnected={}", ctx.id,
               static_cast<int>(w.out.verdict), w.out.bytes.size(), w.out.upstream.has_value());
  co_return std::move(w.out);
}

}  // namespace devspaces::proxy
