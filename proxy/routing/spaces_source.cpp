#include "proxy/routing/spaces_source.hpp"
// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

namespace devspaces::proxy::routing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using token = asio::as_tuple_t<asio::use_awaitable_t<>>;

namespace {

std::shared_ptr<spdlog::logger> logger() {
  auto l = spdlog::get("routing");
  return l ? l : spdlog::default_logger();
}

struct http_url {
  std::string host, port, target;
};

std::optional<http_url> parse_http_url(const std::string& url) {
  if (!url.starts_with("http://")) return std::nullopt;
  std::string rest = url.substr(7);
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  http_url u;
  u.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (hostport.starts_with("[")) {
    auto close = hostport.find(']');
    if (close == std::string::npos) return std::nullopt;
    u.host = hostport.substr(1, close - 1);
    u.port = close + 2 <= hostport.size() && hostport[close + 1] == ':' ? hostport.substr(close + 2)
                                                                        : "80";
  } else {
    auto colon = hostport.rfind(':');
    u.host = hostport.substr(0, colon);
    u.port = colon == std::string::npos ? "80" : hostport.substr(colon + 1);
  }
  if (u.host.empty() || u.port.empty()) return std::nullopt;
  return u;
}

constexpr auto request_timeout = std::chrono::seconds(5);

}  // namespace

std::optional<std::string> check_spaces_url(const std::string& url) {
  if (!parse_http_url(url)) return "must be an http://host:port/path URL";
  return std::nullopt;
}

struct spaces_url_poller::state : std::enable_shared_from_this<state> {
  asio::any_io_executor ex;
  std::shared_ptr<const config> cfg;
  proxy_metrics& metrics;
  std::shared_ptr<space_tree_holder> holder;
  std::chrono::milliseconds interval;
  asio::steady_timer timer;
  http_url url;
  std::string etag;
  std::string last_bad_body;
  bool stopped = false;
  bool failing = false;

  state(asio::any_io_executor e, std::shared_ptr<const config> c, proxy_metrics& m,
        std::shared_ptr<space_tree_holder> h, std::chrono::milliseconds i)
      : ex(e), cfg(std::move(c)), metrics(m), holder(std::move(h)), interval(i), timer(e) {}

  void outage(const std::string& why) {
    if (!failing)
      logger()->warn("--spaces-url {}: {}; keeping the last good space tree", cfg->spaces_url, why);
    failing = true;
  }

  asio::awaitable<void> poll_once() {
    tcp::resolver resolver(ex);
    auto [rec, results] = co_await resolver.async_resolve(url.host, url.port, token{});
    if (rec) {
      outage(rec.message());
      co_return;
    }
    beast::tcp_stream stream(ex);
    stream.expires_after(request_timeout);
    auto [cec, ep] = co_await stream.async_connect(results, token{});
    if (cec) {
      outage(cec.message());
      co_return;
    }
    http::request<http::empty_body> req(http::verb::get, url.target, 11);
    req.set(http::field::host, url.host + ":" + url.port);
    req.set(http::field::user_agent, "devspaces-proxy");
    req.set(http::field::accept, "application/json");
    if (!etag.empty()) req.set(http::field::if_none_match, etag);
    req.keep_alive(false);
    auto [wec, wn] = co_await http::async_write(stream, req, token{});
    if (wec) {
      outage(wec.message());
      co_return;
    }
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(4 * 1024 * 1024);
    auto [hec, hn] = co_await http::async_read(stream, buffer, parser, token{});
    if (hec) {
      outage(hec.message());
      co_return;
    }
    auto& res = parser.get();
    if (res.result() == http::status::not_modified) {
      if (failing) logger()->info("--spaces-url {}: reachable again", cfg->spaces_url);
      failing = false;
      co_return;
    }
    if (res.result() != http::status::ok) {
      outage("HTTP " + std::to_string(res.result_int()));
      co_return;
    }
    if (failing) logger()->info("--spaces-url {}: reachable again", cfg->spaces_url);
    failing = false;
    auto r = build_space_tree(cfg->space, cfg->parent_spaces, res.body());
    if (!r.tree) {
      if (res.body() != last_bad_body) {
        last_bad_body = res.body();
        metrics.config_reloads(false).Increment();
        logger()->error("--spaces-url {}: {}; keeping the last good space tree", cfg->spaces_url,
                        r.error);
      }
      co_return;
    }
    last_bad_body.clear();
    etag = std::string(res[http::field::etag]);
    auto current = holder->get();
    if (!current || current->parents() != r.tree->parents()) {
      holder->set(r.tree);
      metrics.config_reloads(true).Increment();
      logger()->info("space tree updated from {} ({} spaces)", cfg->spaces_url,
                     r.tree->parents().size());
    }
  }

  asio::awaitable<void> run() {
    auto self = shared_from_this();
    while (!stopped) {
      co_await poll_once();
      if (stopped) break;
      timer.expires_after(interval);
      co_await timer.async_wait(token{});
    }
  }
};

spaces_url_poller::spaces_url_poller(asio::any_io_executor ex, std::shared_ptr<const config> cfg,
                                     proxy_metrics& metrics,
                                     std::shared_ptr<space_tree_holder> holder,
                                     std::chrono::milliseconds interval)
    : state_(std::make_shared<state>(std::move(ex), std::move(cfg), metrics, std::move(holder),
                                     interval)) {}

spaces_url_poller::~spaces_url_poller() {
  stop();
}

void spaces_url_poller::start() {
  auto u = parse_http_url(state_->cfg->spaces_url);
  if (!u) return;
  state_->url = *u;
  asio::co_spawn(state_->ex, state_->run(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      logger()->error("--spaces-url poller stopped: {}", ex.what());
    }
  });
}

void spaces_url_poller::stop() {
  state_->stopped = true;
  state_->timer.cancel();
}

}  // namespace devspaces::proxy::routing
