// The c-ares backend of the resolver, driven by the worker's io_context: c-ares tells us which
// sockets it wants watched (sock_state_cb), asio waits for readiness, and ares_process_fd does
// the work; a steady_timer covers c-ares' retransmit and query timeouts.
#include <ares.h>
#include <arpa/nameser.h>

#include <cstring>
#include <mutex>
#include <unordered_map>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "proxy/routing/resolver.hpp"

namespace devspaces::proxy::routing {

namespace asio = boost::asio;

namespace {

class dns_backend final : public resolver_backend {
 public:
  explicit dns_backend(asio::any_io_executor ex) : ex_(ex), timer_(ex) {}

  ~dns_backend() override {
    destroying_ = true;
    timer_.cancel();
    // ares_destroy fails pending queries with ARES_EDESTRUCTION and reports its sockets closed.
    if (channel_ != nullptr) ares_destroy(channel_);
    for (auto& [fd, w] : watches_) close_watch(*w);
    watches_.clear();
  }

  dns_backend(const dns_backend&) = delete;
  dns_backend& operator=(const dns_backend&) = delete;

  std::string init(const dns_backend_options& o) {
    static std::once_flag once;
    static int lib_status = ARES_SUCCESS;
    std::call_once(once, [] { lib_status = ares_library_init(ARES_LIB_INIT_ALL); });
    if (lib_status != ARES_SUCCESS) return std::string("c-ares: ") + ares_strerror(lib_status);

    ares_options opts{};
    opts.sock_state_cb = &dns_backend::on_sock_state;
    opts.sock_state_cb_data = this;
    opts.timeout = static_cast<int>(o.query_timeout.count());
    opts.tries = o.tries;
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    if (int rc = ares_init_options(&channel_, &opts, mask); rc != ARES_SUCCESS) {
      channel_ = nullptr;
      return std::string("c-ares init: ") + ares_strerror(rc);
    }
    if (!o.servers.empty()) {
      if (int rc = ares_set_servers_ports_csv(channel_, o.servers.c_str()); rc != ARES_SUCCESS) {
        return "c-ares servers \"" + o.servers + "\": " + ares_strerror(rc);
      }
    }
    return {};
  }

  void async_lookup(const std::string& name, std::function<void(backend_answer)> done) override {
    auto* q = new query{this, name, std::move(done), ns_t_a};
    ares_query(channel_, name.c_str(), ns_c_in, ns_t_a, &dns_backend::on_answer, q);
    update_timer();
  }

 private:
  struct query {
    dns_backend* self;
    std::string name;
    std::function<void(backend_answer)> done;
    int type;
  };

  // One socket c-ares asked us to watch. Handlers hold it by shared_ptr and check `closed`
  // before touching the backend: c-ares may close (and reuse) the fd at any ares_process_fd.
  struct watch {
    watch(asio::any_io_executor ex, int fd) : desc(std::move(ex)), fd(fd) {}
    asio::posix::stream_descriptor desc;
    int fd;
    bool want_read = false, want_write = false;
    bool reading = false, writing = false;
    bool closed = false;
  };

  static void close_watch(watch& w) {
    w.closed = true;
    // The fd belongs to c-ares: stop watching it without closing it.
    (void)w.desc.release();
  }

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<dns_backend*>(data);
    auto it = self->watches_.find(fd);
    if (readable == 0 && writable == 0) {
      if (it != self->watches_.end()) {
        close_watch(*it->second);
        self->watches_.erase(it);
      }
      return;
    }
    if (self->destroying_) return;
    if (it == self->watches_.end()) {
      auto w = std::make_shared<watch>(self->ex_, fd);
      boost::system::error_code ec;
      w->desc.assign(fd, ec);  // never throw through c-ares; its timer still ends the query
      if (ec) return;
      it = self->watches_.emplace(fd, std::move(w)).first;
    }
    it->second->want_read = readable != 0;
    it->second->want_write = writable != 0;
    self->arm(it->second);
  }

