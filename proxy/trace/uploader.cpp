#include "proxy/trace/uploader.hpp"

// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <algorithm>
#include <exception>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace devspaces::proxy::trace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto token = asio::as_tuple(asio::use_awaitable);

// The "trace" logger main creates (it follows --log-format and --log-level), else the default.
std::shared_ptr<spdlog::logger> log() {
  auto l = spdlog::get("trace");
  return l ? l : spdlog::default_logger();
}

bool valid_port(std::string_view p) {
  if (p.empty() || p.size() > 5) return false;
  unsigned v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v >= 1 && v <= 65535;
}

}  // namespace

std::optional<http_url> parse_http_url(std::string_view url) {
  constexpr std::string_view scheme = "http://";
  if (!url.starts_with(scheme)) return std::nullopt;
  url.remove_prefix(scheme.size());
  http_url out;
  const auto slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  if (slash != std::string_view::npos) out.target = std::string(url.substr(slash));
  if (authority.empty()) return std::nullopt;
  std::string_view host = authority;
  std::string_view port;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return std::nullopt;
    host = authority.substr(1, close - 1);
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
      if (!valid_port(port)) return std::nullopt;
    }
  } else {
    const auto colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      if (!valid_port(port)) return std::nullopt;
    }
    if (host.empty() || host.find(':') != std::string_view::npos) return std::nullopt;
  }
  out.host = std::string(host);
  if (!port.empty()) out.port = std::string(port);
  out.host_header = std::string(authority);
  return out;
}

uploader::uploader(asio::any_io_executor executor, uploader_options options, http_url url,
                   proxy_metrics* metrics)
    : executor_(executor), options_(std::move(options)), url_(std::move(url)), metrics_(metrics) {}

void uploader::offer(entry e) {
  entry evicted;  // released after the lock
  bool dropped = false;
  bool wake_now = false;
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    if (queue_.size() >= options_.queue) {
      evicted = std::move(queue_.front());
      queue_.pop_front();
      if (inflight_last_ != 0 && evicted.seq >= inflight_first_ && evicted.seq <= inflight_last_) {
        ++inflight_evicted_;  // the POST in flight decides: sent, or dropped on failure
      } else {
        dropped = true;
      }
    }
    queue_.push_back(std::move(e));
    if (waiting_ && queue_.size() >= options_.batch) {
      waiting_ = false;
      wake_now = true;
    }
  }
  if (dropped) count_dropped(1);
  if (wake_now) wake();
}

void uploader::count_dropped(std::uint64_t n) {
  dropped_.fetch_add(n, std::memory_order_relaxed);
  if (options_.dropped_counter != nullptr) {
    options_.dropped_counter->Increment(static_cast<double>(n));
  } else if (metrics_) {
    metrics_->trace_records(trace_outcome::dropped).Increment(static_cast<double>(n));
  }
}

void uploader::wake() {
  {
    std::lock_guard lock(mutex_);
    if (alive_.expired()) return;
  }
  asio::post(executor_, [self = shared_from_this()] {
    if (self->timer_) self->timer_->cancel();
  });
}

void uploader::start() {
  asio::co_spawn(executor_, run(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log()->error("trace uploader stopped: {}", ex.what());
    }
  });
}

void uploader::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  wake();
}

std::size_t uploader::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

