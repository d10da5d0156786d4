#include "proxy/h2/session.hpp"

// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <nghttp2/nghttp2.h>
#include <spdlog/spdlog.h>

#include <map>
#include <memory>

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

#include "proxy/config.hpp"
#include "proxy/h2/exchange.hpp"
#include "proxy/h2/log.hpp"
#include "proxy/h2/pump.hpp"
#include "proxy/io/deadline.hpp"
#include "proxy/io/drain_signal.hpp"
#include "proxy/io/socket_util.hpp"

namespace devspaces::proxy::h2 {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

limits client_limits(const config& cfg) {
  limits l;
  l.max_header_list = static_cast<std::uint32_t>(cfg.max_header_bytes);
  return l;
}

// Holds the limits before the pump (a base) refers to them.
struct limits_holder {
  limits lim;
};

class client_side : private limits_holder,
                    public pump,
                    public frame_handler,
                    public client_link,
                    public std::enable_shared_from_this<client_side> {
 public:
  client_side(tcp::socket socket, io::connection_context ctx)
      : limits_holder{client_limits(*ctx.services->cfg)},
        pump(std::move(socket), lim, ctx.services->cfg->idle_timeout),
        ctx_(std::move(ctx)),
        idle_(sock_.get_executor(), [this] { on_idle(); }) {
    ng_ = make_session(role::server, *this, lim);
    if (auto* m = ctx_.services->metrics)
      count_into(&m->bytes(ctx_.dir, flow::rx), &m->bytes(ctx_.dir, flow::tx));
  }

  static asio::awaitable<void> serve(std::shared_ptr<client_side> self, std::string initial) {
    co_await asio::this_coro::throw_if_cancelled(false);
    self->watch_drain();
    self->idle_.arm_after(self->ctx_.services->cfg->idle_timeout);
    co_await self->run_loops(std::move(initial));
    self->drain_sub_.reset();
    co_await self->idle_.close();
    auto streams = std::move(self->streams_);
    self->streams_.clear();
    for (auto& [id, ex] : streams) ex->detach_client();
    log()->debug("[C{}] h2 connection closed rx={} tx={}", self->ctx_.id, self->rx(), self->tx());
  }

  // client_link
  nghttp2_session* client_session() override { return ng(); }
  void client_kick() override { kick(); }
  const io::connection_context& context() const override { return ctx_; }
  asio::any_io_executor executor() override { return sock_.get_executor(); }

  // frame_handler
  int on_begin_headers(std::int32_t id) override {
    if (streams_.count(id) == 0) {
      streams_[id] = std::make_shared<exchange>(*this, id);
      idle_.disarm();
    }
    return 0;
  }
  int on_field(std::int32_t id, std::string_view name, std::string_view value) override {
    if (auto* ex = find(id)) ex->on_request_field(name, value);
    return 0;
  }
  int on_headers_done(std::int32_t id, bool end_stream) override {
    auto it = streams_.find(id);
    if (it == streams_.end()) return 0;
    auto ex = it->second;  // on_request_head may start the exchange's own coroutine
    if (!ex->head_done()) {
      ex->on_request_head(end_stream);
    } else {
      ex->on_request_end();  // trailers
    }
    return 0;
  }
  int on_data(std::int32_t id, std::span<const std::uint8_t> data) override {
    if (auto* ex = find(id)) {
      ex->on_request_data(data);
    } else {
      nghttp2_session_consume(ng(), id, data.size());
    }
    return 0;
  }
  int on_data_end(std::int32_t id) override {
    if (auto* ex = find(id)) ex->on_request_end();
    return 0;
  }
  int on_stream_close(std::int32_t id, std::uint32_t code) override {
    auto it = streams_.find(id);
    if (it == streams_.end()) return 0;
    auto ex = std::move(it->second);
    streams_.erase(it);
    if (streams_.empty()) idle_.arm_after(ctx_.services->cfg->idle_timeout);
    ex->on_client_closed(code);
    return 0;
  }
  void on_goaway(std::int32_t, std::uint32_t) override {}

 private:
  exchange* find(std::int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }

  // Inbound connections get GOAWAY when the worker's drain signal fires (at once when it
  // already has); outbound ones keep serving the app while the pod drains.
  void watch_drain() {
    auto* drain = ctx_.services->drain;
    if (ctx_.dir != direction::inbound || drain == nullptr) return;
    std::weak_ptr<client_side> weak = shared_from_this();
    if (drain->fired()) {
      // After the bytes already read are processed: the streams they opened are answered.
      asio::post(sock_.get_executor(), [weak] {
        if (auto self = weak.lock(); self && self->open()) self->on_drain();
      });
      return;
    }
    drain->subscribe(drain_sub_, [weak] {
      if (auto self = weak.lock(); self && self->open()) self->on_drain();
    });
  }

  void on_drain() {
    if (goaway_sent_) return;
    log()->debug("[C{}] h2 drain: GOAWAY with {} streams open", ctx_.id, streams_.size());
    goaway_sent_ = true;
    nghttp2_submit_goaway(ng(), NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(ng()),
                          NGHTTP2_NO_ERROR, nullptr, 0);
    kick();
  }

  // No stream for --idle-timeout (the deadline is armed while none is open): say goodbye.
  void on_idle() {
    if (!open() || !streams_.empty()) return;
    nghttp2_session_terminate_session(ng(), NGHTTP2_NO_ERROR);
    kick();
  }

  io::connection_context ctx_;
  std::map<std::int32_t, std::shared_ptr<exchange>> streams_;
  io::deadline idle_;
  io::drain_signal::subscription drain_sub_;
  bool goaway_sent_ = false;
};

asio::awaitable<void> serve(std::shared_ptr<client_side> s, std::string initial) {
  return client_side::serve(std::move(s), std::move(initial));
}

}  // namespace

asio::awaitable<void> run_h2_session(tcp::socket client, io::connection_context ctx,
                                     std::optional<tcp::socket> preconnected) {
  if (preconnected) io::close_quietly(*preconnected);
  std::string initial = std::move(ctx.initial_bytes);
  ctx.initial_bytes.clear();
  auto s = std::make_shared<client_side>(std::move(client), std::move(ctx));
  return serve(std::move(s), std::move(initial));
}

}  // namespace devspaces::proxy::h2
