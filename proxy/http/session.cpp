#include "proxy/http/session.hpp"

// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <memory>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "proxy/config.hpp"
#include "proxy/http/head_edit.hpp"
#include "proxy/http/parser.hpp"
#include "proxy/http/route_step.hpp"
#include "proxy/io/connect.hpp"
#include "proxy/io/drain_signal.hpp"
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

// Buffers released between exchanges go to a small per-thread cache (each worker is one
// thread), so a busy keep-alive connection takes one back without a malloc/free pair of 80 KiB
// per exchange while an idle connection holds none. Only buffers of the common size are kept,
// at most 32 per worker (address space; only the pages a buffer ever had bytes in are resident,
// as they would be in malloc's free lists).
class buffer_cache {
 public:
  std::unique_ptr<char[]> take(std::size_t capacity) {
    if (capacity == capacity_ && !spare_.empty()) {
      auto p = std::move(spare_.back());
      spare_.pop_back();
      return p;
    }
    return std::make_unique_for_overwrite<char[]>(capacity);
  }
  void give(std::unique_ptr<char[]> p, std::size_t capacity) {
    if (capacity_ == 0) capacity_ = capacity;
    if (capacity != capacity_ || spare_.size() >= max_spare) return;  // freed here
    spare_.push_back(std::move(p));
  }

 private:
  static constexpr std::size_t max_spare = 32;
  std::size_t capacity_ = 0;
  std::vector<std::unique_ptr<char[]>> spare_;
};

buffer_cache& buffers() {
  thread_local buffer_cache cache;
  return cache;
}

// A fixed-size byte buffer: [0, end) holds bytes read, [0, parsed) went through the parser,
// [0, sent) was forwarded. Never reallocated while a message is in it, so spans recorded by the
// parser stay valid; released between exchanges so an idle keep-alive connection holds no
// buffer memory (allocated again, uninitialised, once the peer is readable).
struct byte_buffer {
  explicit byte_buffer(std::size_t cap) : capacity(cap) {}
  std::unique_ptr<char[]> data;
  std::size_t capacity;
  std::size_t end = 0;
  std::size_t parsed = 0;
  std::size_t sent = 0;

  char* base() { return data.get(); }
  bool allocated() const { return data != nullptr; }
  void ensure() {
    if (!data) data = buffers().take(capacity);
  }
  // Gives the memory back when nothing is pending in it.
  void release() {
    if (end == 0 && data) buffers().give(std::move(data), capacity);
  }
  // Moves the unparsed tail to the front (a new message starts at offset 0).
  void compact() {
    if (parsed > 0 && end > parsed) std::memmove(data.get(), data.get() + parsed, end - parsed);
    end -= std::min(parsed, end);
    parsed = 0;
    sent = 0;
  }
  // Drops forwarded bytes when nothing else is pending.
  void drop_forwarded() {
    if (sent == end && parsed == end) end = parsed = sent = 0;
  }
};

enum class phase { none, request_head, request_body, response_head, response_body };

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

class session {
 public:
  session(tcp::socket client, io::connection_context ctx, std::optional<tcp::socket> pre)
      : client_(std::move(client)),
        ctx_(std::move(ctx)),
        cfg_(*ctx_.services->cfg),
        metrics_(ctx_.services->metrics),
        preconnected_(std::move(pre)),
        cb_(std::max<std::size_t>(cfg_.max_header_bytes + read_chunk, ctx_.initial_bytes.size())),
        ub_(cfg_.max_header_bytes + read_chunk),
        req_(parser::kind::request, cfg_.max_header_bytes),
        resp_(parser::kind::response, cfg_.max_header_bytes),
        watchdog_(client_.get_executor()),
        rec_(ctx_.services->traces, cfg_.trace_body_bytes) {
    cb_.ensure();
    std::memcpy(cb_.base(), ctx_.initial_bytes.data(), ctx_.initial_bytes.size());
    cb_.end = ctx_.initial_bytes.size();
    ctx_.initial_bytes.clear();
    ctx_.initial_bytes.shrink_to_fit();
    // Heads and bodies go out in separate writes: Nagle would hold the second one for the
    // peer's delayed ACK.
    boost::system::error_code ec;
    client_.set_option(tcp::no_delay(true), ec);
  }

