#include "proxy/server.hpp"
// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <sys/socket.h>

#include <exception>
#include <mutex>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/connection.hpp"
#include "proxy/io/connection_context.hpp"
#include "proxy/io/drain_signal.hpp"
#include "proxy/io/original_dst.hpp"
#include "proxy/io/socket_util.hpp"
#include "proxy/io/upstream_pool.hpp"
#include "proxy/logging.hpp"
#include "proxy/routing/router.hpp"

namespace devspaces::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using token = asio::as_tuple_t<asio::use_awaitable_t<>>;

namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static auto l = logger("listener");
  return l;
}

using io::endpoint_text;

/// SO_REUSEPORT lets every worker own an acceptor on the same port; the kernel spreads
/// connections across them.
using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

/// SO_REUSEPORT would let us share a port with another proxy of the same user unnoticed: probe
/// with a plain socket first, which fails when anything listens there already.
std::optional<std::string> probe_port_free(const tcp::endpoint& ep, direction dir) {
  asio::io_context io;
  tcp::acceptor probe(io);
  boost::system::error_code ec;
  probe.open(ep.protocol(), ec);
  if (ec) return std::nullopt;
  probe.set_option(asio::socket_base::reuse_address(true), ec);
  if (ep.address().is_v6()) probe.set_option(asio::ip::v6_only(true), ec);
  probe.bind(ep, ec);
  if (ec == asio::error::address_in_use)
    return std::string(to_string(dir)) + " listener " + endpoint_text(ep) + ": port " +
           std::to_string(ep.port()) + " is already in use";
  return std::nullopt;
}

std::optional<tcp::endpoint> kernel_original_dst(tcp::socket& s, std::error_code& ec) {
  return io::original_dst(s.native_handle(), ec);
}

}  // namespace

/// One event loop: its io_context, acceptors, upstream pool and per-worker services.
class worker {
 public:
  worker(server& owner, unsigned index)
      : owner_(owner), index_(index), guard_(asio::make_work_guard(io_)) {
    pool_.emplace(io_.get_executor());
    services_.cfg = owner.cfg_;
    services_.metrics = &owner.metrics_;
    if (owner.options_.make_router) router_ = owner.options_.make_router(io_.get_executor());
    services_.router = router_.get();
    services_.traces = owner.options_.traces;
    services_.pool = &*pool_;
    services_.draining = &owner.draining_;
    services_.drain = &drain_;
    services_.splice_after = owner.options_.splice_after;
  }

  ~worker() {
    stop();
    acceptors_.clear();
    pool_.reset();
    router_.reset();
    // Destroying the io_context destroys every suspended connection coroutine, which closes
    // its sockets: that is how remaining connections end after the drain timeout.
  }

  /// Opens an acceptor on `ep` for `dir`; the bound port, or an error line.
  std::optional<std::string> listen(const tcp::endpoint& ep, direction dir, std::uint16_t& port) {
    tcp::acceptor a(io_);
    boost::system::error_code ec;
    auto fail = [&](const char* what) {
      return std::string(to_string(dir)) + " listener " + endpoint_text(ep) + ": " + what + ": " +
             ec.message();
    };
    a.open(ep.protocol(), ec);
    if (ec) return fail("socket");
    a.set_option(asio::socket_base::reuse_address(true), ec);
    a.set_option(reuse_port(true), ec);
    if (ep.address().is_v6()) a.set_option(asio::ip::v6_only(true), ec);
    a.bind(ep, ec);
    if (ec) return fail("bind");
    a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("listen");
    port = a.local_endpoint(ec).port();
    acceptors_.push_back({std::move(a), dir});
    return std::nullopt;
  }

  void start() {
    for (auto& l : acceptors_)
      asio::co_spawn(io_, accept_loop(l.acceptor, l.dir), [](std::exception_ptr e) {
        if (e) log()->error("accept loop ended with an exception");
      });
    thread_ = std::thread([this] { io_.run(); });
  }

  /// Fires this worker's drain signal on its own thread.
  void drain() {
    asio::post(io_, [this] { drain_.fire(); });
  }

