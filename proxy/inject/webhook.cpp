#include "proxy/inject/webhook.hpp"
// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "common/options.hpp"
#include "proxy/inject/admission.hpp"
#include "proxy/inject/namespace_watch.hpp"
#include "proxy/inject/settings.hpp"
#include "proxy/routing/space_tree.hpp"

namespace devspaces::proxy::inject {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using token = asio::as_tuple_t<asio::use_awaitable_t<>>;

namespace {

std::shared_ptr<spdlog::logger> log() {
  auto l = spdlog::get("webhook");
  return l ? l : spdlog::default_logger();
}

struct webhook_options {
  injection_settings settings;
  std::string listen = "0.0.0.0:8443";
  std::string spaces_listen = "0.0.0.0:8080";
  std::string tls_cert;
  std::string tls_key;
  std::string spaces_file;
  kube_options kube;
  std::uint64_t max_body_bytes = 4 * 1024 * 1024;
  std::chrono::milliseconds read_timeout{10000};
  std::string log_level = "info";
};

/// A file's identity: a change of any of these means "reload".
struct file_id {
  bool exists = false;
  long long mtime_ns = 0, ctime_ns = 0, size = 0;
  unsigned long long inode = 0;
  bool operator==(const file_id&) const = default;
};

file_id stat_file(const std::string& path) {
  struct stat st {};
  file_id id;
  if (::stat(path.c_str(), &st) != 0) return id;
  id.exists = true;
  id.mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  id.ctime_ns = static_cast<long long>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec;
  id.size = static_cast<long long>(st.st_size);
  id.inode = st.st_ino;
  return id;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// What /spaces serves and /inject reads: one immutable snapshot.
struct spaces_state {
  std::shared_ptr<const routing::space_tree> tree;
  std::string json;
  std::string etag;
  bool ready = false;
};

std::shared_ptr<const spaces_state> make_state(std::shared_ptr<const routing::space_tree> tree,
                                               bool ready) {
  auto s = std::make_shared<spaces_state>();
  s->tree = std::move(tree);
  s->json = s->tree->to_json() + "\n";
  s->etag = "\"" + std::to_string(std::hash<std::string>{}(s->json)) + "\"";
  s->ready = ready;
  return s;
}

/// The TLS server context, rebuilt when the certificate or key file changes (a Secret update
/// or cert-manager renewal), checked at each accept. A bad new pair keeps the old context.
class tls_store {
 public:
  tls_store(std::string cert, std::string key) : cert_(std::move(cert)), key_(std::move(key)) {}

  std::optional<std::string> load() {
    cert_id_ = stat_file(cert_);
    key_id_ = stat_file(key_);
    std::string err;
    auto ctx = build(&err);
    if (!ctx) return err;
    ctx_ = std::move(ctx);
    return std::nullopt;
  }

  std::shared_ptr<asio::ssl::context> current() {
    auto c = stat_file(cert_);
    auto k = stat_file(key_);
    if (c != cert_id_ || k != key_id_) {
      cert_id_ = c;
      key_id_ = k;
      std::string err;
      if (auto ctx = build(&err)) {
        ctx_ = std::move(ctx);
        ++reloads_;
        log()->info("TLS certificate reloaded from {}", cert_);
      } else {
        log()->error("TLS certificate reload failed ({}); keeping the previous one", err);
      }
    }
    return ctx_;
  }

 private:
  std::shared_ptr<asio::ssl::context> build(std::string* err) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    ctx->use_certificate_chain_file(cert_, ec);
    if (ec) {
      *err = "--tls-cert " + cert_ + ": " + ec.message();
      return nullptr;
    }
    ctx->use_private_key_file(key_, asio::ssl::context::pem, ec);
    if (ec) {
      *err = "--tls-key " + key_ + ": " + ec.message();
      return nullptr;
    }
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
      *err = "--tls-key " + key_ + " does not match --tls-cert " + cert_;
      return nullptr;
    }
    return ctx;
  }

