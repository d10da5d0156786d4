#include "proxy/admin/traces_endpoint.hpp"

// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <chrono>
#include <tuple>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/write.hpp>

#include "proxy/trace/hub.hpp"

namespace devspaces::proxy::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto token = asio::as_tuple(asio::use_awaitable);
// A follower whose socket accepts nothing for this long is disconnected; until then its
// bounded queue skips records.
constexpr auto write_timeout = std::chrono::seconds(30);
constexpr std::size_t max_last = 1'000'000;

using request = http::request<http::string_body>;

std::string format(const std::vector<trace::entry>& entries, bool sse) {
  std::size_t size = 0;
  for (const auto& e : entries) size += e.json->text().size() + (sse ? 32 : 1);
  std::string out;
  out.reserve(size);
  for (const auto& e : entries) {
    if (sse) {
      out.append("id: ");
      out.append(std::to_string(e.seq));
      out.append("\ndata: ");
      out.append(e.json->text());
      out.append("\n\n");
    } else {
      out.append(e.json->text());
      out.push_back('\n');
    }
  }
  return out;
}

// Keeps the entries that pass the filter, at most the newest `last` of them.
std::vector<trace::entry> select(std::vector<trace::entry> entries,
                                 const trace::record_filter& filter, std::size_t last) {
  if (!filter.empty()) {
    std::erase_if(entries,
                  [&](const trace::entry& e) { return !filter.matches_line(e.json->text()); });
  }
  if (entries.size() > last) {
    entries.erase(entries.begin(), entries.end() - static_cast<std::ptrdiff_t>(last));
  }
  return entries;
}

const char* content_type(bool sse) {
  return sse ? "text/event-stream" : "application/x-ndjson";
}

asio::awaitable<void> answer(beast::tcp_stream& stream, const request& req, http::status status,
                             std::string body, const char* type) {
  http::response<http::string_body> res(status, req.version());
  res.set(http::field::server, "devspaces-proxy");
  res.set(http::field::content_type, type);
  res.keep_alive(false);
  if (req.method() == http::verb::head) {
    res.content_length(body.size());
  } else {
    res.body() = std::move(body);
    res.prepare_payload();
  }
  stream.expires_after(write_timeout);
  co_await http::async_write(stream, res, token);
}

// HTTP/1.0 clients get a body delimited by the close instead of chunks.
asio::awaitable<void> pump(beast::tcp_stream& stream, std::shared_ptr<trace::subscription> sub,
                           std::vector<trace::entry> replay, bool sse, bool chunked,
                           trace::record_filter filter) {
  co_await asio::this_coro::throw_if_cancelled(false);
  std::vector<trace::entry> batch = std::move(replay);
  // A plain loop: GCC 12 mis-compiles `continue` in a do-while whose condition co_awaits.
  for (;;) {
    if (!filter.empty()) {
      std::erase_if(batch,
                    [&](const trace::entry& e) { return !filter.matches_line(e.json->text()); });
    }
    if (!batch.empty()) {
      const auto chunk = format(batch, sse);
      batch.clear();
      stream.expires_after(write_timeout);
      boost::system::error_code ec;
      if (chunked) {
        std::tie(ec, std::ignore) =
            co_await asio::async_write(stream, http::make_chunk(asio::buffer(chunk)), token);
      } else {
        std::tie(ec, std::ignore) = co_await asio::async_write(stream, asio::buffer(chunk), token);
      }
      if (ec) co_return;
    }
    if (!co_await sub->wait(batch)) break;
  }
  // The hub closed (shutdown): end the chunked body properly.
  if (!chunked) co_return;
  stream.expires_after(write_timeout);
  co_await asio::async_write(stream, http::make_chunk_last(), token);
}

// Completes when the client closes or resets its side: nothing else ends a quiet follow.
asio::awaitable<void> watch_close(beast::tcp_stream& stream) {
  co_await asio::this_coro::throw_if_cancelled(false);
  char buf[512];
  for (;;) {
    auto [ec, n] = co_await stream.socket().async_read_some(asio::buffer(buf), token);
    if (ec) co_return;
  }
}

}  // namespace

bool is_loopback(const asio::ip::address& a) {
  // The inbound listener relays connections from outside the pod to the app from these
  // passthrough sources: such a client is not local, whatever its address looks like.
  static const auto passthrough_v4 = asio::ip::make_address_v4("127.0.0.6");
  static const auto passthrough_v6 = asio::ip::make_address_v6("::6");
  if (a.is_v4()) return a.to_v4().is_loopback() && a.to_v4() != passthrough_v4;
  const auto v6 = a.to_v6();
  if (v6.is_loopback()) return true;
  if (v6 == passthrough_v6) return false;
  if (!v6.is_v4_mapped()) return false;
  const auto v4 = asio::ip::make_address_v4(asio::ip::v4_mapped, v6);
  return v4.is_loopback() && v4 != passthrough_v4;
}

