#include "proxy/h2/upstream.hpp"

// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <nghttp2/nghttp2.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <tuple>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/config.hpp"
#include "proxy/h2/exchange.hpp"
#include "proxy/h2/log.hpp"
#include "proxy/io/connect.hpp"
#include "proxy/io/socket_util.hpp"

namespace devspaces::proxy::h2 {

namespace asio = boost::asio;
using asio::ip::tcp;
using token = asio::as_tuple_t<asio::use_awaitable_t<>>;

namespace {

constexpr auto max_upstream_idle = std::chrono::seconds(60);

// Connections of one worker thread. Entries are weak: a connection lives while its loops run,
// and a worker's io_context going away takes its connections with it.
struct pool_key {
  const void* worker;
  int dir;
  tcp::endpoint endpoint;
  bool operator<(const pool_key& o) const {
    return std::tie(worker, dir, endpoint) < std::tie(o.worker, o.dir, o.endpoint);
  }
};

// A connection being opened: streams that arrive meanwhile wait for it instead of opening more.
struct opening_conn {
  std::shared_ptr<asio::steady_timer> done;
  std::optional<connect_failure> failed;  // set when the connect failed
};

struct worker_pool {
  std::map<pool_key, std::vector<std::weak_ptr<upstream_conn>>> conns;
  std::map<pool_key, std::shared_ptr<opening_conn>> opening;
};

worker_pool& pool() {
  thread_local worker_pool p;
  return p;
}

std::shared_ptr<upstream_conn> find_usable(const pool_key& key, const upstream_conn* avoid) {
  auto it = pool().conns.find(key);
  if (it == pool().conns.end()) return nullptr;
  auto& v = it->second;
  std::shared_ptr<upstream_conn> best;
  for (auto i = v.begin(); i != v.end();) {
    auto c = i->lock();
    if (!c || !c->open()) {
      i = v.erase(i);
      continue;
    }
    if (c.get() != avoid && c->usable() && (!best || c->streams() < best->streams())) best = c;
    ++i;
  }
  if (v.empty()) pool().conns.erase(it);
  return best;
}

}  // namespace

const limits& upstream_limits() {
  static const limits l;
  return l;
}

upstream_conn::upstream_conn(tcp::socket socket, const limits& lim,
                             std::chrono::milliseconds write_timeout,
                             std::chrono::milliseconds idle_timeout)
    : pump(std::move(socket), lim, write_timeout),
      idle_timeout_(idle_timeout),
      idle_(sock_.get_executor(), [this] { on_idle(); }) {
  ng_ = make_session(role::client, *this, lim);
}

upstream_conn::~upstream_conn() = default;

void upstream_conn::start() {
  asio::co_spawn(sock_.get_executor(), run(shared_from_this()), asio::detached);
}

asio::awaitable<void> upstream_conn::run(std::shared_ptr<upstream_conn> self) {
  co_await asio::this_coro::throw_if_cancelled(false);
  self->idle_.arm_after(self->idle_timeout_);
  co_await self->run_loops({});
  co_await self->idle_.close();
  // Streams still open lose their upstream.
  auto streams = std::move(self->streams_);
  self->streams_.clear();
  for (auto& [id, ex] : streams) ex->on_upstream_closed(NGHTTP2_CONNECT_ERROR);
  log()->debug("upstream h2 connection closed rx={} tx={}", self->rx(), self->tx());
}

void upstream_conn::on_idle() {
  if (!open() || !streams_.empty()) return;
  // Idle: say goodbye; the loops end once GOAWAY is out.
  goaway_ = true;
  nghttp2_session_terminate_session(ng(), NGHTTP2_NO_ERROR);
  kick();
}

bool upstream_conn::usable() const {
  if (!open() || goaway_ || ng() == nullptr) return false;
  if (nghttp2_session_check_request_allowed(ng()) == 0) return false;
  const auto max =
      nghttp2_session_get_remote_settings(ng(), NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  return streams_.size() < std::min<std::uint32_t>(max, 100000);
}

std::int32_t upstream_conn::submit(const std::shared_ptr<exchange>& ex, const field_list& fields,
                                   bool with_body) {
  const auto id = submit_request(ng(), fields, with_body ? ex.get() : nullptr);
  if (id > 0) {
    streams_[id] = ex;
    idle_.disarm();
    kick();
  }
  return id;
}

exchange* upstream_conn::find(std::int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

int upstream_conn::on_begin_headers(std::int32_t) {
  return 0;
}

int upstream_conn::on_field(std::int32_t stream_id, std::string_view name, std::string_view value) {
  if (auto* ex = find(stream_id)) ex->on_response_field(name, value);
  return 0;
}

int upstream_conn::on_headers_done(std::int32_t stream_id, bool end_stream) {
  if (auto* ex = find(stream_id)) ex->on_response_head(end_stream);
  return 0;
}

int upstream_conn::on_data(std::int32_t stream_id, std::span<const std::uint8_t> data) {
  if (auto* ex = find(stream_id)) {
    ex->on_response_data(data);
  } else {
    nghttp2_session_consume(ng(), stream_id, data.size());
  }
  return 0;
}

int upstream_conn::on_data_end(std::int32_t stream_id) {
  if (auto* ex = find(stream_id)) ex->on_response_end();
  return 0;
}

int upstream_conn::on_stream_close(std::int32_t stream_id, std::uint32_t error_code) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return 0;
  auto ex = std::move(it->second);
  streams_.erase(it);
  if (streams_.empty()) idle_.arm_after(idle_timeout_);
  ex->on_upstream_closed(error_code);
  return 0;
}

void upstream_conn::on_goaway(std::int32_t, std::uint32_t) {
  goaway_ = true;  // no new streams here; those in flight finish (nghttp2 refuses the rest)
}

asio::awaitable<std::shared_ptr<upstream_conn>> acquire_upstream(const io::connection_context& ctx,
                                                                 tcp::endpoint endpoint,
                                                                 acquire_failure& why,
                                                                 const upstream_conn* avoid) {
  co_await asio::this_coro::throw_if_cancelled(false);
  auto ex = co_await asio::this_coro::executor;
  const pool_key key{&asio::query(ex, asio::execution::context), static_cast<int>(ctx.dir),
                     endpoint};
  for (int round = 0; round < 4; ++round) {
    if (auto c = find_usable(key, avoid)) co_return c;
    auto it = pool().opening.find(key);
    if (it == pool().opening.end()) break;
    // Another stream is opening a connection to the same place: wait for it.
    auto o = it->second;
    std::ignore = co_await o->done->async_wait(token{});
    if (o->failed) {
      why.reason = *o->failed;
      co_return nullptr;
    }
  }
  auto o = std::make_shared<opening_conn>();
  o->done = std::make_shared<asio::steady_timer>(ex, std::chrono::steady_clock::time_point::max());
  pool().opening[key] = o;
  auto r = co_await io::connect_for(ctx, endpoint);
  if (auto it = pool().opening.find(key); it != pool().opening.end() && it->second == o) {
    pool().opening.erase(it);
  }
  if (!r.socket) {
    o->failed = r.reason;
    o->done->cancel();
    why.reason = r.reason;
    co_return nullptr;
  }
  const auto& cfg = *ctx.services->cfg;
  const auto idle = std::min<std::chrono::milliseconds>(cfg.idle_timeout, max_upstream_idle);
  auto c = std::make_shared<upstream_conn>(std::move(*r.socket), upstream_limits(),
                                           cfg.idle_timeout, idle);
  c->start();
  pool().conns[key].push_back(c);
  o->done->cancel();
  co_return c;
}

std::size_t pooled_upstreams() {
  std::size_t n = 0;
  for (auto& [k, v] : pool().conns) {
    for (auto& w : v) n += w.lock() ? 1 : 0;
  }
  return n;
}

}  // namespace devspaces::proxy::h2
