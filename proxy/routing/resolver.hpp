#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>

#include "proxy/config.hpp"
#include "proxy/metrics.hpp"

namespace devspaces::proxy::routing {

/// What a lookup found.
enum class lookup_status { found, nxdomain, error, timeout };

/// The answer to one lookup through the resolver.
struct lookup_result {
  lookup_status status = lookup_status::error;
  std::optional<boost::asio::ip::address> address;  ///< set when found
  bool cached = false;       ///< answered from the cache (a prefetched answer's first read is not)
  std::string address_text;  ///< the address as text when the cache had it (saves inet_ntop)
  /// Until when the cache keeps this answer; time_point{} when it is not cached (errors,
  /// timeouts, TTL 0).
  std::chrono::steady_clock::time_point expires{};

  /// The trace "tried" result: the address, "nxdomain", "error" or "timeout".
  std::string describe() const;
};

/// What a backend answered; `ttl` bounds how long it may be cached (capped by the resolver).
struct backend_answer {
  lookup_status status = lookup_status::error;
  std::optional<boost::asio::ip::address> address;
  std::chrono::seconds ttl{0};
};

/// Where names are looked up: the hosts file or DNS (c-ares). Used from one executor's thread.
class resolver_backend {
 public:
  virtual ~resolver_backend() = default;
  /// Starts looking up `name` (absolute, no search list); calls `done` exactly once, possibly
  /// before returning, unless the backend is destroyed first.
  virtual void async_lookup(const std::string& name, std::function<void(backend_answer)> done) = 0;
  /// Called before each lookup; true when the backend's data changed and the cache must go
  /// (the hosts file was edited).
  virtual bool refresh() { return false; }
};

/// Tuning of the caching layer; the defaults are those of proxy/routing/README.md, "Resolver".
struct resolver_options {
  std::chrono::milliseconds timeout{2000};  ///< per lookup; then "timeout"
  std::chrono::seconds max_ttl{30};         ///< positive answers: min(TTL, this)
  std::chrono::seconds negative_ttl{5};     ///< nxdomain (and no-address) answers
  std::size_t max_entries = 10000;          ///< the cache is flushed of stale entries beyond this
  /// The clock (tests pass a fake one); default steady_clock::now.
  std::function<std::chrono::steady_clock::time_point()> clock;
};

/// A caching, coalescing resolver in front of a backend. One per worker: it lives on that
/// worker's executor and takes no locks. Positive answers are cached up to their TTL (capped
/// at 30 s), nxdomain for 5 s; errors and timeouts are not cached. Concurrent lookups of one
/// name share one backend query; each waits at most `timeout`. Every lookup counts one
/// dns_lookups_total label: hit (from the cache), found, nxdomain or error (also timeouts).
class resolver {
 public:
  /// `backend` must deliver its answers on `ex`.
  resolver(boost::asio::any_io_executor ex, std::unique_ptr<resolver_backend> backend,
           proxy_metrics& metrics, resolver_options options = {});
  ~resolver();
  resolver(const resolver&) = delete;
  resolver& operator=(const resolver&) = delete;

  /// Looks up an absolute name (A preferred, AAAA otherwise). Never throws.
  boost::asio::awaitable<lookup_result> lookup(std::string name);

  /// Starts a backend query for `name` unless it is cached or already in flight, without
  /// waiting or counting; a later lookup() of the name joins it. The router prefetches every
  /// candidate of a chain so that a fallback costs one round trip, not one per level.
  void prefetch(const std::string& name);

  /// Lets the backend check its data (the hosts file) as a lookup would; drops the cache when
  /// it changed. For callers that keep decisions made from this resolver's answers.
  void refresh();
  /// Changes whenever the cache is dropped: an answer read before a change is stale after it.
  std::uint64_t epoch() const { return epoch_; }
  /// The resolver's clock.
  std::chrono::steady_clock::time_point now() const;

  /// Number of cached entries (tests).
  std::size_t cache_size() const { return cache_.size(); }
  /// Drops every cached entry.
  void clear_cache() {
    cache_.clear();
    ++epoch_;
  }

 private:
  struct cache_entry {
    lookup_status status;
    std::optional<boost::asio::ip::address> address;
    std::string address_text;  ///< formatted once per answer, not per request
    std::chrono::steady_clock::time_point expires;
    bool unclaimed = false;  ///< prefetched, not yet read by any lookup
  };
  struct pending;
  std::shared_ptr<pending> start_query(const std::string& name, bool claim);
  void store(const std::string& name, const backend_answer& answer, bool unclaimed);
  void count(const lookup_result& r);

  boost::asio::any_io_executor ex_;
  std::unique_ptr<resolver_backend> backend_;
  proxy_metrics& metrics_;
  resolver_options options_;
  std::unordered_map<std::string, cache_entry> cache_;
  std::unordered_map<std::string, std::shared_ptr<pending>> pending_;
  std::shared_ptr<bool> alive_;
  std::uint64_t epoch_ = 0;
};

/// Hosts-file backend (`--resolver hosts:<path>`): "<address> <name> [names...]" lines, '#'
/// comments. The file is re-read when its mtime/size/inode changes (checked at most once a
/// second), and a change flushes the resolver's cache; answers carry TTL 30 s. First IPv4
/// address of a name wins, else its first IPv6 address; a missing name is nxdomain; an
/// unreadable file answers error.
std::unique_ptr<resolver_backend> make_hosts_backend(std::string path);
/// Same, checking the file for changes at most every `check_interval` (tests).
std::unique_ptr<resolver_backend> make_hosts_backend(std::string path,
                                                     std::chrono::milliseconds check_interval);

/// Options of the c-ares backend.
struct dns_backend_options {
  /// Test seam: "ip:port[,ip:port]" servers instead of /etc/resolv.conf's nameservers.
  std::string servers;
  std::chrono::milliseconds query_timeout{1000};  ///< c-ares per-try timeout
  int tries = 2;
};

/// DNS backend (`--resolver dns`): a c-ares channel driven by the executor's reactor (its
/// sockets are watched with posix::stream_descriptor, its timeouts with a steady_timer). Uses
/// /etc/resolv.conf unless `options.servers` is set. Queries A, then AAAA when the name has no
/// A record; no search list is applied. Returns null and sets `error` when c-ares fails to start.
std::unique_ptr<resolver_backend> make_dns_backend(boost::asio::any_io_executor ex,
                                                   const dns_backend_options& options,
                                                   std::string* error);

/// Checks cfg.resolver ("dns" or "hosts:<path>" with a readable file) for startup; the error
/// text names what is wrong.
std::optional<std::string> check_resolver_config(const config& cfg);

/// The worker's resolver for cfg.resolver, on `ex`: lookups time out after
/// min(--connect-timeout, 2 s). Null with `error` set when it cannot start.
std::shared_ptr<resolver> make_resolver(boost::asio::any_io_executor ex, const config& cfg,
                                        proxy_metrics& metrics, std::string* error);

}  // namespace devspaces::proxy::routing
