#include "proxy/routing/resolver.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/routing/names.hpp"

namespace devspaces::proxy::routing {

namespace asio = boost::asio;
using std::chrono::steady_clock;

std::string lookup_result::describe() const {
  switch (status) {
    case lookup_status::found:
      if (!address_text.empty()) return address_text;
      return address ? address->to_string() : "error";
    case lookup_status::nxdomain:
      return "nxdomain";
    case lookup_status::timeout:
      return "timeout";
    case lookup_status::error:
      break;
  }
  return "error";
}

// One backend query in flight, shared by every lookup of the name that arrives meanwhile.
struct resolver::pending {
  std::optional<backend_answer> answer;
  std::vector<asio::steady_timer*> waiters;  // woken (cancelled) when the answer arrives
  bool claimed = false;                      // a lookup (not only a prefetch) asked
};

namespace {

// Removes a waiter's timer from the pending query when the waiting coroutine ends, however it
// ends (also when its frame is destroyed while suspended).
struct waiter_registration {
  std::vector<asio::steady_timer*>& list;
  asio::steady_timer* timer;
  ~waiter_registration() { std::erase(list, timer); }
};

}  // namespace

resolver::resolver(asio::any_io_executor ex, std::unique_ptr<resolver_backend> backend,
                   proxy_metrics& metrics, resolver_options options)
    : ex_(std::move(ex)),
      backend_(std::move(backend)),
      metrics_(metrics),
      options_(std::move(options)),
      alive_(std::make_shared<bool>(true)) {}

resolver::~resolver() {
  alive_.reset();
  // Destroy the backend first: it must not deliver answers into a half-destroyed resolver.
  backend_.reset();
}

steady_clock::time_point resolver::now() const {
  return options_.clock ? options_.clock() : steady_clock::now();
}

void resolver::store(const std::string& name, const backend_answer& answer, bool unclaimed) {
  std::chrono::seconds ttl{0};
  if (answer.status == lookup_status::found) {
    ttl = std::min(answer.ttl, options_.max_ttl);
  } else if (answer.status == lookup_status::nxdomain) {
    ttl = options_.negative_ttl;
  }
  if (ttl <= std::chrono::seconds(0)) return;  // errors, timeouts and TTL 0 are not cached
  auto t = now();
  if (cache_.size() >= options_.max_entries) {
    std::erase_if(cache_, [t](const auto& kv) { return kv.second.expires <= t; });
    if (cache_.size() >= options_.max_entries) clear_cache();
  }
  cache_[name] =
      cache_entry{answer.status, answer.address,
                  answer.address ? answer.address->to_string() : std::string(), t + ttl, unclaimed};
}

void resolver::count(const lookup_result& r) {
  dns_result label = dns_result::error;
  if (r.cached) {
    label = dns_result::hit;
  } else if (r.status == lookup_status::found) {
    label = dns_result::found;
  } else if (r.status == lookup_status::nxdomain) {
    label = dns_result::nxdomain;
  }
  metrics_.dns_lookups(label).Increment();
}

std::shared_ptr<resolver::pending> resolver::start_query(const std::string& name, bool claim) {
  if (auto it = pending_.find(name); it != pending_.end()) {
    it->second->claimed = it->second->claimed || claim;
    return it->second;
  }
  auto p = std::make_shared<pending>();
  p->claimed = claim;
  pending_.emplace(name, p);
  backend_->async_lookup(
      name, [this, alive = std::weak_ptr<bool>(alive_), name, p](backend_answer answer) {
        if (alive.expired()) return;
        if (auto it = pending_.find(name); it != pending_.end() && it->second == p) {
          pending_.erase(it);
        }
        // An answer only prefetched so far: its first reader counts it as found/nxdomain.
        store(name, answer, !p->claimed);
        p->answer = std::move(answer);
        for (auto* t : p->waiters) t->cancel();
      });
  return p;
}

void resolver::refresh() {
  if (backend_->refresh()) clear_cache();
}

void resolver::prefetch(const std::string& name) {
  refresh();
  if (auto it = cache_.find(name); it != cache_.end() && it->second.expires > now()) return;
  start_query(name, false);
}

asio::awaitable<lookup_result> resolver::lookup(std::string name) {
  refresh();
  lookup_result r;
  if (auto it = cache_.find(name); it != cache_.end()) {
    if (it->second.expires > now()) {
      r.status = it->second.status;
      r.address = it->second.address;
      r.address_text = it->second.address_text;
      r.cached = !it->second.unclaimed;
      r.expires = it->second.expires;
      it->second.unclaimed = false;
      count(r);
      co_return r;
    }
    cache_.erase(it);
  }

  auto p = start_query(name, true);
  if (!p->answer) {
    asio::steady_timer timer(ex_, options_.timeout);
    p->waiters.push_back(&timer);
    waiter_registration reg{p->waiters, &timer};
    // Woken early (cancelled) by the answer, or expires: the outcome is read from p->answer.
    (void)co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  if (p->answer) {
    r.status = p->answer->status;
    r.address = p->answer->address;
    if (auto it = cache_.find(name); it != cache_.end()) r.expires = it->second.expires;
  } else {
    r.status = lookup_status::timeout;
  }
  count(r);
  co_return r;
}

// --- hosts file ---------------------------------------------------------------------------

namespace {

class hosts_backend final : public resolver_backend {
 public:
  hosts_backend(std::string path, std::chrono::milliseconds check_interval)
      : path_(std::move(path)), check_interval_(check_interval) {}

  bool refresh() override {
    auto t = steady_clock::now();
    if (loaded_ && t - last_check_ < check_interval_) return false;
    last_check_ = t;
    auto sig = signature();
    if (loaded_ && sig == sig_) return false;
    sig_ = sig;
    load();
    return true;
  }

  void async_lookup(const std::string& name, std::function<void(backend_answer)> done) override {
    if (!loaded_) refresh();
    backend_answer a;
    if (!readable_) {
      a.status = lookup_status::error;
    } else {
      std::string key = to_lower(name);
      if (!key.empty() && key.back() == '.') key.pop_back();
      auto found4 = v4_.find(key);
      auto found6 = v6_.find(key);
      if (found4 != v4_.end()) {
        a = {lookup_status::found, found4->second, std::chrono::seconds(30)};
      } else if (found6 != v6_.end()) {
        a = {lookup_status::found, found6->second, std::chrono::seconds(30)};
      } else {
        a.status = lookup_status::nxdomain;
      }
    }
    done(std::move(a));
  }

 private:
  struct file_sig {
    bool exists = false;
    long long mtime_ns = 0, size = 0;
    unsigned long long inode = 0;
    bool operator==(const file_sig&) const = default;
  };

  file_sig signature() const {
    struct stat st {};
    file_sig s;
    if (::stat(path_.c_str(), &st) != 0) return s;
    s.exists = true;
    s.mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1'000'000'000LL + st.st_mtim.tv_nsec;
    s.size = static_cast<long long>(st.st_size);
    s.inode = static_cast<unsigned long long>(st.st_ino);
    return s;
  }

  void load() {
    loaded_ = true;
    v4_.clear();
    v6_.clear();
    std::ifstream in(path_);
    readable_ = static_cast<bool>(in);
    if (!readable_) return;
    std::string line;
    while (std::getline(in, line)) {
      if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
      std::istringstream fields(line);
      std::string addr_text;
      if (!(fields >> addr_text)) continue;
      boost::system::error_code ec;
      auto addr = asio::ip::make_address(addr_text, ec);
      if (ec) continue;
      auto& map = addr.is_v4() ? v4_ : v6_;
      std::string host;
      while (fields >> host) {
        host = to_lower(host);
        if (!host.empty() && host.back() == '.') host.pop_back();
        map.emplace(host, addr);  // the first line naming a host wins
      }
    }
  }

  std::string path_;
  std::chrono::milliseconds check_interval_;
  steady_clock::time_point last_check_{};
  file_sig sig_;
  bool loaded_ = false;
  bool readable_ = false;
  std::unordered_map<std::string, asio::ip::address> v4_, v6_;
};

}  // namespace

std::unique_ptr<resolver_backend> make_hosts_backend(std::string path) {
  return std::make_unique<hosts_backend>(std::move(path), std::chrono::seconds(1));
}

std::unique_ptr<resolver_backend> make_hosts_backend(std::string path,
                                                     std::chrono::milliseconds check_interval) {
  return std::make_unique<hosts_backend>(std::move(path), check_interval);
}

std::optional<std::string> check_resolver_config(const config& cfg) {
  if (cfg.resolver == "dns") return std::nullopt;
  if (cfg.resolver.starts_with("hosts:")) {
    std::string path = cfg.resolver.substr(6);
    if (path.empty()) return "--resolver hosts:<path>: the path is empty";
    std::ifstream in(path);
    if (!in) return "--resolver " + cfg.resolver + ": cannot read " + path;
    return std::nullopt;
  }
  return "--resolver " + cfg.resolver + ": expected dns or hosts:<path>";
}

std::shared_ptr<resolver> make_resolver(asio::any_io_executor ex, const config& cfg,
                                        proxy_metrics& metrics, std::string* error) {
  if (auto err = check_resolver_config(cfg)) {
    if (error) *error = *err;
    return nullptr;
  }
  std::unique_ptr<resolver_backend> backend;
  if (cfg.resolver == "dns") {
    std::string err;
    backend = make_dns_backend(ex, {}, &err);
    if (!backend) {
      if (error) *error = "--resolver dns: " + err;
      return nullptr;
    }
  } else {
    backend = make_hosts_backend(cfg.resolver.substr(6));
  }
  resolver_options options;
  options.timeout = std::min(cfg.connect_timeout, std::chrono::milliseconds(2000));
  return std::make_shared<resolver>(std::move(ex), std::move(backend), metrics, options);
}

}  // namespace devspaces::proxy::routing