  /// Runs the session to its end. A static coroutine owning the session: the one frame an idle
  /// connection holds here is this one, with a pointer and an error code.
  static asio::awaitable<void> serve(std::unique_ptr<session> s);

 private:
  void finish();
  // Resets the per-exchange state before the next request head; frees the buffers and parser
  // state when nothing of the next request is buffered yet (idle keep-alive holds none).
  void prepare_exchange();
  // One exchange; false when the connection is done.
  asio::awaitable<bool> exchange();
  // The watchdog is a plain timer callback, not a coroutine: an idle connection then holds one
  // pending timer operation instead of a coroutine frame and a parallel group.
  void watch();
  void on_watchdog();
  asio::awaitable<void> pump_request();
  asio::awaitable<void> relay_response();
  asio::awaitable<bool> fail(int status, std::string reason, const char* code);
  asio::awaitable<void> linger_close();
  asio::awaitable<void> discard_client();
  asio::awaitable<void> sleep_linger(asio::steady_timer& t);
  asio::awaitable<bool> acquire_upstream(const tcp::endpoint& ep, bool fresh, connect_failure& why);
  void release_upstream(bool reusable);
  void arm(phase p, clock::time_point deadline);
  void begin_record();
  // Takes what the steps after parsing need from the request head (method flags, fields as
  // views, the trace record's request side); returns the Host value.
  std::string_view note_request_head();
  // Records the proxy's own error answer as the response the client got.
  void record_answer(int status, std::size_t body_size);
  void finish_record(int status, const char* error);
  // Draining closes inbound connections after their exchange (the pod is going away);
  // outbound connections are served as usual (the app may still call out while it stops).
  bool closing() const {
    return ctx_.dir == direction::inbound && ctx_.services->draining != nullptr &&
           ctx_.services->draining->load();
  }
  void on_drain();
  // bytes_total rises as bytes move: a scrape during a long exchange sees them.
  void count(flow f, std::size_t n) {
    if (metrics_ != nullptr && n > 0)
      metrics_->bytes(ctx_.dir, f).Increment(static_cast<double>(n));
  }
  void close_client_graceful() {
    boost::system::error_code ec;
    client_.shutdown(tcp::socket::shutdown_send, ec);
    io::close_quietly(client_);
  }

  tcp::socket client_;
  io::connection_context ctx_;
  const config& cfg_;
  proxy_metrics* metrics_;
  std::optional<tcp::socket> preconnected_;
  std::optional<tcp::socket> up_;
  tcp::endpoint up_ep_;
  bool up_reused_ = false;

  byte_buffer cb_;
  byte_buffer ub_;
  parser req_;
  parser resp_;

  asio::steady_timer watchdog_;
  io::drain_signal::subscription drain_sub_;
  clock::time_point deadline_ = clock::time_point::max();
  phase phase_ = phase::none;
  bool fired_ = false;
  phase fired_phase_ = phase::none;
  bool stop_ = false;
  bool kept_alive_ = false;     // an exchange ended with the connection kept open
  bool watch_pending_ = false;  // a watchdog callback is outstanding (the session must live)

  // Per exchange.
  clock::time_point exchange_start_ = clock::now();  // header timeout base
  clock::time_point head_done_at_{};
  trace::exchange_recorder rec_;    // builds a record only when tracing is wanted
  std::vector<field_view> fields_;  // the request head's fields as views (reused)
  bool head_request_ = false;
  bool connect_request_ = false;
  bool request_buffered_ = true;   // the whole request still sits in cb_ (retry possible)
  bool response_started_ = false;  // final response head was sent to the client
  bool response_head_done_ = false;
  bool response_done_ = false;
  bool pump_failed_ = false;  // client vanished or sent garbage mid-body
  parse_error pump_error_ = parse_error::none;
  bool upstream_failed_ = false;  // upstream reset/closed mid-exchange
  bool response_error_ = false;   // bad response; the answer was already decided
  bool upstream_silent_ = false;  // the upstream closed without sending a byte
  int answer_status_ = 0;
  std::string answer_reason_;
  const char* answer_code_ = nullptr;
  int method_idx_ = 0;
};