  std::string cert_, key_;
  file_id cert_id_, key_id_;
  std::shared_ptr<asio::ssl::context> ctx_;
  unsigned reloads_ = 0;
};

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

response make_response(unsigned version, bool keep_alive, http::status status,
                       std::string content_type, std::string body) {
  response res(status, version);
  res.set(http::field::server, "devspaces-proxy-webhook");
  res.set(http::field::content_type, content_type);
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

response text(const request& req, http::status status, std::string line) {
  return make_response(req.version(), req.keep_alive(), status, "text/plain; charset=utf-8",
                       "devspaces-proxy webhook: " + line + "\n");
}

class webhook_app {
 public:
  explicit webhook_app(webhook_options opts)
      : opts_(std::move(opts)),
        tls_(opts_.tls_cert, opts_.tls_key),
        https_acceptor_(io_),
        http_acceptor_(io_),
        signals_(io_, SIGTERM, SIGINT) {}

  int run() {
    if (auto e = check_settings(opts_.settings)) return fail(2, *e);
    if (opts_.tls_cert.empty() || opts_.tls_key.empty())
      return fail(2, "--tls-cert and --tls-key are required");
    if (auto e = tls_.load()) return fail(2, *e);

    // The tree: from the API server in a cluster, else from --spaces-file, else empty.
    if (opts_.kube.api_url.empty() && opts_.spaces_file.empty()) {
      const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
      const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
      if (host && port && stat_file(opts_.kube.token_file).exists) {
        std::string h = host;
        if (h.find(':') != std::string::npos) h = "[" + h + "]";
        opts_.kube.api_url = "https://" + h + ":" + port;
      }
    }
    if (!opts_.kube.api_url.empty()) {
      state_.store(make_state(std::make_shared<routing::space_tree>(), false));
      watch_ = std::make_unique<namespace_watch>(
          io_, opts_.kube, [this](std::shared_ptr<const routing::space_tree> t) {
            state_.store(make_state(std::move(t), true));
          });
    } else if (!opts_.spaces_file.empty()) {
      auto r = load_file();
      if (!r) return fail(2, "--spaces-file " + opts_.spaces_file + ": " + file_error_);
    } else {
      log()->warn(
          "no --kube-api, no service account and no --spaces-file: every space is a "
          "root (no parent spaces)");
      state_.store(make_state(std::make_shared<routing::space_tree>(), true));
    }

    std::string https_addr, http_addr;
    if (auto e = bind(https_acceptor_, opts_.listen, "--listen", &https_addr)) return fail(1, *e);
    if (!opts_.spaces_listen.empty()) {
      if (auto e = bind(http_acceptor_, opts_.spaces_listen, "--spaces-listen", &http_addr))
        return fail(1, *e);
    }
    std::printf("devspaces-proxy webhook listening https=%s spaces=%s\n", https_addr.c_str(),
                http_addr.empty() ? "off" : http_addr.c_str());
    std::fflush(stdout);
    log()->info(
        "listening: https {} (POST /inject, GET /spaces), http {} (GET /spaces); tree "
        "from {}",
        https_addr, http_addr.empty() ? "off" : http_addr,
        watch_ ? opts_.kube.api_url : (opts_.spaces_file.empty() ? "nowhere" : opts_.spaces_file));

    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      log()->info("signal {}: stopping", sig);
      if (watch_) watch_->stop();
      io_.stop();
    });
    if (watch_) watch_->start();
    spawn(accept_loop(true));
    if (http_acceptor_.is_open()) spawn(accept_loop(false));
    io_.run();
    return 0;
  }

 private:
  static int fail(int code, const std::string& line) {
    std::fprintf(stderr, "devspaces-proxy webhook: %s\n", line.c_str());
    return code;
  }