  void ping(std::shared_ptr<worker_ping> p) {
    asio::post(io_, [p] { p->answer(); });
  }

  void stop() {
    guard_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct listener {
    tcp::acceptor acceptor;
    direction dir;
  };

  asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, direction dir) {
    co_await asio::this_coro::throw_if_cancelled(false);
    auto backoff = std::chrono::milliseconds(50);
    bool warned = false;
    asio::steady_timer timer(io_);
    for (;;) {
      auto [ec, sock] = co_await acceptor.async_accept(token{});
      if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
      if (ec) {
        if (io::is_resource_exhaustion(ec)) {
          // Out of descriptors or memory: the connection waits in the backlog; try again later.
          if (!warned)
            log()->warn("accept on {} listener failed: {}; backing off", to_string(dir),
                        ec.message());
          warned = true;
          timer.expires_after(backoff);
          co_await timer.async_wait(token{});
          backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
        } else {
          log()->debug("accept on {} listener failed: {}", to_string(dir), ec.message());
        }
        continue;
      }
      if (warned) log()->info("accept on {} listener recovered", to_string(dir));
      warned = false;
      backoff = std::chrono::milliseconds(50);
      on_accept(std::move(sock), dir);
    }
  }

  /// A connection to the proxy's own listener would loop; one arriving inbound for the admin
  /// port would reach the admin server from outside the pod. Both are refused.
  bool is_refused_destination(const tcp::endpoint& dst, direction dir) const {
    const auto port = dst.port();
    const bool own = port == owner_.outbound_port_ || port == owner_.inbound_port_ ||
                     (dir == direction::inbound && port == owner_.admin_port_.load());
    if (!own) return false;
    return dst.address().is_unspecified() || io::is_local_address(dst.address());
  }

  void on_accept(tcp::socket sock, direction dir) {
    io::connection_context ctx;
    ctx.id = owner_.next_id_.fetch_add(1) + 1;
    ctx.dir = dir;
    ctx.services = &services_;
    boost::system::error_code bec;
    ctx.client = sock.remote_endpoint(bec);
    if (bec) return;  // already gone
    std::error_code ec;
    auto& lookup = owner_.options_.original_dst;
    auto dst = lookup ? lookup(sock, ec) : kernel_original_dst(sock, ec);
    if (!dst) {
      log()->debug("[C{}] no original destination ({}), closing client={}", ctx.id, ec.message(),
                   endpoint_text(ctx.client));
      return;
    }
    if (is_refused_destination(*dst, dir)) {
      log()->warn("[C{}] original destination {} is the proxy's own listener (loop), closing",
                  ctx.id, endpoint_text(*dst));
      return;
    }
    ctx.original_dst = *dst;
    boost::system::error_code ignored;
    sock.set_option(tcp::no_delay(true), ignored);
    log()->debug("[C{}] accepted dir={} client={} dst={} worker={}", ctx.id, to_string(dir),
                 endpoint_text(ctx.client), endpoint_text(ctx.original_dst), index_);
    asio::co_spawn(io_, run_connection(std::move(ctx), std::move(sock)),
                   [id = ctx.id](std::exception_ptr e) {
                     if (!e) return;
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       log()->error("[C{}] connection ended with an exception: {}", id, ex.what());
                     } catch (...) {
                       log()->error("[C{}] connection ended with an unknown exception", id);
                     }
                   });
  }

  /// Keeps connections_active and the drain count right around a connection's whole life.
  struct active_guard {
    server& owner;
    direction dir;
    active_guard(server& s, direction d) : owner(s), dir(d) { owner.connection_opened(dir); }
    ~active_guard() { owner.connection_closed(dir); }
    active_guard(const active_guard&) = delete;
    active_guard& operator=(const active_guard&) = delete;
  };

  asio::awaitable<void> run_connection(io::connection_context ctx, tcp::socket sock) {
    active_guard guard(owner_, ctx.dir);
    co_await serve_connection(std::move(ctx), std::move(sock));
  }

  server& owner_;
  unsigned index_;
  // One thread runs this context and every socket on it is used only from that thread; other
  // threads only post to it. So the reactor's per-socket locks are left out (the scheduler keeps
  // its lock for those posts).
  asio::io_context io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::optional<io::upstream_pool> pool_;
  std::unique_ptr<routing::router> router_;
  io::worker_services services_;
  io::drain_signal drain_;
  std::vector<listener> acceptors_;
  std::thread thread_;
};

