#include "proxy/admin/admin_server.hpp"
// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <chrono>
#include <exception>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "proxy/logging.hpp"
#include "proxy/server.hpp"

#include "proxy/admin/traces_endpoint.hpp"
#include "proxy/admin/ui_page.hpp"

namespace devspaces::proxy::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using token = asio::as_tuple_t<asio::use_awaitable_t<>>;

namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static auto l = logger("admin");
  return l;
}

constexpr auto read_timeout = std::chrono::seconds(30);
constexpr auto health_timeout = std::chrono::seconds(1);

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

response make_response(const request& req, http::status status, std::string content_type,
                       std::string body) {
  response res(status, req.version());
  res.set(http::field::server, "devspaces-proxy");
  res.set(http::field::content_type, content_type);
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

response text(const request& req, http::status status, std::string body) {
  return make_response(req, status, "text/plain; charset=utf-8", std::move(body) + "\n");
}

}  // namespace

struct admin_server::impl {
  proxy_metrics& metrics;
  admin_hooks hooks;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::thread thread;

  impl(proxy_metrics& m, admin_hooks h) : metrics(m), hooks(std::move(h)) {}

  asio::awaitable<bool> healthy() {
    if (!hooks.ping) co_return true;
    auto probe = hooks.ping();
    // Wait for the last worker's answer or the timeout, whichever comes first (no polling).
    auto timer = std::make_shared<asio::steady_timer>(io, health_timeout);
    probe->on_complete(
        [timer, ex = io.get_executor()] { asio::post(ex, [timer] { timer->cancel(); }); });
    co_await timer->async_wait(token{});
    co_return probe->complete();
  }

  asio::awaitable<response> route(const request& req, bool local_client) {
    std::string_view target(req.target().data(), req.target().size());
    auto path = target.substr(0, target.find('?'));
    if (req.method() != http::verb::get && req.method() != http::verb::head)
      co_return text(req, http::status::method_not_allowed, "devspaces-proxy: use GET");
    if (path == "/metrics")
      co_return make_response(req, http::status::ok, "text/plain; version=0.0.4; charset=utf-8",
                              metrics.serialize());
    if (path == "/healthz") {
      bool ok = co_await healthy();
      co_return ok ? text(req, http::status::ok, "ok")
                   : text(req, http::status::service_unavailable,
                          "devspaces-proxy: a worker loop did not answer within 1s");
    }
    if (path == "/readyz") {
      bool ok = !hooks.ready || hooks.ready();
      co_return ok ? text(req, http::status::ok, "ready")
                   : text(req, http::status::service_unavailable, "devspaces-proxy: not ready");
    }
    if (path == "/config") {
      if (!local_client)
        co_return text(req, http::status::forbidden,
                       "devspaces-proxy: /config is served to loopback clients only (use kubectl "
                       "port-forward)");
      co_return make_response(req, http::status::ok, "application/json",
                              hooks.config_json ? hooks.config_json() + "\n" : "{}\n");
    }
    co_return text(req, http::status::not_found, "devspaces-proxy: not found");
  }

  asio::awaitable<void> session(tcp::socket socket) {
    co_await asio::this_coro::throw_if_cancelled(false);
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      stream.expires_after(read_timeout);
      request req;
      auto [ec, n] = co_await http::async_read(stream, buffer, req, token{});
      if (ec) break;
      stream.expires_never();
      std::string_view target(req.target().data(), req.target().size());
      if (target == "/traces" || target.starts_with("/traces?")) {
        co_await serve_traces(stream, req, hooks.traces);
        break;
      }
      boost::system::error_code rec;
      const auto remote = stream.socket().remote_endpoint(rec);
      const bool local_client = !rec && is_loopback(remote.address());
      if (target == "/ui" || target.starts_with("/ui?") || target == "/ui/") {
        // Loopback only, like /traces: the page shows every record.
        response page = local_client
                            ? make_response(req, http::status::ok, "text/html; charset=utf-8",
                                            std::string(ui_page()))
                            : text(req, http::status::forbidden,
                                   "devspaces-proxy: /ui is served to loopback clients only (use "
                                   "kubectl port-forward)");
        if (page.result() == http::status::ok) {
          page.set(http::field::cache_control, "no-store");
          page.set("Content-Security-Policy",
                   "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                   "connect-src 'self'");
        }
        const bool keep_page = page.keep_alive();
        stream.expires_after(read_timeout);
        auto [pec, pn] = co_await http::async_write(stream, page, token{});
        if (pec || !keep_page) break;
        continue;
      }
      auto res = co_await route(req, local_client);
      bool keep = res.keep_alive();
      stream.expires_after(read_timeout);
      auto [wec, wn] = co_await http::async_write(stream, res, token{});
      if (wec || !keep) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  asio::awaitable<void> accept_loop() {
    co_await asio::this_coro::throw_if_cancelled(false);
    asio::steady_timer backoff(io);
    for (;;) {
      auto [ec, sock] = co_await acceptor.async_accept(token{});
      if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
      if (ec) {
        log()->warn("admin accept failed: {}", ec.message());
        backoff.expires_after(std::chrono::milliseconds(100));
        co_await backoff.async_wait(token{});
        continue;
      }
      asio::co_spawn(io, session(std::move(sock)), [](std::exception_ptr e) {
        if (e) log()->error("admin session ended with an exception");
      });
    }
  }
};

admin_server::admin_server(proxy_metrics& metrics, admin_hooks hooks)
    : impl_(std::make_unique<impl>(metrics, std::move(hooks))) {}

admin_server::~admin_server() {
  stop();
}

std::optional<std::string> admin_server::bind(const std::string& host, std::uint16_t port) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  std::string where = host + ":" + std::to_string(port);
  if (ec) return "admin address " + where + ": not an IP address";
  tcp::endpoint ep(addr, port);
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return "admin address " + where + ": " + ec.message();
  port_ = a.local_endpoint(ec).port();
  return std::nullopt;
}

void admin_server::start() {
  asio::co_spawn(impl_->io, impl_->accept_loop(), [](std::exception_ptr e) {
    if (e) log()->error("admin accept loop ended with an exception");
  });
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

void admin_server::stop() {
  if (!impl_) return;
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace devspaces::proxy::admin
