#include "proxy/http/session.hpp"

// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <algorithm>
#include <chrono>
#include <exception>
#include <memory>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/container/small_vector.hpp>

#include "proxy/config.hpp"
#include "proxy/exchange.hpp"
#include "proxy/http/head_edit.hpp"
#include "proxy/http/message_relay.hpp"
#include "proxy/http/parser.hpp"
#include "proxy/http/route_step.hpp"
#include "proxy/io/connect.hpp"
#include "proxy/io/deadline.hpp"
#include "proxy/io/drain_signal.hpp"
#include "proxy/io/readiness.hpp"
#include "proxy/io/relay.hpp"
#include "proxy/io/socket_util.hpp"
#include "proxy/io/upstream_pool.hpp"
#include "proxy/logging.hpp"
#include "proxy/trace/exchange_recorder.hpp"

namespace devspaces::proxy::http {

namespace asio = boost::asio;
using asio::ip::tcp;
using token = asio::as_tuple_t<asio::use_awaitable_t<>>;
using clock = std::chrono::steady_clock;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr std::size_t read_chunk = 16 * 1024;
constexpr auto linger_time = std::chrono::seconds(1);

// What the connection's deadline is armed for (its tag): the arm that expires names the timeout.
enum wait_for : std::uint8_t {
  wait_nothing = 0,
  wait_request_head,
  wait_request_body,
  wait_response_head,
  wait_response_body,
  wait_linger,
  wait_drain,
};

const std::shared_ptr<spdlog::logger>& log() {
  static auto l = logger("http");
  return l;
}

const char* status_phrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 502:
      return "Bad Gateway";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

asio::awaitable<void> nothing() {
  co_return;
}

}  // namespace

std::string error_response(int status, std::string_view reason) {
  std::string body = "devspaces-proxy: ";
  body.append(reason).append("\n");
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + status_phrase(status) +
                    "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  out += body;
  return out;
}

namespace {

using step = exchange_step;

// One HTTP/1 client connection: waits for each request, runs its exchange as a sequence of
// steps (request head → route → upstream → response head → body) that each return an
// exchange_outcome, and acts on the outcome (keep alive, answer, reset, tunnel). The two message
// relays do the byte work; one io::deadline bounds every wait.
class session {
 public:
  session(tcp::socket client, io::connection_context ctx, std::optional<tcp::socket> pre)
      : client_(std::move(client)),
        ctx_(std::move(ctx)),
        cfg_(*ctx_.services->cfg),
        metrics_(ctx_.services->metrics),
        preconnected_(std::move(pre)),
        deadline_(client_.get_executor(), [this] { cancel_io(); }),
        rec_(ctx_.services->traces, cfg_.trace_body_bytes),
        request_(
            parser::kind::request, cfg_.max_header_bytes,
            std::max<std::size_t>(cfg_.max_header_bytes + read_chunk, ctx_.initial_bytes.size()),
            deadline_, hooks(trace::message_side::request)),
        response_(parser::kind::response, cfg_.max_header_bytes, cfg_.max_header_bytes + read_chunk,
                  deadline_, hooks(trace::message_side::response)) {
    request_.preload(ctx_.initial_bytes);
    ctx_.initial_bytes.clear();
    ctx_.initial_bytes.shrink_to_fit();
    // Heads and bodies go out in separate writes: Nagle would hold the second one for the
    // peer's delayed ACK.
    boost::system::error_code ec;
    client_.set_option(tcp::no_delay(true), ec);
  }

  /// Runs the session to its end. A static coroutine owning the session: the one frame an idle
  /// connection holds here is this one.
  static asio::awaitable<void> serve(std::unique_ptr<session> s);