server::server(std::shared_ptr<const config> cfg, proxy_metrics& metrics, server_options options)
    : cfg_(std::move(cfg)), metrics_(metrics), options_(std::move(options)) {
  admin_port_.store(cfg_->admin_port);
  for (unsigned i = 0; i < std::max(1u, cfg_->workers); ++i)
    workers_.push_back(std::make_unique<worker>(*this, i));
  worker_count_ = workers_.size();
}

server::~server() {
  stop();
}

std::optional<std::string> server::bind() {
  auto bind_all = [&](const std::vector<asio::ip::address>& addrs, std::uint16_t wanted,
                      direction dir, std::uint16_t& bound) -> std::optional<std::string> {
    std::uint16_t port = wanted;
    bool any = false;
    std::optional<std::string> first_error;
    for (const auto& addr : addrs) {
      if (port != 0)
        if (auto err = probe_port_free(tcp::endpoint(addr, port), dir)) return err;
      for (auto& w : workers_) {
        std::uint16_t got = 0;
        auto err = w->listen(tcp::endpoint(addr, port), dir, got);
        if (err) {
          // A host without IPv6 (or without ::1) still serves IPv4.
          if (addr.is_v6() && any) {
            log()->warn("{} (continuing without it)", *err);
            break;
          }
          return err;
        }
        any = true;
        port = got;
      }
    }
    bound = port;
    return first_error;
  };
  if (auto err = bind_all(options_.outbound_addresses, cfg_->outbound_port, direction::outbound,
                          outbound_port_))
    return err;
  if (auto err = bind_all(options_.inbound_addresses, cfg_->inbound_port, direction::inbound,
                          inbound_port_))
    return err;
  log()->info("listening outbound port {} inbound port {} workers {}", outbound_port_,
              inbound_port_, workers_.size());
  return std::nullopt;
}

void server::start() {
  if (started_) return;
  started_ = true;
  for (auto& w : workers_) w->start();
}

void server::drain() {
  if (draining_.exchange(true)) return;
  for (auto& w : workers_) w->drain();
}

void server::connection_opened(direction dir) {
  active_.fetch_add(1);
  metrics_.connections_active(dir).Increment();
}

void server::connection_closed(direction dir) {
  metrics_.connections_active(dir).Decrement();
  if (active_.fetch_sub(1) != 1) return;
  std::lock_guard lock(idle_mutex_);
  idle_since_ = std::chrono::steady_clock::now();
  idle_cv_.notify_all();
}

server::quiet_end server::wait_quiet(std::chrono::milliseconds quiet,
                                     std::chrono::milliseconds timeout) const {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + timeout;
  std::unique_lock lock(idle_mutex_);
  for (;;) {
    if (interrupted_) return quiet_end::interrupted;
    const auto now = clock::now();
    const bool idle = active_.load() == 0;
    if (idle && now >= idle_since_ + quiet) return quiet_end::quiet;
    if (now >= deadline) return quiet_end::timeout;
    idle_cv_.wait_until(lock, idle ? std::min(deadline, idle_since_ + quiet) : deadline);
  }
}

void server::interrupt() {
  std::lock_guard lock(idle_mutex_);
  interrupted_ = true;
  idle_cv_.notify_all();
}

std::shared_ptr<worker_ping> server::ping() {
  auto p = std::make_shared<worker_ping>();
  // After stop() nothing answers: the probe stays incomplete.
  p->expected = static_cast<unsigned>(worker_count_);
  for (auto& w : workers_) w->ping(p);
  return p;
}

void server::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& w : workers_) w->stop();
  workers_.clear();
}

bool wait_for_idle(const server& srv, std::chrono::milliseconds timeout) {
  return srv.wait_quiet(std::chrono::milliseconds(0), timeout) == server::quiet_end::quiet;
}

}  // namespace devspaces::proxy