void session::arm(phase p, clock::time_point deadline) {
  phase_ = p;
  deadline_ = deadline;
  if (deadline < watchdog_.expiry()) watchdog_.cancel();
}

void session::watch() {
  while (!stop_) {
    const auto now = clock::now();
    if (deadline_ <= now) {
      fired_ = true;
      fired_phase_ = phase_;
      deadline_ = clock::time_point::max();
      boost::system::error_code ec;
      client_.cancel(ec);
      if (up_) up_->cancel(ec);
      continue;
    }
    watchdog_.expires_at(deadline_);
    watch_pending_ = true;
    watchdog_.async_wait([this](const boost::system::error_code&) { on_watchdog(); });
    return;
  }
}

void session::on_watchdog() {
  watch_pending_ = false;
  if (stop_) return;
  watch();
}

void session::on_drain() {
  // Only a keep-alive connection waiting for its next request ends now; one in an exchange
  // finishes it, and a new one gets its first request answered (with Connection: close).
  if (stop_ || fired_ || !kept_alive_ || phase_ != phase::request_head || cb_.end != 0) return;
  fired_ = true;
  fired_phase_ = phase_;
  boost::system::error_code ec;
  client_.cancel(ec);
}

asio::awaitable<void> session::serve(std::unique_ptr<session> s) {
  co_await asio::this_coro::throw_if_cancelled(false);
  // Nothing here should throw (bad_alloc aside); if something does, the watchdog callback must
  // still have run before the session goes away.
  std::exception_ptr escaped;
  try {
    s->prepare_exchange();
    s->watch();
    if (s->ctx_.dir == direction::inbound && s->ctx_.services->drain != nullptr)
      s->ctx_.services->drain->subscribe(s->drain_sub_, [p = s.get()] { p->on_drain(); });
    // (co_await kept out of conditions: GCC 12 miscompiles `if (!co_await f())` in loops.)
    while (!s->stop_) {
      if (!s->cb_.allocated()) {
        // Idle keep-alive: wait for the next request holding no buffer, no parser state and no
        // exchange frame. The watchdog cancels this wait on header timeout or drain; EOF shows
        // up as readable.
        auto [ec] = co_await s->client_.async_wait(tcp::socket::wait_read, token{});
        if (ec) {
          io::close_quietly(s->client_);
          break;
        }
        s->cb_.ensure();
      }
      const bool more = co_await s->exchange();
      if (!more) break;
      s->kept_alive_ = true;
      s->prepare_exchange();
      if (s->closing() && !s->cb_.allocated()) {  // drained while the exchange ended
        s->close_client_graceful();
        break;
      }
    }
  } catch (...) {
    escaped = std::current_exception();
  }
  s->finish();
  // finish() cancelled the watchdog timer: its callback is queued and runs before this post.
  while (s->watch_pending_) {
    co_await asio::post(asio::use_awaitable);
  }
  if (escaped) std::rethrow_exception(escaped);
}

void session::finish() {
  stop_ = true;
  drain_sub_.reset();
  watchdog_.cancel();
  release_upstream(false);
}

void session::release_upstream(bool reusable) {
  if (!up_) return;
  if (reusable && ctx_.services->pool != nullptr && !closing()) {
    ctx_.services->pool->put(up_ep_, std::move(*up_));
  } else {
    io::close_quietly(*up_);
  }
  up_.reset();
}