 private:
  // ---- the connection
  relay_hooks hooks(trace::message_side side) {
    relay_hooks h{nullptr, nullptr, &rec_, side};
    if (metrics_ == nullptr) return h;
    auto& counter =
        metrics_->bytes(ctx_.dir, side == trace::message_side::request ? flow::rx : flow::tx);
    (side == trace::message_side::request ? h.read_bytes : h.written_bytes) = &counter;
    return h;
  }
  asio::awaitable<void> serve_requests();
  // Resets the per-exchange state and arms the header timeout of the next request.
  void prepare_exchange();
  void on_drain();
  void cancel_io() {
    boost::system::error_code ec;
    client_.cancel(ec);
    if (up_) up_->cancel(ec);
  }
  // After a clean exchange: finishes its record and decides whether the connection serves
  // another request (true); else turns `o` into a close. Not a coroutine: the common path
  // suspends nowhere.
  bool keep_alive_after(exchange_outcome& o);
  // Acts on the outcome of an exchange that ends the connection.
  asio::awaitable<void> conclude(exchange_outcome o);
  asio::awaitable<void> send_answer(const exchange_outcome& o);
  asio::awaitable<void> tunnel();
  asio::awaitable<void> linger_close();
  void close_client_graceful() {
    boost::system::error_code ec;
    client_.shutdown(tcp::socket::shutdown_send, ec);
    io::close_quietly(client_);
  }
  // Draining closes inbound connections after their exchange (the pod is going away);
  // outbound connections are served as usual (the app may still call out while it stops).
  bool closing() const {
    return ctx_.dir == direction::inbound && ctx_.services->draining != nullptr &&
           ctx_.services->draining->load();
  }

  // ---- the exchange steps
  asio::awaitable<exchange_outcome> exchange();
  exchange_outcome request_head_failure(relay_status st) const;
  /// The route step: true with `target` set when it decided at once; else the lookups are
  /// left in `pending` for route_after_lookup.
  bool route_now(head_edit& edit, std::string_view authority,
                 routing::router::outbound_pending& pending, tcp::endpoint& target);
  asio::awaitable<tcp::endpoint> route_after_lookup(head_edit& edit,
                                                    routing::router::outbound_pending pending);
  tcp::endpoint apply_route(head_edit& edit, route_step_result& rr);
  asio::awaitable<exchange_outcome> open_upstream(const tcp::endpoint& target, int attempt);
  asio::awaitable<void> forward_request_body();
  asio::awaitable<exchange_outcome> respond();
  exchange_outcome response_head_failure(relay_status st) const;
  exchange_outcome response_body_failure(relay_status st) const;
  exchange_outcome request_failure() const;
  // A reused connection the upstream had closed meanwhile: the request may go once more.
  bool retry_on_new_upstream(const exchange_outcome& o, int attempt) const;
  bool tunnel_accepted() const;
  std::string_view method() const {
    return request_.message().text(request_.message().head().method);
  }

  // The kept connection when it still serves `ep` (no suspension, no frame).
  bool reuse_upstream(const tcp::endpoint& ep, bool fresh);
  asio::awaitable<bool> acquire_upstream(const tcp::endpoint& ep, bool fresh, connect_failure& why);
  void release_upstream(bool reusable);

  // ---- the trace record and the request metrics
  // Starts the record with the request line as far as it was parsed (a head that failed too).
  void begin_record();
  // Starts it without the line (note_request_head records the whole head).
  void start_record();
  // Takes what the steps after parsing need from the request head (fields as views, the trace
  // record's request side); returns the authority the origin will use.
  std::string_view note_request_head();
  void record_response_head();
  // Records the proxy's own error answer as the response the client got.
  void record_answer(int status, std::size_t body_size);
  void finish_record(int status, const char* error);

  tcp::socket client_;
  io::connection_context ctx_;
  const config& cfg_;
  proxy_metrics* metrics_;
  std::optional<tcp::socket> preconnected_;
  std::optional<tcp::socket> up_;
  tcp::endpoint up_ep_;
  bool up_reused_ = false;
  bool kept_alive_ = false;  // an exchange ended with the connection kept open

  io::deadline deadline_;  // every timeout of the connection; cancels client_ and up_
  io::drain_signal::subscription drain_sub_;
  trace::exchange_recorder rec_;  // builds a record only when tracing is wanted
  message_relay request_;         // client → upstream
  message_relay response_;        // upstream → client

