#include "proxy/inject/namespace_watch.hpp"
// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <fstream>
#include <optional>
#include <sstream>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "common/options.hpp"

namespace devspaces::proxy::inject {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using asio::ip::tcp;
using token = asio::as_tuple_t<asio::use_awaitable_t<>>;

namespace {

std::shared_ptr<spdlog::logger> log() {
  auto l = spdlog::get("webhook");
  return l ? l : spdlog::default_logger();
}

constexpr auto connect_timeout = std::chrono::seconds(5);
constexpr auto request_timeout = std::chrono::seconds(30);
constexpr int watch_timeout_seconds = 300;
constexpr auto max_backoff = std::chrono::seconds(30);

struct url_parts {
  bool tls = false;
  std::string host, port, prefix;
};

std::optional<url_parts> parse_url(const std::string& url) {
  url_parts u;
  std::string rest;
  if (url.starts_with("https://")) {
    u.tls = true;
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else {
    return std::nullopt;
  }
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  u.prefix = slash == std::string::npos ? "" : rest.substr(slash);
  while (u.prefix.ends_with("/")) u.prefix.pop_back();
  if (hostport.starts_with("[")) {
    auto close = hostport.find(']');
    if (close == std::string::npos) return std::nullopt;
    u.host = hostport.substr(1, close - 1);
    u.port = close + 1 < hostport.size() && hostport[close + 1] == ':' ? hostport.substr(close + 2)
                                                                       : (u.tls ? "443" : "80");
  } else {
    auto colon = hostport.rfind(':');
    u.host = hostport.substr(0, colon);
    u.port = colon == std::string::npos ? (u.tls ? "443" : "80") : hostport.substr(colon + 1);
  }
  if (u.host.empty()) return std::nullopt;
  return u;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string label(const json::object& ns, std::string_view key) {
  const auto* md = ns.if_contains("metadata");
  if (md == nullptr || !md->is_object()) return {};
  const auto* labels = md->get_object().if_contains("labels");
  if (labels == nullptr || !labels->is_object()) return {};
  const auto* v = labels->get_object().if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::string meta_string(const json::object& obj, std::string_view key) {
  const auto* md = obj.if_contains("metadata");
  if (md == nullptr || !md->is_object()) return {};
  const auto* v = md->get_object().if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

/// The outcome of one list or watch request.
enum class watch_end { resumed, gone, failed };

}  // namespace

routing::space_tree_result tree_from_namespaces(const std::map<std::string, std::string>& spaces) {
  json::object entries;
  for (const auto& [name, parent] : spaces) {
    json::object e;
    if (!parent.empty()) e["parent"] = parent;
    entries[name] = std::move(e);
  }
  // The own chain adds nothing: "default" with no parents only names a root.
  return routing::build_space_tree("default", {},
                                   json::serialize(json::object{{"spaces", std::move(entries)}}));
}

struct namespace_watch::impl : std::enable_shared_from_this<impl> {
  asio::io_context& io;
  kube_options opts;
  tree_callback on_tree;
  url_parts url;
  bool stopped = false;
  asio::steady_timer backoff_timer;
  std::map<std::string, std::string> spaces;  // space namespace → parent label
  std::string resource_version;
  std::shared_ptr<const routing::space_tree> last_published;

  impl(asio::io_context& i, kube_options o, tree_callback cb)
      : io(i), opts(std::move(o)), on_tree(std::move(cb)), backoff_timer(i) {}

  void apply(const std::string& type, const json::object& ns) {
    const std::string name = meta_string(ns, "name");
    if (name.empty()) return;
    if (type == "DELETED" || label(ns, "azds.io/space") != "true") {
      spaces.erase(name);
      return;
    }
    std::string parent = common::to_lower(label(ns, "azds.io/parent-space"));
    if (!parent.empty() && !common::is_dns_label(parent)) {
      log()->warn("namespace {}: label azds.io/parent-space=\"{}\" is not a DNS label; ignored",
                  name, parent);
      parent.clear();
    }
    spaces[name] = parent;
  }

  void publish() {
    auto r = tree_from_namespaces(spaces);
    if (!r.tree) {
      log()->error("namespaces give no valid space tree ({}); the last good tree stays", r.error);
      return;
    }
    if (last_published && last_published->parents() == r.tree->parents()) return;
    last_published = r.tree;
    log()->info("space tree: {} spaces (resourceVersion {})", r.tree->parents().size(),
                resource_version);
    on_tree(r.tree);
  }

  http::request<http::empty_body> make_request(const std::string& target) {
    http::request<http::empty_body> req(http::verb::get, url.prefix + target, 11);
    req.set(http::field::host, url.host);
    req.set(http::field::user_agent, "devspaces-proxy-webhook");
    req.set(http::field::accept, "application/json");
    auto tok = read_text_file(opts.token_file);
    if (!tok.empty()) req.set(http::field::authorization, "Bearer " + tok);
    return req;
  }

  // One request on a fresh connection; `on_head` sees the status, `on_data` the body bytes.
  template <class Stream>
  asio::awaitable<watch_end> exchange(Stream& stream, const std::string& target, bool streaming,
                                      std::string& body, std::size_t& handled) {
    auto& lowest = beast::get_lowest_layer(stream);
    auto req = make_request(target);
    lowest.expires_after(request_timeout);
    auto [wec, wn] = co_await http::async_write(stream, req, token{});
    if (wec) {
      log()->warn("API server {}: {}", target, wec.message());
      co_return watch_end::failed;
    }
    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    lowest.expires_after(streaming ? std::chrono::seconds(watch_timeout_seconds + 60)
                                   : request_timeout);
    auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, token{});
    if (hec) {
      log()->warn("API server {}: {}", target, hec.message());
      co_return watch_end::failed;
    }
    const unsigned status = parser.get().result_int();
    if (status == 410) co_return watch_end::gone;
    std::array<char, 16384> chunk;
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      // read_some: each chunk of a watch stream is handled as it arrives.
      auto [rec, rn] = co_await http::async_read_some(stream, buffer, parser, token{});
      if (rec == http::error::need_buffer) rec = {};
      const std::size_t got = chunk.size() - parser.get().body().size;
      body.append(chunk.data(), got);
      if (status == 200 && streaming) {
        auto end = handle_lines(body, handled);
        if (end) co_return *end;
      }
      if (rec) {
        if (streaming && status == 200) co_return watch_end::resumed;
        log()->warn("API server {}: {}", target, rec.message());
        co_return watch_end::failed;
      }
    }
    if (status != 200) {
      log()->warn("API server {}: HTTP {} {}", target, status, body.substr(0, 200));
      co_return watch_end::failed;
    }
    if (streaming) {
      body += "\n";
      auto end = handle_lines(body, handled);
      if (end) co_return *end;
    }
    co_return watch_end::resumed;
  }

  // Watch events, one JSON object a line. Returns an end when the stream must stop.
  std::optional<watch_end> handle_lines(std::string& body, std::size_t& handled) {
    bool changed = false;
    std::optional<watch_end> end;
    std::size_t nl;
    while (!end && (nl = body.find('\n', handled)) != std::string::npos) {
      std::string_view line(body.data() + handled, nl - handled);
      handled = nl + 1;
      if (line.find_first_not_of(" \r\t") == std::string_view::npos) continue;
      boost::system::error_code ec;
      auto ev = json::parse(line, ec);
      const auto* obj = ev.if_object();
      if (ec || obj == nullptr) {
        log()->warn("watch: a line that is not a JSON event; relisting");
        end = watch_end::gone;
        break;
      }
      const auto* type_v = obj->if_contains("type");
      const auto* o = obj->if_contains("object");
      const std::string type =
          type_v && type_v->is_string() ? std::string(type_v->get_string()) : std::string();
      if (o == nullptr || !o->is_object()) continue;
      if (type == "ERROR") {
        const auto* code = o->get_object().if_contains("code");
        const bool gone = code && code->is_int64() && code->get_int64() == 410;
        log()->info("watch: ERROR event{}; relisting", gone ? " 410 Gone" : "");
        end = watch_end::gone;
        break;
      }
      const std::string rv = meta_string(o->get_object(), "resourceVersion");
      if (!rv.empty()) resource_version = rv;
      if (type == "BOOKMARK") continue;
      if (type == "ADDED" || type == "MODIFIED" || type == "DELETED") {
        apply(type, o->get_object());
        changed = true;
      }
    }
    if (handled > 65536) {
      body.erase(0, handled);
      handled = 0;
    }
    if (changed) publish();
    return end;
  }

  template <class Stream>
  asio::awaitable<watch_end> list_on(Stream& stream) {
    std::map<std::string, std::string> fresh;
    std::string cont;
    std::string rv;
    for (;;) {
      std::string target = "/api/v1/namespaces?limit=500";
      if (!cont.empty()) target += "&continue=" + cont;
      std::string body;
      std::size_t handled = 0;
      auto end = co_await exchange(stream, target, false, body, handled);
      if (end != watch_end::resumed) co_return end == watch_end::gone ? watch_end::failed : end;
      boost::system::error_code ec;
      auto doc = json::parse(body, ec);
      if (ec || !doc.is_object()) {
        log()->warn("API server: namespace list is not JSON");
        co_return watch_end::failed;
      }
      const auto& list = doc.get_object();
      const auto* items = list.if_contains("items");
      if (items != nullptr && items->is_array()) {
        auto saved = std::move(spaces);
        spaces = std::move(fresh);
        for (const auto& item : items->get_array())
          if (item.is_object()) apply("ADDED", item.get_object());
        fresh = std::move(spaces);
        spaces = std::move(saved);
      }
      rv = meta_string(list, "resourceVersion");
      cont = meta_string(list, "continue");
      if (cont.empty()) break;
      // A fresh connection per page keeps the exchange simple.
      co_return co_await finish_list_pages(std::move(fresh), rv, cont);
    }
    spaces = std::move(fresh);
    resource_version = rv;
    co_return watch_end::resumed;
  }

  asio::awaitable<watch_end> finish_list_pages(std::map<std::string, std::string> fresh,
                                               std::string rv, std::string cont) {
    while (!cont.empty()) {
      std::string body;
      std::size_t handled = 0;
      auto end =
          co_await request("/api/v1/namespaces?limit=500&continue=" + cont, false, body, handled);
      if (end != watch_end::resumed) co_return watch_end::failed;
      boost::system::error_code ec;
      auto doc = json::parse(body, ec);
      if (ec || !doc.is_object()) co_return watch_end::failed;
      const auto& list = doc.get_object();
      auto saved = std::move(spaces);
      spaces = std::move(fresh);
      if (const auto* items = list.if_contains("items"); items && items->is_array())
        for (const auto& item : items->get_array())
          if (item.is_object()) apply("ADDED", item.get_object());
      fresh = std::move(spaces);
      spaces = std::move(saved);
      rv = meta_string(list, "resourceVersion");
      cont = meta_string(list, "continue");
    }
    spaces = std::move(fresh);
    resource_version = rv;
    co_return watch_end::resumed;
  }

  // Connects (TLS when the URL says so) and runs one request: a list page or a watch.
  asio::awaitable<watch_end> request(const std::string& target, bool streaming, std::string& body,
                                     std::size_t& handled, bool as_list = false) {
    tcp::resolver resolver(io);
    auto [rec, results] = co_await resolver.async_resolve(url.host, url.port, token{});
    if (rec) {
      log()->warn("API server {}: {}", url.host, rec.message());
      co_return watch_end::failed;
    }
    if (!url.tls) {
      beast::tcp_stream stream(io);
      stream.expires_after(connect_timeout);
      auto [cec, ep] = co_await stream.async_connect(results, token{});
      if (cec) {
        log()->warn("API server {}:{}: {}", url.host, url.port, cec.message());
        co_return watch_end::failed;
      }
      if (as_list) co_return co_await list_on(stream);
      co_return co_await exchange(stream, target, streaming, body, handled);
    }
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_verify_mode(asio::ssl::verify_peer);
    boost::system::error_code ec;
    ctx.load_verify_file(opts.ca_file, ec);
    if (ec) {
      log()->warn("API server CA {}: {}", opts.ca_file, ec.message());
      co_return watch_end::failed;
    }
    asio::ssl::stream<beast::tcp_stream> stream(io, ctx);
    SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str());
    boost::system::error_code aec;
    auto addr = asio::ip::make_address(url.host, aec);
    if (aec)
      stream.set_verify_callback(asio::ssl::host_name_verification(url.host));
    else
      stream.set_verify_callback(asio::ssl::host_name_verification(addr.to_string()));
    auto& lowest = beast::get_lowest_layer(stream);
    lowest.expires_after(connect_timeout);
    auto [cec, ep] = co_await lowest.async_connect(results, token{});
    if (cec) {
      log()->warn("API server {}:{}: {}", url.host, url.port, cec.message());
      co_return watch_end::failed;
    }
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, token{});
    if (hec) {
      log()->warn("API server TLS handshake: {}", hec.message());
      co_return watch_end::failed;
    }
    if (as_list) co_return co_await list_on(stream);
    co_return co_await exchange(stream, target, streaming, body, handled);
  }

