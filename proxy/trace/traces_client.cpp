#include "proxy/trace/traces_client.hpp"

#include <csignal>
#include <cstdio>
#include <deque>
#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <unistd.h>

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

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "proxy/metrics.hpp"
#include "proxy/trace/filter.hpp"
#include "proxy/trace/har.hpp"
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

// What the client was asked to do, shared by every followed URL.
struct client_state {
  render_options render;
  bool json = false;
  bool follow = true;
  bool several = false;  // more than one URL: each record is preceded by its pod
  std::string har_path;
  std::vector<boost::json::object> har_records;
  int streams_open = 0;
  int failures = 0;
};

void print_line(std::string_view line, seen_lines& seen, client_state& st) {
  if (line.empty() || !seen.insert(line)) return;
  if (!st.har_path.empty()) {
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec);
    if (!ec && v.is_object()) st.har_records.push_back(std::move(v.get_object()));
  }
  std::string text;
  if (st.json) {
    text.assign(line);
    text.push_back('\n');
  } else {
    text = render_record(line, st.render);
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

asio::awaitable<void> follow(http_url url, std::string target, std::string shown,
                             client_state& st) {
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
            print_line(std::string_view(pending).substr(pos, nl - pos), seen, st);
            pos = nl + 1;
          }
          pending.erase(0, pos);
          if (ec) break;
        }
        if (!st.follow) {
          if (!pending.empty()) print_line(pending, seen, st);
          co_return;  // --no-follow: one answer is all
        }
        problem = "stream ended";
      }
    }
    if (!st.follow) {
      std::fprintf(stderr, "devspaces-proxy traces: %s: %s\n", shown.c_str(), problem.c_str());
      ++st.failures;
      co_return;
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

namespace {

constexpr const char* usage =
    "usage: devspaces-proxy traces [URL...] [flags]\n"
    "  Follows URL/traces (default http://127.0.0.1:15090, e.g. through\n"
    "  kubectl port-forward pod/<pod> 15090; http:// may be left out) and prints each HTTP\n"
    "  exchange with its duration. Several URLs (several pods) are followed at once.\n"
    "  --last N          start with the last N records (default 100)\n"
    "  --no-follow       print the records kept now and exit\n"
    "  -o json           raw records, one JSON object a line (-o text: the default view)\n"
    "  --har FILE        also write what was read as HAR 1.2 (on exit)\n"
    "  --color, --no-color  colours (default: when stdout is a terminal)\n"
    "  filters (several values: comma list):\n"
    "  --direction inbound|outbound   --method GET   --status 5xx|404   --path /api (prefix)\n"
    "  --route-as SPACE   --decision own|parent|grandparent|original\n"
    "  --error | --error=CODE   (any error, or one code)   --trace-id ID\n";

// "localhost:15090" → "http://localhost:15090".
std::string with_scheme(std::string_view u) {
  if (u.find("://") != std::string_view::npos) return std::string(u);
  return "http://" + std::string(u);
}

bool write_har(const client_state& st) {
  if (st.har_path.empty()) return true;
  const auto doc = har_document(st.har_records, proxy_metrics::build_version());
  FILE* f = std::fopen(st.har_path.c_str(), "wb");
  if (!f) {
    std::fprintf(stderr, "devspaces-proxy traces: cannot write %s\n", st.har_path.c_str());
    return false;
  }
  std::fwrite(doc.data(), 1, doc.size(), f);
  std::fputc('\n', f);
  return std::fclose(f) == 0;
}

}  // namespace

int run_traces_client(int argc, char** argv) {
  std::vector<std::string> urls;
  record_filter filter;
  client_state st;
  std::optional<std::size_t> last;
  std::optional<bool> color;
  auto value_of = [&](int& i, std::string_view arg, std::string& out) -> bool {
    const auto eq = arg.find('=');
    if (eq != std::string_view::npos) {
      out = std::string(arg.substr(eq + 1));
      return true;
    }
    if (i + 1 >= argc) return false;
    out = argv[++i];
    return true;
  };
  for (int i = 2; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto name = arg.substr(0, arg.find('='));
    std::string v;
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (!arg.starts_with("-")) {
      urls.push_back(with_scheme(arg));
      continue;
    }
    if (name == "--no-follow") {
      st.follow = false;
    } else if (name == "--follow") {
      st.follow = true;
    } else if (name == "--color" || name == "--colour") {
      color = true;
    } else if (name == "--no-color" || name == "--no-colour") {
      color = false;
    } else if (arg == "--error") {
      std::optional<std::string> problem;
      filter.set("error", "any", problem);
    } else if (!value_of(i, arg, v)) {
      std::fprintf(stderr, "devspaces-proxy traces: %s needs a value\n", argv[i]);
      return 2;
    } else if (name == "--last") {
      if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos) {
        std::fprintf(stderr, "devspaces-proxy traces: --last: '%s' is not a number\n", v.c_str());
        return 2;
      }
      last = static_cast<std::size_t>(std::stoul(v));
    } else if (name == "-o" || name == "--output") {
      if (v != "json" && v != "text") {
        std::fprintf(stderr, "devspaces-proxy traces: -o: '%s' is not json or text\n", v.c_str());
        return 2;
      }
      st.json = v == "json";
    } else if (name == "--har") {
      st.har_path = v;
    } else {
      std::string key(name.substr(2));
      for (auto& c : key) c = c == '-' ? '_' : c;
      std::optional<std::string> problem;
      if (!name.starts_with("--") || !filter.set(key, v, problem)) {
        std::fprintf(stderr, "devspaces-proxy traces: unknown flag %s (see --help)\n", argv[i]);
        return 2;
      }
      if (problem) {
        std::fprintf(stderr, "devspaces-proxy traces: --%s: %s\n", key.c_str(), problem->c_str());
        return 2;
      }
    }
  }
  if (urls.empty()) urls.push_back("http://127.0.0.1:15090");
  st.render.color = color.value_or(::isatty(1) == 1);
  st.render.duration = true;
  st.several = urls.size() > 1;

  std::vector<std::pair<http_url, std::string>> targets;
  for (const auto& url_text : urls) {
    auto url = parse_http_url(url_text);
    if (!url) {
      std::fprintf(stderr, "devspaces-proxy traces: %s is not an http://host:port URL\n",
                   url_text.c_str());
      return 2;
    }
    std::string target = url->target;
    if (target == "/") target = "/traces";
    std::string query = st.follow ? "follow=1" : "follow=0";
    if (last) query += "&last=" + std::to_string(*last);
    if (auto fq = filter.to_query(); !fq.empty()) query += "&" + fq;
    target += (target.find('?') == std::string::npos ? "?" : "&") + query;
    targets.emplace_back(std::move(*url), std::move(target));
  }

  asio::io_context ioc;
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&ioc](const boost::system::error_code&, int) { ioc.stop(); });
  int rc = 0;
  for (std::size_t k = 0; k < targets.size(); ++k) {
    ++st.streams_open;
    asio::co_spawn(ioc, follow(targets[k].first, targets[k].second, urls[k], st),
                   [&](std::exception_ptr e) {
                     if (--st.streams_open == 0 && !st.follow) {
                       signals.cancel();
                       ioc.stop();
                     }
                     if (!e) return;
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       std::fprintf(stderr, "devspaces-proxy traces: %s\n", ex.what());
                     }
                     rc = 1;
                     ioc.stop();
                   });
  }
  ioc.run();
  if (!write_har(st)) rc = 1;
  if (!st.follow && st.failures != 0) rc = 1;
  return rc;
}

}  // namespace devspaces::proxy::trace