  // Per exchange.
  clock::time_point exchange_start_ = clock::now();  // header timeout base
  clock::time_point head_done_at_{};
  std::vector<field_view> fields_;  // the request head's fields as views (reused)
  int method_idx_ = 0;
};

asio::awaitable<void> session::serve(std::unique_ptr<session> s) {
  co_await asio::this_coro::throw_if_cancelled(false);
  // Nothing here should throw (bad_alloc aside); if something does, the deadline's callback must
  // still have run before the session goes away.
  std::exception_ptr escaped;
  try {
    co_await s->serve_requests();
  } catch (...) {
    escaped = std::current_exception();
  }
  s->drain_sub_.reset();
  s->release_upstream(false);
  co_await s->deadline_.close();
  if (escaped) std::rethrow_exception(escaped);
}

asio::awaitable<void> session::serve_requests() {
  prepare_exchange();
  if (ctx_.dir == direction::inbound && ctx_.services->drain != nullptr)
    ctx_.services->drain->subscribe(drain_sub_, [this] { on_drain(); });
  // (co_await kept out of conditions: GCC 12 miscompiles `if (!co_await f())` in loops.)
  for (;;) {
    if (!request_.has_buffer()) {
      // An idle keep-alive connection waits for its next request holding no buffer, no parser
      // state and no exchange frame. The deadline cancels this wait on header timeout or drain;
      // EOF shows up as readable.
      io::watch_peer_close(client_);  // once per connection: short reads are then trusted
      auto [ec] = co_await io::wait_readable(client_);
      if (ec) {
        io::close_quietly(client_);
        co_return;
      }
      request_.ensure_buffer();
    }
    auto outcome = co_await exchange();
    if (!keep_alive_after(outcome)) {
      co_await conclude(std::move(outcome));
      co_return;
    }
    prepare_exchange();
    if (closing() && !request_.has_buffer()) {  // drained while the exchange ended
      close_client_graceful();
      co_return;
    }
  }
}

void session::prepare_exchange() {
  request_.finish_message(true);  // a pipelined next request stays
  response_.finish_message(false);
  request_.reset();
  response_.reset();
  rec_.discard();
  head_done_at_ = {};
  method_idx_ = method_other;
  deadline_.reset();
  deadline_.arm(exchange_start_ + cfg_.header_timeout, wait_request_head);
}

void session::on_drain() {
  // Only a keep-alive connection waiting for its next request ends now; one in an exchange
  // finishes it, and a new one gets its first request answered (with Connection: close).
  if (!kept_alive_ || deadline_.tag() != wait_request_head || request_.buffered() != 0) return;
  deadline_.expire_now(wait_drain);
}

// ---- the exchange

asio::awaitable<exchange_outcome> session::exchange() {
  request_.start();
  auto st = request_.try_read_head(client_, read_policy::speculative);
  if (!st) st = co_await request_.read_head(client_, read_policy::speculative);
  if (*st != relay_status::ok) co_return request_head_failure(*st);
  head_done_at_ = clock::now();
  const auto authority = note_request_head();
  // A body error in bytes already buffered is caught before anything is forwarded.
  const auto& req = request_.message();
  if (req.error() != parse_error::none) {
    co_return exchange_outcome::answer(step::request_head, 400,
                                       "bad request: " + std::string(describe(req.error())),
                                       "bad_request");
  }
  head_edit edit;
  const std::string_view keep_fields[] = {cfg_.route_header};
  normalize_request(edit, req, keep_fields);
  routing::router::outbound_pending pending;
  tcp::endpoint target;
  if (!route_now(edit, authority, pending, target))
    target = co_await route_after_lookup(edit, std::move(pending));
  // Forwarding, in this frame (not a nested coroutine: one frame fewer per exchange). A reused
  // upstream connection that fails before any answer is replaced once.
  for (int attempt = 0;; ++attempt) {
    auto o = exchange_outcome::proceed();
    if (!reuse_upstream(target, attempt > 0)) o = co_await open_upstream(target, attempt);
    if (!o.next) co_return o;
    response_.discard_buffered();
    response_.reset();
    deadline_.arm_after(cfg_.idle_timeout, wait_request_body);
    auto st = relay_status::ok;
    if (!request_.try_write_head(*up_, edit)) st = co_await request_.write_head(*up_, edit);
    if (st != relay_status::ok) {
      if (up_reused_ && attempt == 0 && request_.whole_message_buffered()) {
        io::close_quietly(*up_);
        up_.reset();
        continue;
      }
      co_return exchange_outcome::answer(
          step::upstream, 502, "bad gateway: upstream reset the connection", "upstream_reset");
    }
    if (request_.message().message_done()) {
      deadline_.arm_after(cfg_.header_timeout, wait_response_head);
      o = co_await respond();
    } else {
      // The request body streams while the response comes (an upstream may answer early).
      o = co_await (forward_request_body() && respond());
    }
    if (!retry_on_new_upstream(o, attempt)) co_return o;
    log()->debug("[C{}] reused upstream closed before responding; retrying", ctx_.id);
    io::close_quietly(*up_);
    up_.reset();
  }
}

exchange_outcome session::request_head_failure(relay_status st) const {
  const auto& req = request_.message();
  switch (st) {
    case relay_status::head_too_large:
      return exchange_outcome::answer(step::request_head, 431, "request head too large",
                                      "headers_too_large");
    case relay_status::bad_message:
      return exchange_outcome::answer(step::request_head, status_for(req.error()),
                                      "bad request: " + std::string(describe(req.error())),
                                      "bad_request");
    case relay_status::timed_out:
    case relay_status::stopped:
      if (request_.buffered() == 0) return exchange_outcome::quiet(step::request_head, nullptr);
      return exchange_outcome::answer(step::request_head, 408, "request head timeout",
                                      "header_timeout");
    default:  // the client went away: a record only when it had started a request
      return exchange_outcome::quiet(step::request_head,
                                     request_.buffered() > 0 ? "client_reset" : nullptr);
  }
}

bool session::route_now(head_edit& edit, std::string_view authority,
                        routing::router::outbound_pending& pending, tcp::endpoint& target) {
  auto* router = ctx_.services->router;
  if (router == nullptr) {
    target = ctx_.original_dst;
    rec_.on_upstream(target);
    return true;
  }
  deadline_.disarm();  // the head is in; the upstream step arms its own
  auto rr = route_request_now(router, ctx_.dir, cfg_.route_header, authority, fields_,
                              ctx_.original_dst, pending);
  if (!rr) return false;
  target = apply_route(edit, *rr);
  return true;
}

asio::awaitable<tcp::endpoint> session::route_after_lookup(
    head_edit& edit, routing::router::outbound_pending pending) {
  // Lookups have their own timeout (the deadline was disarmed in route_now).
  auto rr = co_await finish_route(ctx_.services->router, cfg_.route_header, ctx_.original_dst,
                                  std::move(pending));
  co_return apply_route(edit, rr);
}

tcp::endpoint session::apply_route(head_edit& edit, route_step_result& rr) {
  std::optional<field_view> added;
  if (rr.add_field) {
    add_header(edit, request_.message(), rr.add_field->first, rr.add_field->second);
    added.emplace(rr.add_field->first, rr.add_field->second);
  }
  rec_.on_route(rr.route_as, rr.source, std::move(rr.decision), added, std::move(rr.trace_id));
  rec_.on_upstream(rr.target);
  return rr.target;
}

bool session::retry_on_new_upstream(const exchange_outcome& o, int attempt) const {
  return o.end == exchange_end::answer && o.step == step::response_head && attempt == 0 &&
         up_reused_ && response_.status() == relay_status::closed && response_.buffered() == 0 &&
         request_.whole_message_buffered() && request_.message().message_done() &&
         !deadline_.expired();
}

asio::awaitable<exchange_outcome> session::open_upstream(const tcp::endpoint& target, int attempt) {
  connect_failure why = connect_failure::other;
  const bool connected = co_await acquire_upstream(target, attempt > 0, why);
  if (connected) co_return exchange_outcome::proceed();
  co_return upstream_connect_failed(why);
}

asio::awaitable<void> session::forward_request_body() {
  const auto st = co_await request_.relay_body(client_, *up_, cfg_.idle_timeout, wait_request_body);
  if (st == relay_status::ok) {
    if (!response_.message().head_complete())
      deadline_.arm_after(cfg_.header_timeout, wait_response_head);
    co_return;
  }
  if (st == relay_status::stopped) co_return;  // the response ended the exchange
  // Nothing sensible can come back for a broken request: end the response side too.
  response_.stop();
  boost::system::error_code ec;
  if (up_) up_->cancel(ec);
}

asio::awaitable<exchange_outcome> session::respond() {
  // The response head, read in this frame (not a nested coroutine: one frame fewer per exchange).
  const auto m = method();
  for (;;) {
    response_.start(m == "HEAD", m == "CONNECT");
    // Read at once: under load the response is often there already; a wait first would cost an
    // epoll_ctl where this costs at most one failing recv.
    auto st = response_.try_read_head(*up_, read_policy::speculative);
    if (!st) st = co_await response_.read_head(*up_, read_policy::speculative);
    if (*st != relay_status::ok) co_return response_head_failure(*st);
    const int status = response_.message().head().status;
    if (status < 100 || status >= 200 || status == 101) break;
    // Interim response (100 Continue, 103 Early Hints): pass on, then read the final one.
    const auto wst = co_await response_.write_head(client_, head_edit{}, false);
    if (wst != relay_status::ok)
      co_return exchange_outcome::reset(step::response_head, "client_reset");
    if (!request_.message().message_done())
      deadline_.arm_after(cfg_.idle_timeout, wait_request_body);
  }
  record_response_head();
  const bool tunnel = tunnel_accepted();
  head_edit edit;
  if (!tunnel && (closing() || !request_.message().message_done()))
    force_connection_close(edit, response_.message());
  deadline_.arm_after(cfg_.idle_timeout, wait_response_body);
  auto st = relay_status::ok;
  if (!response_.try_write_head(client_, edit, !tunnel))
    st = co_await response_.write_head(client_, edit, !tunnel);
  if (st != relay_status::ok)
    co_return exchange_outcome::reset(step::response_head, "client_reset");
  const int status = response_.message().head().status;
  if (tunnel) co_return exchange_outcome::finished(exchange_end::tunnel, status);
  if (!response_.message().message_done()) {
    st = co_await response_.relay_body(*up_, client_, cfg_.idle_timeout, wait_response_body);
    if (st != relay_status::ok) co_return response_body_failure(st);
  }
  if (!request_.message().message_done()) {
    // The upstream answered before the request body ended: stop the request side, also a write
    // of the body the upstream may never read.
    request_.stop();
    cancel_io();
  }
  co_return exchange_outcome::finished(exchange_end::keep_alive, status);
}

exchange_outcome session::response_head_failure(relay_status st) const {
  const auto e = response_.message().error();
  switch (st) {
    case relay_status::head_too_large:
      return exchange_outcome::answer(step::response_head, 502,
                                      "bad gateway: response head too large",
                                      "response_headers_too_large");
    case relay_status::bad_message:
      return exchange_outcome::answer(
          step::response_head, 502, "bad gateway: malformed response: " + std::string(describe(e)),
          "bad_response");
    case relay_status::timed_out:
      if (deadline_.fired_tag() == wait_response_head) {
        return exchange_outcome::answer(step::response_head, 504,
                                        "gateway timeout: no response from upstream",
                                        "upstream_timeout");
      }
      return request_failure();
    case relay_status::stopped:
      return request_failure();
    default:
      if (response_.buffered() == 0) {
        return exchange_outcome::answer(
            step::response_head, 502,
            "bad gateway: upstream closed the connection before responding", "upstream_reset");
      }
      return exchange_outcome::answer(step::response_head, 502,
                                      "bad gateway: upstream closed the connection mid-head",
                                      "upstream_reset");
  }
}

exchange_outcome session::request_failure() const {
  switch (request_.status()) {
    case relay_status::bad_message:
      return exchange_outcome::answer(
          step::response_head, 400,
          "bad request: " + std::string(describe(request_.message().error())), "bad_request");
    case relay_status::write_failed:
      return exchange_outcome::answer(
          step::response_head, 502, "bad gateway: upstream reset the connection", "upstream_reset");
    default:
      return exchange_outcome::reset(step::response_head, "client_reset");
  }
}

exchange_outcome session::response_body_failure(relay_status st) const {
  switch (st) {
    case relay_status::timed_out:
      return exchange_outcome::reset(step::body, "upstream_timeout");
    case relay_status::closed:
      return exchange_outcome::reset(step::body, "upstream_reset");
    case relay_status::bad_message:
      return exchange_outcome::reset(step::body, "bad_response");
    default:  // the request side failed, or the client stopped taking the response
      return exchange_outcome::reset(step::body, "client_reset");
  }
}

bool session::tunnel_accepted() const {
  const int status = response_.message().head().status;
  return (status == 101 && request_.message().upgrade()) ||
         (method() == "CONNECT" && status >= 200 && status < 300);
}

// ---- acting on the outcome

bool session::keep_alive_after(exchange_outcome& o) {
  if (o.end != exchange_end::keep_alive) return false;
  finish_record(o.status, nullptr);
  const auto& req = request_.message();
  const bool both_keep = req.message_done() && req.keep_alive() && response_.message().keep_alive();
  const bool up_keep = both_keep && response_.unparsed().empty();
  if (!up_keep && up_) {
    io::close_quietly(*up_);
    up_.reset();
  }
  if (up_) io::watch_peer_close(*up_);  // kept: its reuse check then needs no system call
  if (!both_keep || closing() || deadline_.expired()) {
    o.end = exchange_end::close;
    return false;
  }
  exchange_start_ = clock::now();
  kept_alive_ = true;
  return true;
}

asio::awaitable<void> session::conclude(exchange_outcome o) {
  switch (o.end) {
    case exchange_end::quiet:
      if (o.error != nullptr) {
        begin_record();
        finish_record(0, o.error);
      }
      io::close_quietly(client_);
      co_return;
    case exchange_end::answer:
      co_await send_answer(o);
      co_return;
    case exchange_end::reset:
      log()->debug("[C{}] exchange broke: {}", ctx_.id, o.error);
      begin_record();
      finish_record(0, o.error);
      if (up_) io::close_with_reset(*up_), up_.reset();
      io::close_with_reset(client_);
      co_return;
    case exchange_end::tunnel:
      finish_record(o.status, nullptr);
      co_await tunnel();
      co_return;
    default:  // close (the record was finished by keep_alive_after)
      if (!request_.unparsed().empty() || !request_.message().message_done()) {
        co_await linger_close();
      } else {
        close_client_graceful();
      }
      co_return;
  }
}

asio::awaitable<void> session::send_answer(const exchange_outcome& o) {
  log()->debug("[C{}] answer {} reason=\"{}\"", ctx_.id, o.status, o.reason);
  begin_record();
  deadline_.disarm();
  const auto answer = error_response(o.status, o.reason);
  auto [ec, n] = co_await asio::async_write(client_, asio::buffer(answer), token{});
  if (metrics_ != nullptr && n > 0)
    metrics_->bytes(ctx_.dir, flow::tx).Increment(static_cast<double>(n));
  record_answer(o.status, answer.size() - answer.find("\r\n\r\n") - 4);
  finish_record(o.status, o.error);
  if (up_) io::close_with_reset(*up_), up_.reset();
  co_await linger_close();
}

asio::awaitable<void> session::tunnel() {
  deadline_.disarm();
  drain_sub_.reset();
  io::relay_options opts;
  opts.idle_timeout = cfg_.idle_timeout;
  opts.metrics = metrics_;
  opts.dir = ctx_.dir;
  opts.id = ctx_.id;
  opts.splice_after = ctx_.services->splice_after;
  const auto from_client = request_.unparsed();
  const auto from_upstream = response_.unparsed();
  opts.initial_client_bytes.assign(from_client.begin(), from_client.end());
  opts.initial_upstream_bytes.assign(from_upstream.begin(), from_upstream.end());
  auto upstream = std::move(*up_);
  up_.reset();
  auto r = co_await io::relay(std::move(client_), std::move(upstream), std::move(opts));
  log()->debug("[C{}] tunnel closed end={} rx={} tx={}", ctx_.id, io::to_string(r.end), r.rx, r.tx);
}

// Lets the client read the answer before the close: reads (and drops) what it still sends for
// a moment, so the close does not reset the connection under the answer.
asio::awaitable<void> session::linger_close() {
  boost::system::error_code ec;
  client_.shutdown(tcp::socket::shutdown_send, ec);
  deadline_.reset();
  deadline_.arm_after(linger_time, wait_linger);
  char sink[4096];
  while (!deadline_.expired()) {
    auto [rec, n] = co_await client_.async_read_some(asio::buffer(sink), token{});
    if (rec || n == 0) break;
  }
  deadline_.disarm();
  io::close_quietly(client_);
}

// ---- upstream connections

void session::release_upstream(bool reusable) {
  if (!up_) return;
  if (reusable && ctx_.services->pool != nullptr && !closing()) {
    ctx_.services->pool->put(up_ep_, std::move(*up_));
  } else {
    io::close_quietly(*up_);
  }
  up_.reset();
}

bool session::reuse_upstream(const tcp::endpoint& ep, bool fresh) {
  up_reused_ = false;
  // A connection idle for under a second is trusted without a peek (a closed one is retried).
  if (!up_ || fresh || up_ep_ != ep) return false;
  if (!io::kept_socket_reusable(*up_, exchange_start_, clock::now())) return false;
  up_reused_ = true;
  return true;
}

asio::awaitable<bool> session::acquire_upstream(const tcp::endpoint& ep, bool fresh,
                                                connect_failure& why) {
  up_reused_ = false;
  // reuse_upstream() declined the kept connection: one to another endpoint goes back to the
  // pool (which checks it on take()).
  if (up_) release_upstream(!fresh && up_ep_ != ep);
  if (!fresh && preconnected_ && ep == ctx_.original_dst) {
    up_ = std::move(preconnected_);
    preconnected_.reset();
    up_ep_ = ep;
    boost::system::error_code ec;
    up_->set_option(tcp::no_delay(true), ec);
    if (io::idle_socket_alive(*up_)) {
      up_reused_ = true;  // nothing was sent on it yet: a retry is safe
      co_return true;
    }
    io::close_quietly(*up_);
    up_.reset();
  }
  if (preconnected_) io::close_quietly(*preconnected_);
  preconnected_.reset();
  if (!fresh && ctx_.services->pool != nullptr) {
    if (auto s = ctx_.services->pool->take(ep)) {
      up_ = std::move(s);
      up_ep_ = ep;
      up_reused_ = true;
      co_return true;
    }
  }
  deadline_.disarm();
  auto r = co_await io::connect_for(ctx_, ep);
  if (!r.socket) {
    why = r.reason;
    co_return false;
  }
  up_ = std::move(r.socket);
  up_ep_ = ep;
  boost::system::error_code ec;
  up_->set_option(tcp::no_delay(true), ec);
  co_return true;
}

// ---- the trace record

void session::start_record() {
  const auto& req = request_.message();
  const auto& rh = req.head();
  if (rh.method.len > 0) method_idx_ = method_index(req.text(rh.method));
  if (rec_.active() || !rec_.wanted()) return;
  rec_.begin(trace::exchange_endpoints{ctx_.dir == direction::outbound, cfg_.pod_name, cfg_.space,
                                       ctx_.client, ctx_.original_dst});
}

void session::begin_record() {
  const bool started = rec_.active();
  start_record();
  if (started || !rec_.active()) return;
  // The start line is known as soon as it was parsed, also when the head then failed.
  const auto& req = request_.message();
  const auto& rh = req.head();
  rec_.on_request_line(req.text(rh.method), req.text(rh.target), req.text(rh.version));
}

std::string_view session::note_request_head() {
  const auto& req = request_.message();
  const auto& rh = req.head();
  const std::string_view host = req.text(rh.authority);
  fields_.clear();
  for (const auto& f : rh.headers) fields_.emplace_back(req.text(f.name), req.text(f.value));
  start_record();
  rec_.on_request_head(
      {req.text(rh.method), req.text(rh.target), req.text(rh.version), host, fields_});
  rec_.on_body(trace::message_side::request, req.body());
  return host;
}

void session::record_response_head() {
  if (!rec_.active()) return;
  const auto& resp = response_.message();
  const auto& h = resp.head();
  boost::container::small_vector<field_view, 16> fields;  // no allocation for a usual head
  for (const auto& f : h.headers) fields.emplace_back(resp.text(f.name), resp.text(f.value));
  rec_.on_response_head({h.status, resp.text(h.reason), resp.text(h.version), fields});
  rec_.on_body(trace::message_side::response, resp.body());
}

void session::record_answer(int status, std::size_t body_size) {
  if (!rec_.active()) return;
  const auto length = std::to_string(body_size);
  const field_view fields[] = {{"content-type", "text/plain; charset=utf-8"},
                               {"content-length", length},
                               {"connection", "close"}};
  rec_.on_response_head({status, status_phrase(status), "1.1", fields});
}

void session::finish_record(int status, const char* error) {
  const auto end = clock::now();
  const auto dur = end - (head_done_at_ == clock::time_point{} ? exchange_start_ : head_done_at_);
  if (metrics_ != nullptr) {
    const auto cls = error != nullptr && status == 0 ? code_class::error : class_of_status(status);
    metrics_->http_requests(ctx_.dir, method_idx_, cls).Increment();
    metrics_->http_duration(ctx_.dir).Observe(std::chrono::duration<double>(dur).count());
  }
  rec_.finish(std::chrono::duration_cast<std::chrono::microseconds>(dur), error);
}

}  // namespace

asio::awaitable<void> run_http_session(tcp::socket client, io::connection_context ctx,
                                       std::optional<tcp::socket> preconnected) {
  // Not a coroutine: the session lives in one allocation and no frame keeps moved-from copies
  // of the arguments for the connection's life.
  if (ctx.services == nullptr || ctx.services->cfg == nullptr) return nothing();
  return session::serve(
      std::make_unique<session>(std::move(client), std::move(ctx), std::move(preconnected)));
}

}  // namespace devspaces::proxy::http