asio::awaitable<void> uploader::run() {
  auto self = shared_from_this();  // keeps the queue alive while running
  asio::steady_timer timer(executor_);
  timer_ = &timer;
  auto alive = std::make_shared<int>(0);
  {
    std::lock_guard lock(mutex_);
    alive_ = alive;
  }
  tcp::resolver resolver(executor_);
  beast::tcp_stream stream(executor_);
  beast::flat_buffer buffer;
  bool connected = false;
  auto backoff = options_.backoff_initial;
  bool failing = false;
  std::vector<entry> batch;
  std::string body;

  for (;;) {
    // Wait for a full batch or the interval, whichever comes first.
    bool sleep = false;
    {
      std::lock_guard lock(mutex_);
      if (stopped_) break;
      sleep = waiting_ = queue_.size() < options_.batch;
    }
    if (sleep) {
      timer.expires_after(options_.interval);
      co_await timer.async_wait(token);
      std::lock_guard lock(mutex_);
      waiting_ = false;
      if (stopped_) break;
    }

    batch.clear();
    {
      std::lock_guard lock(mutex_);
      const std::size_t n = std::min(queue_.size(), options_.batch);
      batch.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
      if (n != 0) {
        inflight_first_ = batch.front().seq;
        inflight_last_ = batch.back().seq;
        inflight_evicted_ = 0;
      }
    }
    if (batch.empty()) continue;
    body.clear();
    if (options_.encode) {
      body = options_.encode(batch);
    } else {
      for (const auto& e : batch) {
        body.append(e.json->text());
        body.push_back('\n');
      }
    }

    // One attempt; a kept-alive connection the collector closed meanwhile gets one fresh try.
    bool ok = false;
    for (int attempt = 0; attempt < 2 && !ok; ++attempt) {
      const bool reused = connected;
      if (!connected) {
        stream.expires_after(options_.request_timeout);
        auto [rec, endpoints] = co_await resolver.async_resolve(url_.host, url_.port, token);
        if (rec) break;
        auto [cec, ep] = co_await stream.async_connect(endpoints, token);
        if (cec) break;
        connected = true;
      }
      http::request<http::string_body> req{http::verb::post, url_.target, 11};
      req.set(http::field::host, url_.host_header);
      req.set(http::field::user_agent, "devspaces-proxy");
      req.set(http::field::content_type, options_.content_type);
      req.keep_alive(true);
      req.body() = body;
      req.prepare_payload();
      stream.expires_after(options_.request_timeout);
      auto [wec, wn] = co_await http::async_write(stream, req, token);
      http::response_parser<http::string_body> parser;
      parser.body_limit(1 << 20);
      boost::system::error_code rdec;
      if (!wec) {
        buffer.clear();
        auto [e, rn] = co_await http::async_read(stream, buffer, parser, token);
        rdec = e;
      }
      if (wec || rdec) {
        beast::error_code ignored;
        stream.socket().close(ignored);
        connected = false;
        if (reused) continue;  // stale keep-alive connection: retry once at once
        break;
      }
      const auto& res = parser.get();
      ok = res.result_int() >= 200 && res.result_int() < 300;
      if (!res.keep_alive()) {
        beast::error_code ignored;
        stream.socket().close(ignored);
        connected = false;
      }
      break;
    }

    std::uint64_t evicted = 0;
    {
      std::lock_guard lock(mutex_);
      if (ok) {
        // Remove what was delivered (entries the full queue evicted meanwhile are gone).
        while (!queue_.empty() && queue_.front().seq <= inflight_last_) queue_.pop_front();
      }
      evicted = inflight_evicted_;
      inflight_first_ = inflight_last_ = inflight_evicted_ = 0;
    }
    if (ok) {
      sent_.fetch_add(batch.size(), std::memory_order_relaxed);
      if (options_.sent_counter != nullptr) {
        options_.sent_counter->Increment(static_cast<double>(batch.size()));
      } else if (metrics_) {
        metrics_->trace_records(trace_outcome::sent).Increment(static_cast<double>(batch.size()));
      }
      if (failing) log()->info("{} {} reachable again", options_.what, options_.url);
      failing = false;
      backoff = options_.backoff_initial;
      continue;
    }
    if (evicted != 0) count_dropped(evicted);

    failures_.fetch_add(1, std::memory_order_relaxed);
    if (!failing) log()->warn("{} {} failed; retrying with backoff", options_.what, options_.url);
    failing = true;
    batch.clear();
    {
      std::lock_guard lock(mutex_);
      if (stopped_) break;
    }
    timer.expires_after(backoff);
    co_await timer.async_wait(token);
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
  timer_ = nullptr;
  beast::error_code ignored;
  stream.socket().close(ignored);
}

std::optional<std::string> start_uploader(hub& h, asio::any_io_executor executor,
                                          uploader_options options, proxy_metrics* metrics) {
  auto url = parse_http_url(options.url);
  if (!url) return options.url + " is not an http://host[:port][/path] URL";
  auto u = std::make_shared<uploader>(executor, std::move(options), std::move(*url), metrics);
  h.set_uploader(u);
  u->start();
  return std::nullopt;
}

}  // namespace devspaces::proxy::trace