traces_query parse_traces_query(std::string_view target, std::string_view accept) {
  traces_query q;
  q.sse = accept.find("text/event-stream") != std::string_view::npos;
  const auto qm = target.find('?');
  if (qm == std::string_view::npos) return q;
  std::string_view rest = target.substr(qm + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const auto pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    const auto eq = pair.find('=');
    const auto key = pair.substr(0, eq);
    const auto value = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    if (key == "last") {
      if (value.empty() || value.size() > 9 ||
          value.find_first_not_of("0123456789") != std::string_view::npos) {
        q.error = "last must be a number of records";
        return q;
      }
      std::size_t n = 0;
      for (char c : value) n = n * 10 + static_cast<std::size_t>(c - '0');
      q.last = n < max_last ? n : max_last;
    } else if (key == "follow") {
      q.follow = !(value == "0" || value == "false" || value == "no");
    } else {
      auto decoded = trace::url_decode(value);
      if (!decoded) {
        q.error = std::string(key) + ": broken percent-encoding";
        return q;
      }
      std::optional<std::string> problem;
      q.filter.set(key, *decoded, problem);  // unknown parameters are ignored
      if (problem) {
        q.error = *problem;
        return q;
      }
    }
  }
  return q;
}

asio::awaitable<void> serve_traces(beast::tcp_stream& stream, const request& req, trace::hub* hub) {
  co_await asio::this_coro::throw_if_cancelled(false);
  boost::system::error_code ec;
  const auto remote = stream.socket().remote_endpoint(ec);
  if (ec || !is_loopback(remote.address())) {
    co_await answer(stream, req, http::status::forbidden,
                    "devspaces-proxy: /traces is served to loopback clients only (use kubectl "
                    "port-forward)\n",
                    "text/plain; charset=utf-8");
    co_return;
  }
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    co_await answer(stream, req, http::status::method_not_allowed, "devspaces-proxy: use GET\n",
                    "text/plain; charset=utf-8");
    co_return;
  }
  const auto accept = req[http::field::accept];
  const auto q = parse_traces_query(std::string_view(req.target().data(), req.target().size()),
                                    std::string_view(accept.data(), accept.size()));
  if (q.error) {
    co_await answer(stream, req, http::status::bad_request, "devspaces-proxy: " + *q.error + "\n",
                    "text/plain; charset=utf-8");
    co_return;
  }
  if (!hub) {
    co_await answer(stream, req, http::status::service_unavailable,
                    "devspaces-proxy: tracing is off\n", "text/plain; charset=utf-8");
    co_return;
  }
  if (!q.follow) {
    auto entries = hub->last(q.filter.empty() ? q.last : hub->options().buffer);
    co_await answer(stream, req, http::status::ok,
                    format(select(std::move(entries), q.filter, q.last), q.sse),
                    content_type(q.sse));
    co_return;
  }

  std::vector<trace::entry> replay;
  auto sub = hub->subscribe(co_await asio::this_coro::executor,
                            q.filter.empty() ? q.last : hub->options().buffer, replay);
  replay = select(std::move(replay), q.filter, q.last);
  // Also runs when the admin io_context is destroyed with this frame suspended.
  struct unsubscribe_on_exit {
    trace::hub* hub;
    std::shared_ptr<trace::subscription> sub;
    ~unsubscribe_on_exit() { hub->unsubscribe(sub); }
  } guard{hub, sub};
  http::response<http::empty_body> res(http::status::ok, req.version());
  res.set(http::field::server, "devspaces-proxy");
  res.set(http::field::content_type, content_type(q.sse));
  res.set(http::field::cache_control, "no-cache");
  res.keep_alive(false);
  const bool chunked = req.version() >= 11;
  res.chunked(chunked);
  http::response_serializer<http::empty_body> sr(res);
  stream.expires_after(write_timeout);
  auto [wec, wn] = co_await http::async_write_header(stream, sr, token);
  if (!wec && req.method() != http::verb::head) {
    co_await (pump(stream, sub, std::move(replay), q.sse, chunked, q.filter) ||
              watch_close(stream));
  }
  stream.expires_never();
  beast::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
}

}  // namespace devspaces::proxy::admin