  void arm(const std::shared_ptr<watch>& w) {
    if (w->want_read && !w->reading) {
      w->reading = true;
      w->desc.async_wait(asio::posix::stream_descriptor::wait_read,
                         [this, w](boost::system::error_code ec) {
                           w->reading = false;
                           if (ec || w->closed) return;
                           ares_process_fd(channel_, w->fd, ARES_SOCKET_BAD);
                           if (!w->closed) arm(w);
                           update_timer();
                         });
    }
    if (w->want_write && !w->writing) {
      w->writing = true;
      w->desc.async_wait(asio::posix::stream_descriptor::wait_write,
                         [this, w](boost::system::error_code ec) {
                           w->writing = false;
                           if (ec || w->closed) return;
                           ares_process_fd(channel_, ARES_SOCKET_BAD, w->fd);
                           if (!w->closed) arm(w);
                           update_timer();
                         });
    }
  }

  void update_timer() {
    if (destroying_) return;
    timeval tv{};
    if (ares_timeout(channel_, nullptr, &tv) == nullptr) {
      timer_.cancel();
      return;
    }
    timer_.expires_after(std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec));
    timer_.async_wait([this, alive = std::weak_ptr<int>(alive_)](boost::system::error_code ec) {
      if (ec || alive.expired() || destroying_) return;
      ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      update_timer();
    });
  }

  static void on_answer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
    auto* q = static_cast<query*>(arg);
    if (status == ARES_EDESTRUCTION || q->self->destroying_) {
      delete q;
      return;
    }
    backend_answer a;
    if (status == ARES_SUCCESS && q->type == ns_t_a) {
      ares_addrttl ttls[8];
      int n = 8;
      hostent* host = nullptr;
      int rc = ares_parse_a_reply(abuf, alen, &host, ttls, &n);
      if (host != nullptr) ares_free_hostent(host);
      if (rc == ARES_SUCCESS && n > 0) {
        asio::ip::address_v4::bytes_type b;
        std::memcpy(b.data(), &ttls[0].ipaddr, 4);
        a = {lookup_status::found, asio::ip::address_v4(b), std::chrono::seconds(ttls[0].ttl)};
      } else {
        status = rc == ARES_SUCCESS ? ARES_ENODATA : rc;
      }
    } else if (status == ARES_SUCCESS) {
      ares_addr6ttl ttls[8];
      int n = 8;
      hostent* host = nullptr;
      int rc = ares_parse_aaaa_reply(abuf, alen, &host, ttls, &n);
      if (host != nullptr) ares_free_hostent(host);
      if (rc == ARES_SUCCESS && n > 0) {
        asio::ip::address_v6::bytes_type b;
        std::memcpy(b.data(), &ttls[0].ip6addr, 16);
        a = {lookup_status::found, asio::ip::address_v6(b), std::chrono::seconds(ttls[0].ttl)};
      } else {
        status = rc == ARES_SUCCESS ? ARES_ENODATA : rc;
      }
    }
    if (a.status != lookup_status::found) {
      if (status == ARES_ENODATA && q->type == ns_t_a) {
        // The name exists without an IPv4 address: try IPv6.
        q->type = ns_t_aaaa;
        ares_query(q->self->channel_, q->name.c_str(), ns_c_in, ns_t_aaaa, &dns_backend::on_answer,
                   q);
        return;
      }
      if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
        a.status = lookup_status::nxdomain;
      } else if (status == ARES_ETIMEOUT) {
        a.status = lookup_status::timeout;
      } else {
        a.status = lookup_status::error;
      }
    }
    // Deliver outside c-ares' call stack: the consumer may start new queries.
    asio::post(q->self->ex_, [done = std::move(q->done), a]() { done(a); });
    delete q;
  }

  asio::any_io_executor ex_;
  asio::steady_timer timer_;
  ares_channel channel_ = nullptr;
  std::unordered_map<int, std::shared_ptr<watch>> watches_;
  bool destroying_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace

std::unique_ptr<resolver_backend> make_dns_backend(asio::any_io_executor ex,
                                                   const dns_backend_options& options,
                                                   std::string* error) {
  auto b = std::make_unique<dns_backend>(std::move(ex));
  if (auto err = b->init(options); !err.empty()) {
    if (error) *error = err;
    return nullptr;
  }
  return b;
}

}  // namespace devspaces::proxy::routing