  void spawn(asio::awaitable<void> a) {
    asio::co_spawn(io_, std::move(a), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log()->error("webhook task ended: {}", ex.what());
      }
    });
  }

  std::optional<std::string> bind(tcp::acceptor& acc, const std::string& addr,
                                  const std::string& flag, std::string* bound) {
    auto colon = addr.rfind(':');
    if (colon == std::string::npos) return flag + " " + addr + ": expected host:port";
    std::string host = addr.substr(0, colon);
    if (host.starts_with("[") && host.ends_with("]")) host = host.substr(1, host.size() - 2);
    auto port = common::parse_uint(std::string_view(addr).substr(colon + 1), 65535);
    boost::system::error_code ec;
    auto ip = asio::ip::make_address(host, ec);
    if (ec || !port) return flag + " " + addr + ": expected an IP address and a port";
    tcp::endpoint ep(ip, static_cast<std::uint16_t>(*port));
    acc.open(ep.protocol(), ec);
    if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acc.bind(ep, ec);
    if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return flag + " " + addr + ": " + ec.message();
    auto local = acc.local_endpoint();
    *bound = (local.address().is_v6() ? "[" + local.address().to_string() + "]"
                                      : local.address().to_string()) +
             ":" + std::to_string(local.port());
    return std::nullopt;
  }

  // --spaces-file: (re)loads when the file changed; a bad version keeps the last good tree.
  bool load_file() {
    auto id = stat_file(opts_.spaces_file);
    if (state_.load() && id == file_id_) return true;
    file_id_ = id;
    auto text = read_file(opts_.spaces_file);
    if (!text || text->empty()) {
      file_error_ = "cannot be read or is empty";
    } else {
      auto r = routing::build_space_tree("default", {}, *text);
      if (r.tree) {
        state_.store(make_state(r.tree, true));
        return true;
      }
      file_error_ = r.error;
    }
    if (state_.load())
      log()->error("--spaces-file {}: {}; the last good tree stays", opts_.spaces_file,
                   file_error_);
    return false;
  }

  std::shared_ptr<const spaces_state> state() {
    if (!watch_ && !opts_.spaces_file.empty()) load_file();
    return state_.load();
  }

  response handle(const request& req, bool tls) {
    std::string_view target(req.target().data(), req.target().size());
    auto path = target.substr(0, target.find('?'));
    if (path == "/inject" && tls) {
      if (req.method() != http::verb::post)
        return text(req, http::status::method_not_allowed, "use POST with an AdmissionReview");
      auto st = state();
      auto a = answer_admission(req.body(), *st->tree, opts_.settings);
      if (a.status == 200)
        log()->info("{}", a.log_line);
      else
        log()->warn("{}", a.log_line);
      return make_response(req.version(), req.keep_alive(), static_cast<http::status>(a.status),
                           a.content_type, std::move(a.body));
    }
    if (req.method() != http::verb::get && req.method() != http::verb::head)
      return text(req, http::status::method_not_allowed, "use GET");
    if (path == "/spaces") {
      auto st = state();
      const auto inm = req[http::field::if_none_match];
      if (!inm.empty() && std::string_view(inm.data(), inm.size()) == st->etag) {
        auto res = make_response(req.version(), req.keep_alive(), http::status::not_modified,
                                 "application/json", "");
        res.set(http::field::etag, st->etag);
        res.content_length(boost::none);
        res.erase(http::field::content_length);
        return res;
      }
      auto res = make_response(req.version(), req.keep_alive(), http::status::ok,
                               "application/json", st->json);
      res.set(http::field::etag, st->etag);
      res.set(http::field::cache_control, "no-cache");
      return res;
    }
    if (path == "/healthz") return text(req, http::status::ok, "ok");
    if (path == "/readyz") {
      return state()->ready ? text(req, http::status::ok, "ready")
                            : text(req, http::status::service_unavailable, "no namespace list yet");
    }
    return text(req, http::status::not_found, "not found");
  }

  template <class Stream>
  asio::awaitable<void> serve(Stream& stream, bool tls) {
    auto& lowest = beast::get_lowest_layer(stream);
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(opts_.max_body_bytes);
      parser.header_limit(64 * 1024);
      lowest.expires_after(opts_.read_timeout);
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, token{});
      if (ec == http::error::end_of_stream || ec == asio::ssl::error::stream_truncated) break;
      if (ec == beast::error::timeout) {
        log()->info("client did not send a whole request within {}ms; closed",
                    opts_.read_timeout.count());
        co_return;
      }
      if (ec) {
        const bool too_big = ec == http::error::body_limit;
        if (!too_big && n == 0 && !parser.got_some()) break;
        request dummy;
        dummy.version(11);
        dummy.keep_alive(false);
        auto res = too_big
                       ? text(dummy, http::status::payload_too_large,
                              "body larger than " + std::to_string(opts_.max_body_bytes) + " bytes")
                       : text(dummy, http::status::bad_request,
                              "malformed HTTP request (" + ec.message() + ")");
        log()->warn("request refused: {}", ec.message());
        lowest.expires_after(std::chrono::seconds(5));
        co_await http::async_write(stream, res, token{});
        // Lingering close: read and drop what the client still sends, briefly, so it sees the
        // answer rather than a reset.
        lowest.expires_after(std::chrono::seconds(1));
        std::array<char, 16384> sink;
        for (;;) {
          auto [rec, rn] = co_await stream.async_read_some(asio::buffer(sink), token{});
          if (rec) break;
        }
        co_return;
      }
      auto res = handle(parser.get(), tls);
      lowest.expires_after(opts_.read_timeout);
      auto [wec, wn] = co_await http::async_write(stream, res, token{});
      if (wec || !res.keep_alive()) break;
    }
  }

  asio::awaitable<void> https_session(tcp::socket socket) {
    auto ctx = tls_.current();
    asio::ssl::stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *ctx);
    beast::get_lowest_layer(stream).expires_after(opts_.read_timeout);
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, token{});
    if (hec) {
      log()->debug("TLS handshake failed: {}", hec.message());
      co_return;
    }
    co_await serve(stream, true);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(1));
    co_await stream.async_shutdown(token{});
  }

  asio::awaitable<void> http_session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    co_await serve(stream, false);
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  asio::awaitable<void> accept_loop(bool tls) {
    auto& acc = tls ? https_acceptor_ : http_acceptor_;
    for (;;) {
      auto [ec, socket] = co_await acc.async_accept(token{});
      if (ec == asio::error::operation_aborted) co_return;
      if (ec) {
        // Out of descriptors and the like: keep serving what is open.
        log()->warn("accept: {}", ec.message());
        asio::steady_timer t(io_);
        t.expires_after(std::chrono::milliseconds(100));
        co_await t.async_wait(token{});
        continue;
      }
      if (tls)
        spawn(https_session(std::move(socket)));
      else
        spawn(http_session(std::move(socket)));
    }
  }

  webhook_options opts_;
  asio::io_context io_{1};
  tls_store tls_;
  tcp::acceptor https_acceptor_;
  tcp::acceptor http_acceptor_;
  asio::signal_set signals_;
  std::unique_ptr<namespace_watch> watch_;
  std::atomic<std::shared_ptr<const spaces_state>> state_;
  file_id file_id_;
  std::string file_error_;
};

