#include "proxy/trace/traces_client.hpp"

#include <csignal>
#include <cstdio>
#include <deque>
#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "proxy/trace/render.hpp"
#include "proxy/trace/uploader.hpp"

// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace devspaces::proxy::trace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto token = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t remembered_lines = 4096;

// Lines already printed, so a reconnect's replay does not print them twice.
class seen_lines {
 public:
  bool insert(std::string_view line) {
    const auto h = std::hash<std::string_view>{}(line);
    if (!set_.insert(h).second) return false;
    order_.push_back(h);
    if (order_.size() > remembered_lines) {
      set_.erase(order_.front());
      order_.pop_front();
    }
    return true;
  }

 private:
  std::unordered_set<std::size_t> set_;
  std::deque<std::size_t> order_;
};

void print_line(std::string_view line, seen_lines& seen) {
  if (line.empty() || !seen.insert(line)) return;
  const auto text = render_record(line);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

asio::awaitable<void> follow(http_url url, std::string target, std::string shown) {
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  asio::steady_timer timer(ex);
  seen_lines seen;
  const auto backoff_initial = std::chrono::milliseconds(250);
  const auto backoff_max = std::chrono::milliseconds(5000);
  auto backoff = backoff_initial;
  bool complained = false;

  for (;;) {
    std::string problem;
    beast::tcp_stream stream(ex);
    stream.expires_after(std::chrono::seconds(10));
    auto [rec, endpoints] = co_await resolver.async_resolve(url.host, url.port, token);
    if (rec) {
      problem = rec.message();
    } else if (auto [cec, ep] = co_await stream.async_connect(endpoints, token); cec) {
      problem = cec.message();
    } else {
      http::request<http::empty_body> req{http::verb::get, target, 11};
      req.set(http::field::host, url.host_header);
      req.set(http::field::user_agent, "devspaces-proxy traces");
      req.set(http::field::accept, "application/x-ndjson");
      auto [wec, wn] = co_await http::async_write(stream, req, token);
      beast::flat_buffer buffer;
      http::response_parser<http::buffer_body> parser;
      parser.body_limit(boost::none);
      if (!wec) {
        auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, token);
        wec = hec;
      }
      if (wec) {
        problem = wec.message();
      } else if (parser.get().result() != http::status::ok) {
        problem = "answered " + std::to_string(parser.get().result_int());
      } else {
        if (complained)
          std::fprintf(stderr, "devspaces-proxy traces: following %s\n", shown.c_str());
        complained = false;
        backoff = backoff_initial;
        stream.expires_never();
        std::string pending;
        char data[16384];
        while (!parser.is_done()) {
          parser.get().body().data = data;
          parser.get().body().size = sizeof data;
          auto [ec, n] = co_await http::async_read_some(stream, buffer, parser, token);
          if (ec == http::error::need_buffer) ec = {};
          const std::size_t got = sizeof data - parser.get().body().size;
          pending.append(data, got);
          std::size_t pos = 0;
          for (auto nl = pending.find('\n'); nl != std::string::npos;
               nl = pending.find('\n', pos)) {
            print_line(std::string_view(pending).substr(pos, nl - pos), seen);
            pos = nl + 1;
          }
          pending.erase(0, pos);
          if (ec) break;
        }
        problem = "stream ended";
      }
    }
    if (!complained) {
      std::fprintf(stderr, "devspaces-proxy traces: %s: %s; retrying\n", shown.c_str(),
                   problem.c_str());
      complained = true;
    }
    timer.expires_after(backoff);
    co_await timer.async_wait(token);
    backoff = std::min(backoff * 2, backoff_max);
  }
}

}  // namespace

int run_traces_client(int argc, char** argv) {
  std::string url_text = "http://127.0.0.1:15090";
  for (int i = 2; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::puts(
          "usage: devspaces-proxy traces [URL]\n"
          "  Follows URL/traces?follow=1 (default http://127.0.0.1:15090, e.g. through\n"
          "  kubectl port-forward pod/<pod> 15090) and prints each HTTP exchange.");
      return 0;
    }
    if (arg.starts_with("-") || i > 2) {
      std::fprintf(stderr, "devspaces-proxy traces: unexpected argument %s\n", argv[i]);
      return 2;
    }
    url_text = std::string(arg);
  }
  auto url = parse_http_url(url_text);
  if (!url) {
    std::fprintf(stderr, "devspaces-proxy traces: %s is not an http://host:port URL\n",
                 url_text.c_str());
    return 2;
  }
  std::string target = url->target;
  if (target == "/") {
    target = "/traces?follow=1";
  } else if (target.find("follow=") == std::string::npos) {
    target += target.find('?') == std::string::npos ? "?follow=1" : "&follow=1";
  }

  asio::io_context ioc;
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&ioc](const boost::system::error_code&, int) { ioc.stop(); });
  int rc = 0;
  asio::co_spawn(ioc, follow(*url, target, url_text), [&](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "devspaces-proxy traces: %s\n", ex.what());
    }
    rc = 1;
    ioc.stop();
  });
  ioc.run();
  return rc;
}

}  // namespace devspaces::proxy::trace