  asio::awaitable<void> wait(std::chrono::milliseconds d) {
    backoff_timer.expires_after(d);
    co_await backoff_timer.async_wait(token{});
  }

  asio::awaitable<void> run() {
    auto self = shared_from_this();
    std::chrono::milliseconds backoff(250);
    bool need_list = true;
    while (!stopped) {
      if (need_list) {
        std::string unused;
        std::size_t h = 0;
        auto r = co_await request("", false, unused, h, true);
        if (stopped) break;
        if (r != watch_end::resumed) {
          log()->warn("namespace list failed; the last good space tree stays; retry in {}ms",
                      backoff.count());
          co_await wait(backoff);
          backoff = std::min<std::chrono::milliseconds>(backoff * 2, max_backoff);
          continue;
        }
        need_list = false;
        backoff = std::chrono::milliseconds(250);
        last_published.reset();
        publish();
      }
      std::string body;
      std::size_t handled = 0;
      const std::string target =
          "/api/v1/namespaces?watch=true&allowWatchBookmarks=true&"
          "resourceVersion=" +
          resource_version + "&timeoutSeconds=" + std::to_string(watch_timeout_seconds);
      auto r = co_await request(target, true, body, handled);
      if (stopped) break;
      if (r == watch_end::gone) {
        need_list = true;
        continue;
      }
      if (r == watch_end::failed) {
        co_await wait(backoff);
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, max_backoff);
        continue;
      }
      backoff = std::chrono::milliseconds(250);
    }
  }
};

namespace_watch::namespace_watch(asio::io_context& io, kube_options opts, tree_callback on_tree)
    : impl_(std::make_shared<impl>(io, std::move(opts), std::move(on_tree))) {}

namespace_watch::~namespace_watch() {
  stop();
}

void namespace_watch::start() {
  auto u = parse_url(impl_->opts.api_url);
  if (!u) {
    log()->error("--kube-api {}: not an http(s):// URL", impl_->opts.api_url);
    return;
  }
  impl_->url = *u;
  asio::co_spawn(impl_->io, impl_->run(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log()->error("namespace watch stopped: {}", ex.what());
    }
  });
}

void namespace_watch::stop() {
  impl_->stopped = true;
  impl_->backoff_timer.cancel();
}

}  // namespace devspaces::proxy::inject