std::optional<std::string> getenv_opt(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (!v) return std::nullopt;
  return std::string(v);
}

}  // namespace

int run_webhook_cli(int argc, char** argv) {
  webhook_options opts;
  auto specs = injection_options(opts.settings);
  using err = std::optional<std::string>;
  auto text_to = [](std::string& out) {
    return [&out](std::string_view v) -> err {
      out = std::string(v);
      return std::nullopt;
    };
  };
  specs.push_back({"--listen", "DEVSPACES_WEBHOOK_LISTEN", "0.0.0.0:8443",
                   "HTTPS address: POST /inject (AdmissionReview), GET /spaces",
                   text_to(opts.listen)});
  specs.push_back({"--spaces-listen", "DEVSPACES_WEBHOOK_SPACES_LISTEN", "0.0.0.0:8080",
                   "plain HTTP address serving GET /spaces to the proxies (empty: off)",
                   text_to(opts.spaces_listen)});
  specs.push_back({"--tls-cert", "DEVSPACES_WEBHOOK_TLS_CERT", "", "PEM certificate (chain)",
                   text_to(opts.tls_cert)});
  specs.push_back(
      {"--tls-key", "DEVSPACES_WEBHOOK_TLS_KEY", "", "PEM private key", text_to(opts.tls_key)});
  specs.push_back({"--spaces-file", "DEVSPACES_SPACES_FILE", "",
                   "JSON space tree, used outside a cluster (no service account)",
                   text_to(opts.spaces_file)});
  specs.push_back({"--kube-api", "DEVSPACES_KUBE_API", "",
                   "API server URL (default: the in-cluster service account's)",
                   text_to(opts.kube.api_url)});
  specs.push_back({"--kube-token-file", "DEVSPACES_KUBE_TOKEN_FILE", opts.kube.token_file,
                   "bearer token file for the API server", text_to(opts.kube.token_file)});
  specs.push_back({"--kube-ca-file", "DEVSPACES_KUBE_CA_FILE", opts.kube.ca_file,
                   "CA bundle for the API server", text_to(opts.kube.ca_file)});
  specs.push_back({"--max-body-bytes", "DEVSPACES_WEBHOOK_MAX_BODY_BYTES", "4194304",
                   "largest request body accepted (413 above)", [&opts](std::string_view v) -> err {
                     auto n = common::parse_uint(v, 1ull << 30);
                     if (!n || *n == 0) return "must be a positive number of bytes";
                     opts.max_body_bytes = *n;
                     return std::nullopt;
                   }});
  specs.push_back({"--read-timeout", "DEVSPACES_WEBHOOK_READ_TIMEOUT", "10s",
                   "time a client has to send a whole request",
                   common::duration_setter(opts.read_timeout)});
  specs.push_back({"--log-level", "DEVSPACES_LOG_LEVEL", "info",
                   "trace, debug, info, warn (or warning), error, off; any case",
                   common::log_level_setter(opts.log_level)});
  std::vector<std::string> args(argv + 2, argv + argc);
  auto parsed = common::parse_options(specs, args, getenv_opt);
  if (parsed.help) {
    std::fputs(common::render_help("devspaces-proxy webhook [flags]\nThe admission webhook that "
                                   "injects devspaces-proxy into the pods of dev spaces.",
                                   specs)
                   .c_str(),
               stdout);
    return 0;
  }
  if (parsed.error) {
    std::fprintf(stderr, "devspaces-proxy webhook: %s\n", parsed.error->c_str());
    return 2;
  }
  if (!parsed.positional.empty()) {
    std::fprintf(stderr, "devspaces-proxy webhook: unexpected argument '%s'\n",
                 parsed.positional.front().c_str());
    return 2;
  }
  auto logger = spdlog::stderr_color_mt("webhook");
  logger->set_level(spdlog::level::from_str(opts.log_level));
  ::signal(SIGPIPE, SIG_IGN);
  webhook_app app(std::move(opts));
  return app.run();
}