void session::begin_record() {
  const auto& rh = req_.head();
  if (rh.method.len > 0) method_idx_ = method_index(req_.text(rh.method));
  if (rec_.active() || !rec_.wanted()) return;
  rec_.begin({ctx_.dir == direction::outbound, cfg_.pod_name, cfg_.space,
              io::format_endpoint(ctx_.client).view(),
              io::format_endpoint(ctx_.original_dst).view()});
  // The start line is known as soon as it was parsed, also when the head then failed.
  rec_.on_request_line(req_.text(rh.method), req_.text(rh.target), req_.text(rh.version));
}

std::string_view session::note_request_head() {
  const auto& rh = req_.head();
  const auto method = req_.text(rh.method);
  method_idx_ = method_index(method);
  head_request_ = method == "HEAD";
  connect_request_ = method == "CONNECT";
  // The authority the origin will use (an absolute-form target's, else the one Host).
  const std::string_view host = req_.text(rh.authority);
  fields_.clear();
  for (const auto& f : rh.headers) fields_.emplace_back(req_.text(f.name), req_.text(f.value));
  begin_record();
  rec_.on_request_head({method, req_.text(rh.target), req_.text(rh.version), host, fields_});
  rec_.on_body(trace::message_side::request, req_.body());
  return host;
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

asio::awaitable<void> session::discard_client() {
  char sink[4096];
  for (;;) {
    auto [ec, n] = co_await client_.async_read_some(asio::buffer(sink), token{});
    if (ec || n == 0) co_return;
  }
}

asio::awaitable<void> session::sleep_linger(asio::steady_timer& t) {
  co_await t.async_wait(token{});
}

asio::awaitable<void> session::linger_close() {
  boost::system::error_code ec;
  client_.shutdown(tcp::socket::shutdown_send, ec);
  asio::steady_timer t(client_.get_executor(), linger_time);
  co_await (discard_client() || sleep_linger(t));
  io::close_quietly(client_);
}

asio::awaitable<bool> session::fail(int status, std::string reason, const char* code) {
  log()->debug("[C{}] answer {} reason=\"{}\"", ctx_.id, status, reason);
  if (!response_started_) begin_record();
  if (status != 0 && !response_started_) {
    arm(phase::none, clock::time_point::max());
    const auto answer = error_response(status, reason);
    auto [ec, n] = co_await asio::async_write(client_, asio::buffer(answer), token{});
    count(flow::tx, n);
    record_answer(status, answer.size() - answer.find("\r\n\r\n") - 4);
    finish_record(status, code);
    if (up_) io::close_with_reset(*up_), up_.reset();
    co_await linger_close();
  } else {
    finish_record(0, code);
    if (up_) io::close_with_reset(*up_), up_.reset();
    io::close_with_reset(client_);
  }
  co_return false;
}

asio::awaitable<bool> session::acquire_upstream(const tcp::endpoint& ep, bool fresh,
                                                connect_failure& why) {
  up_reused_ = false;
  if (up_) {
    if (!fresh && up_ep_ == ep && io::idle_socket_alive(*up_)) {
      up_reused_ = true;
      co_return true;
    }
    // A kept connection to another endpoint goes back to the pool.
    release_upstream(!fresh && up_ep_ != ep && io::idle_socket_alive(*up_));
  }
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
  arm(phase::none, clock::time_point::max());
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

asio::awaitable<void> session::pump_request() {
  while (!req_.message_done()) {
    if (response_done_ || upstream_failed_) co_return;
    cb_.drop_forwarded();
    if (cb_.end == 0) request_buffered_ = false;
    if (cb_.end == cb_.capacity) {  // cannot happen: the parser consumes what is read
      pump_failed_ = true;
      break;
    }
    arm(phase::request_body, clock::now() + cfg_.idle_timeout);
    if (fired_) {
      pump_failed_ = true;
      break;
    }
    request_buffered_ = false;
    auto [ec, n] = co_await client_.async_read_some(
        asio::buffer(cb_.base() + cb_.end, std::min(read_chunk, cb_.capacity - cb_.end)), token{});
    if (response_done_) co_return;
    if (ec || n == 0) {
      pump_failed_ = true;
      break;
    }
    count(flow::rx, n);
    cb_.end += n;
    auto r = req_.feed(cb_.base() + cb_.parsed, cb_.end - cb_.parsed);
    cb_.parsed += r.consumed;
    rec_.on_body(trace::message_side::request, req_.body());
    if (r.event == parse_event::error) {
      pump_error_ = req_.error();
      pump_failed_ = true;
      break;
    }
    auto [wec, wn] = co_await asio::async_write(
        *up_, asio::buffer(cb_.base() + cb_.sent, cb_.parsed - cb_.sent), token{});
    if (wec) {
      upstream_failed_ = true;
      break;
    }
    cb_.sent = cb_.parsed;
  }
  if (pump_failed_ || upstream_failed_) {
    // Unblock the response side: nothing sensible can come back for a broken request.
    boost::system::error_code ec;
    if (up_) up_->cancel(ec);
    co_return;
  }
  if (!response_head_done_) arm(phase::response_head, clock::now() + cfg_.header_timeout);
}

asio::awaitable<void> session::relay_response() {
  const auto answer = [this](int status, std::string reason, const char* code) {
    response_error_ = true;
    answer_status_ = status;
    answer_reason_ = std::move(reason);
    answer_code_ = code;
  };
  const auto request_failed = [&] {
    answer(pump_error_ != parse_error::none ? 400 : 0,
           "bad request: " + std::string(describe(pump_error_)),
           pump_error_ != parse_error::none ? "bad_request" : "client_reset");
  };
  for (;;) {
    // One response message (a 1xx interim response loops back here).
    ub_.ensure();
    ub_.compact();
    resp_.begin_message(ub_.base(), head_request_, connect_request_);
    std::size_t got = ub_.end;
    while (!resp_.head_complete()) {
      if (ub_.parsed < ub_.end) {
        auto r = resp_.feed(ub_.base() + ub_.parsed, ub_.end - ub_.parsed);
        ub_.parsed += r.consumed;
        if (r.event == parse_event::error) {
          const auto e = resp_.error();
          if (e == parse_error::head_too_large) {
            answer(502, "bad gateway: response head too large", "response_headers_too_large");
          } else {
            answer(502, "bad gateway: malformed response: " + std::string(describe(e)),
                   "bad_response");
          }
          co_return;
        }
        if (resp_.head_complete()) break;
      }
      if (fired_) {
        answer(504, "gateway timeout: no response from upstream", "upstream_timeout");
        co_return;
      }
      // The request side failed while this side was not reading (its cancel reached nothing):
      // do not wait for an upstream that may wait for the rest of the request.
      if (pump_failed_) {
        request_failed();
        co_return;
      }
      auto [ec, n] = co_await up_->async_read_some(
          asio::buffer(ub_.base() + ub_.end, ub_.capacity - ub_.end), token{});
      if (ec || n == 0) {
        if (fired_ && fired_phase_ == phase::response_head) {
          answer(504, "gateway timeout: no response from upstream", "upstream_timeout");
        } else if (pump_failed_) {
          request_failed();
        } else if (got == 0) {
          upstream_silent_ = true;
          answer(502, "bad gateway: upstream closed the connection before responding",
                 "upstream_reset");
        } else {
          answer(502, "bad gateway: upstream closed the connection mid-head", "upstream_reset");
        }
        co_return;
      }
      got += n;
      ub_.end += n;
    }
    response_head_done_ = true;
    const auto& h = resp_.head();
    const int status = h.status;
    if (status >= 100 && status < 200 && status != 101) {
      // Interim response (100 Continue, 103 Early Hints): pass on, then read the final one.
      auto [ec, n] = co_await asio::async_write(
          client_, asio::buffer(ub_.base() + h.start, h.end - h.start), token{});
      count(flow::tx, n);
      if (ec) {
        answer(0, "", "client_reset");
        co_return;
      }
      // The 1xx message ended at h.end; parsing stopped there (message_complete).
      response_head_done_ = false;
      if (!req_.message_done()) arm(phase::request_body, clock::now() + cfg_.idle_timeout);
      continue;
    }
    break;
  }

  const auto& h = resp_.head();
  if (rec_.active()) {
    std::vector<field_view> fields;
    fields.reserve(h.headers.size());
    for (const auto& f : h.headers) fields.emplace_back(resp_.text(f.name), resp_.text(f.value));
    rec_.on_response_head({h.status, resp_.text(h.reason), resp_.text(h.version), fields});
    rec_.on_body(trace::message_side::response, resp_.body());
  }
  const bool tunnel = (h.status == 101 && req_.upgrade()) ||
                      (connect_request_ && h.status >= 200 && h.status < 300);
  head_edit edit;
  if (!tunnel && (closing() || !req_.message_done() || !req_.keep_alive())) {
    if (closing() || !req_.message_done()) force_connection_close(edit, resp_);
  }
  arm(phase::response_body, clock::now() + cfg_.idle_timeout);
  {
    auto pieces = edit.pieces(ub_.base(), h.start, h.end);
    std::vector<asio::const_buffer> bufs;
    bufs.reserve(pieces.size() + 1);
    for (auto p : pieces) bufs.emplace_back(p.data(), p.size());
    if (!tunnel && ub_.parsed > h.end) bufs.emplace_back(ub_.base() + h.end, ub_.parsed - h.end);
    response_started_ = true;
    auto [ec, n] = co_await asio::async_write(client_, bufs, token{});
    count(flow::tx, n);
    ub_.sent = tunnel ? h.end : ub_.parsed;
    if (ec) {
      answer(0, "", "client_reset");
      co_return;
    }
  }
  if (tunnel) co_return;
  while (!resp_.message_done()) {
    ub_.drop_forwarded();
    arm(phase::response_body, clock::now() + cfg_.idle_timeout);
    if (fired_) {
      answer(0, "", "upstream_timeout");
      co_return;
    }
    if (pump_failed_) {  // as above: the request side's cancel came between two reads
      answer(0, "", "client_reset");
      co_return;
    }
    auto [ec, n] = co_await up_->async_read_some(
        asio::buffer(ub_.base() + ub_.end, std::min(read_chunk, ub_.capacity - ub_.end)), token{});
    if (ec || n == 0) {
      if (!ec || ec == asio::error::eof) {
        if (resp_.finish() == parse_event::message_complete) {
          rec_.on_body(trace::message_side::response, resp_.body());
          break;
        }
      }
      answer(0, "", pump_failed_ ? "client_reset" : "upstream_reset");
      co_return;
    }
    ub_.end += n;
    auto r = resp_.feed(ub_.base() + ub_.parsed, ub_.end - ub_.parsed);
    ub_.parsed += r.consumed;
    rec_.on_body(trace::message_side::response, resp_.body());
    if (r.event == parse_event::error) {
      answer(0, "", "bad_response");
      co_return;
    }
    auto [wec, wn] = co_await asio::async_write(
        client_, asio::buffer(ub_.base() + ub_.sent, ub_.parsed - ub_.sent), token{});
    count(flow::tx, wn);
    ub_.sent = ub_.parsed;
    if (wec) {
      answer(0, "", "client_reset");
      co_return;
    }
  }
  response_done_ = true;
  if (!req_.message_done()) {
    // The upstream answered before the request body ended: stop reading the client, and stop
    // a write of the body the upstream may never read (cancelling only the client side reaches
    // nothing while the request side is blocked on the upstream).
    boost::system::error_code ec;
    client_.cancel(ec);
    if (up_) up_->cancel(ec);
  }
}

void session::prepare_exchange() {
  cb_.compact();
  // The previous response went out whole (or the connection would have ended): nothing in ub_
  // is needed any more.
  ub_.end = ub_.parsed = ub_.sent = 0;
  ub_.release();
  if (cb_.end == 0) {
    cb_.release();
    req_.release();
    resp_.release();
  }
  rec_.discard();
  head_done_at_ = {};
  fired_ = false;
  request_buffered_ = true;
  response_started_ = false;
  response_head_done_ = false;
  response_done_ = false;
  pump_failed_ = false;
  pump_error_ = parse_error::none;
  upstream_failed_ = false;
  response_error_ = false;
  upstream_silent_ = false;
  answer_status_ = 0;
  answer_code_ = nullptr;
  method_idx_ = method_index("OTHER");
  arm(phase::request_head, exchange_start_ + cfg_.header_timeout);
}

asio::awaitable<bool> session::exchange() {
  // ---- request head
  req_.begin_message(cb_.base());
  while (!req_.head_complete()) {
    if (cb_.parsed < cb_.end) {
      auto r = req_.feed(cb_.base() + cb_.parsed, cb_.end - cb_.parsed);
      cb_.parsed += r.consumed;
      if (r.event == parse_event::error) {
        const auto e = req_.error();
        if (e == parse_error::head_too_large) {
          co_return co_await fail(431, "request head too large", "headers_too_large");
        }
        co_return co_await fail(status_for(e), "bad request: " + std::string(describe(e)),
                                "bad_request");
      }
      if (req_.head_complete()) break;
    }
    if (cb_.end == cb_.capacity) {
      co_return co_await fail(431, "request head too large", "headers_too_large");
    }
    if (fired_) {
      if (cb_.end == 0) co_return false;
      co_return co_await fail(408, "request head timeout", "header_timeout");
    }
    auto [ec, n] = co_await client_.async_read_some(
        asio::buffer(cb_.base() + cb_.end, cb_.capacity - cb_.end), token{});
    if (ec || n == 0) {
      if (fired_ && cb_.end > 0) {
        co_return co_await fail(408, "request head timeout", "header_timeout");
      }
      if (cb_.end > 0 && !fired_) {
        begin_record();
        finish_record(0, "client_reset");
      }
      io::close_quietly(client_);
      co_return false;
    }
    count(flow::rx, n);
    cb_.end += n;
  }
  head_done_at_ = clock::now();
  const auto& rh = req_.head();
  const auto authority = note_request_head();

  // A body error in bytes already buffered is caught before anything is forwarded.
  if (req_.error() != parse_error::none) {
    co_return co_await fail(400, "bad request: " + std::string(describe(req_.error())),
                            "bad_request");
  }

  // ---- route
  head_edit edit;
  const std::string_view keep_fields[] = {cfg_.route_header};
  normalize_request(edit, req_, keep_fields);
  tcp::endpoint target = ctx_.original_dst;
  if (ctx_.services->router != nullptr) {
    arm(phase::none, clock::time_point::max());
    auto rr = co_await route_request(ctx_.services->router, ctx_.dir, cfg_.route_header, authority,
                                     fields_, ctx_.original_dst);
    std::optional<field_view> added;
    if (rr.add_field) {
      add_header(edit, req_, rr.add_field->first, rr.add_field->second);
      added.emplace(rr.add_field->first, rr.add_field->second);
    }
    target = rr.target;
    rec_.on_route(rr.route_as, rr.source, std::move(rr.decision), added, std::move(rr.trace_id));
  }
  if (rec_.active()) rec_.on_upstream(io::format_endpoint(target).view());

  // ---- upstream, forward the head and what was buffered of the body
  for (int attempt = 0;; ++attempt) {
    connect_failure why = connect_failure::other;
    const bool connected = co_await acquire_upstream(target, attempt > 0, why);
    if (!connected) {
      switch (why) {
        case connect_failure::timeout:
          co_return co_await fail(504, "gateway timeout: upstream connect timed out",
                                  "upstream_timeout");
        case connect_failure::refused:
          co_return co_await fail(502, "bad gateway: upstream refused the connection",
                                  "upstream_connect_refused");
        case connect_failure::unreachable:
          co_return co_await fail(502, "bad gateway: upstream unreachable", "upstream_unreachable");
        default:
          co_return co_await fail(502, "bad gateway: upstream connect failed",
                                  "upstream_connect_error");
      }
    }
    ub_.end = ub_.parsed = ub_.sent = 0;
    {
      auto pieces = edit.pieces(cb_.base(), rh.start, rh.end);
      std::vector<asio::const_buffer> bufs;
      bufs.reserve(pieces.size() + 1);
      for (auto p : pieces) bufs.emplace_back(p.data(), p.size());
      if (cb_.parsed > rh.end) bufs.emplace_back(cb_.base() + rh.end, cb_.parsed - rh.end);
      arm(phase::request_body, clock::now() + cfg_.idle_timeout);
      auto [ec, n] = co_await asio::async_write(*up_, bufs, token{});
      cb_.sent = cb_.parsed;
      if (ec) {
        if (up_reused_ && attempt == 0 && request_buffered_) {
          io::close_quietly(*up_);
          up_.reset();
          continue;
        }
        co_return co_await fail(502, "bad gateway: upstream reset the connection",
                                "upstream_reset");
      }
    }
    if (req_.message_done()) {
      arm(phase::response_head, clock::now() + cfg_.header_timeout);
      co_await relay_response();
    } else {
      co_await (pump_request() && relay_response());
    }
    if (response_error_ && upstream_silent_ && up_reused_ && attempt == 0 && request_buffered_ &&
        req_.message_done() && !fired_) {
      // A reused connection the upstream had closed meanwhile: try once on a new one.
      log()->debug("[C{}] reused upstream closed before responding; retrying", ctx_.id);
      response_error_ = false;
      upstream_silent_ = false;
      io::close_quietly(*up_);
      up_.reset();
      continue;
    }
    break;
  }
  if (response_error_) co_return co_await fail(answer_status_, answer_reason_, answer_code_);

  const auto& h = resp_.head();
  const bool tunnel = (h.status == 101 && req_.upgrade()) ||
                      (connect_request_ && h.status >= 200 && h.status < 300);
  finish_record(h.status, nullptr);
  if (tunnel) {
    arm(phase::none, clock::time_point::max());
    io::relay_options opts;
    opts.idle_timeout = cfg_.idle_timeout;
    opts.metrics = metrics_;
    opts.dir = ctx_.dir;
    opts.id = ctx_.id;
    opts.splice_after = ctx_.services->splice_after;
    opts.initial_client_bytes.assign(cb_.base() + cb_.parsed, cb_.end - cb_.parsed);
    opts.initial_upstream_bytes.assign(ub_.base() + ub_.parsed, ub_.end - ub_.parsed);
    stop_ = true;
    watchdog_.cancel();
    auto upstream = std::move(*up_);
    up_.reset();
    auto r = co_await io::relay(std::move(client_), std::move(upstream), std::move(opts));
    log()->debug("[C{}] tunnel closed end={} rx={} tx={}", ctx_.id, io::to_string(r.end), r.rx,
                 r.tx);
    co_return false;
  }
  const bool req_done = req_.message_done();
  const bool client_keep = req_done && response_done_ && req_.keep_alive() && resp_.keep_alive() &&
                           !closing() && !fired_;
  const bool up_keep = req_done && response_done_ && resp_.keep_alive() && req_.keep_alive() &&
                       ub_.parsed == ub_.end;
  if (!up_keep && up_) {
    io::close_quietly(*up_);
    up_.reset();
  }
  if (!client_keep) {
    if (cb_.parsed < cb_.end || !req_done) {
      co_await linger_close();
    } else {
      close_client_graceful();
    }
    co_return false;
  }
  exchange_start_ = clock::now();
  co_return true;
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