int run_wait_ready_cli(int argc, char** argv) {
  std::uint16_t port = 15090;
  std::chrono::milliseconds timeout{120000};
  std::vector<common::option_spec> specs;
  specs.push_back(
      {"--admin-port", "", "15090", "the proxy's admin port", common::port_setter(port)});
  specs.push_back(
      {"--timeout", "", "120s", "give up after this long", common::duration_setter(timeout)});
  std::vector<std::string> args(argv + 2, argv + argc);
  auto parsed = common::parse_options(
      specs, args, [](const std::string&) { return std::optional<std::string>(); });
  if (parsed.error) {
    std::fprintf(stderr, "devspaces-proxy wait-ready: %s\n", parsed.error->c_str());
    return 2;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  asio::io_context io;
  while (std::chrono::steady_clock::now() < deadline) {
    beast::tcp_stream stream(io);
    boost::system::error_code ec;
    stream.expires_after(std::chrono::seconds(1));
    stream.connect(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port), ec);
    if (!ec) {
      http::request<http::empty_body> req(http::verb::get, "/readyz", 11);
      req.set(http::field::host, "127.0.0.1");
      req.keep_alive(false);
      http::write(stream, req, ec);
      beast::flat_buffer buf;
      http::response<http::string_body> res;
      if (!ec) http::read(stream, buf, res, ec);
      if (!ec && res.result() == http::status::ok) return 0;
    }
    // The proxy is starting; asking again shortly is all a postStart hook can do.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::fprintf(stderr, "devspaces-proxy wait-ready: /readyz on port %u not ready after %lldms\n",
               port, static_cast<long long>(timeout.count()));
  return 1;
}

}  // namespace devspaces::proxy::inject
