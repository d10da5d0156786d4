#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "proxy/config.hpp"
#include "proxy/exchange.hpp"
#include "proxy/metrics.hpp"
#include "proxy/trace/packed.hpp"
#include "proxy/trace/record.hpp"

namespace devspaces::proxy::trace {

/// A record whose JSON line (no newline) is built on first use, at most once, on the thread of
/// the first consumer (a follower, a replay or the uploader). The data path writes the record in
/// its packed form (proxy/trace/packed.hpp: one buffer, written front to back while the exchange
/// runs, then published with hub::push) and never serialises it, so tracing with nobody reading
/// costs no serialisation; a record that nobody holds any more is reused for a later exchange
/// with its buffer kept.
class lazy_json {
 public:
  /// An empty record, to be written in its packed form before it is published.
  explicit lazy_json(std::shared_ptr<const json_options> opts) : opts_(std::move(opts)) {}
  /// Keeps `r` until the first text() call serialises it with `opts`.
  lazy_json(record r, std::shared_ptr<const json_options> opts)
      : opts_(std::move(opts)), rec_(std::make_unique<record>(std::move(r))) {}
  /// An already serialised line (push_json).
  explicit lazy_json(std::string json) : done_(true), json_(std::move(json)) {}
  lazy_json(const lazy_json&) = delete;
  lazy_json& operator=(const lazy_json&) = delete;

  /// The packed record being written. Only while the builder is its one owner (before it is
  /// published).
  packed::buffer& packed() { return packed_; }
  /// The record's route decision (kept beside the packed bytes: it is shared, not copied).
  void set_route(std::shared_ptr<const routing::route_decision> decision) {
    route_ = std::move(decision);
  }
  /// The record as built, unpacked into `r` (a new record).
  void unpack(record& r) const;

  /// The JSON line; thread-safe, serialises on the first call only.
  const std::string& text() const;

  /// Empties a published record that nobody else holds any more, for another exchange
  /// serialised with `opts`; the packed buffer keeps its storage.
  void reuse(const std::shared_ptr<const json_options>& opts);

 private:
  // What the data path touches per exchange comes first, on as few cache lines as possible.
  packed::buffer packed_;
  std::shared_ptr<const routing::route_decision> route_;  // null: no decision
  mutable std::atomic<bool> done_{false};
  std::shared_ptr<const json_options> opts_;
  mutable std::string json_;
  mutable std::mutex mutex_;  // first serialisation only
  // A record pushed whole (hub::push(record&&)) instead of packed; freed once serialised.
  mutable std::unique_ptr<record> rec_;
};

/// One record as it travels to the ring, followers and the uploader: shared, never copied per
/// consumer.
struct entry {
  std::uint64_t seq = 0;  ///< 1, 2, 3, ... in push order (per hub)
  std::shared_ptr<const lazy_json> json;
};

/// A follower's bounded queue. push() (any thread) offers entries; when the queue is full the
/// entry is skipped and counted, so a follower that stops reading costs at most `bound`
/// shared pointers and never slows the pusher. The consumer side runs on `executor`.
class subscription : public std::enable_shared_from_this<subscription> {
 public:
  /// A queue of at most `bound` entries whose consumer runs on `executor`.
  subscription(boost::asio::any_io_executor executor, std::size_t bound);

  /// Adds an entry (any thread, O(1)); false when the queue was full and the entry skipped.
  bool offer(const entry& e);

  /// Waits (on the executor) until entries are queued, then moves all of them into `out`.
  /// Returns false once closed and drained.
  boost::asio::awaitable<bool> wait(std::vector<entry>& out);

  /// Ends the stream: wait() returns false after the queued entries (any thread).
  void close();

  /// Entries waiting now (never more than the bound).
  std::size_t queued() const;
  /// Entries skipped because the queue was full.
  std::uint64_t skipped() const { return skipped_.load(std::memory_order_relaxed); }
  /// The queue bound.
  std::size_t bound() const { return bound_; }

 private:
  void wake();

  const std::size_t bound_;
  boost::asio::any_io_executor executor_;
  boost::asio::steady_timer timer_;  // touched only on executor_
  mutable std::mutex mutex_;
  std::deque<entry> queue_;
  bool waiting_ = false;
  bool closed_ = false;
  std::atomic<std::uint64_t> skipped_{0};
};

class uploader;

/// --access-log: which exchanges get a log line.
enum class access_log_mode { off, errors, all };

/// Settings of a hub, normally taken from the proxy config.
struct hub_options {
  std::size_t buffer = 1000;          ///< --trace-buffer: records kept for /traces replay
  json_options json;                  ///< --trace-redact-headers
  std::size_t follower_queue = 1024;  ///< per-follower bound
  access_log_mode access_log = access_log_mode::off;  ///< --access-log
  bool access_log_json = false;                       ///< --log-format json
  /// Body capture policy: bodies of these content types (lowercase media types) are not kept
  /// (form posts carry passwords and tokens).
  std::vector<std::string> omit_body_types{"application/x-www-form-urlencoded",
                                           "multipart/form-data"};
};

/// hub_options from the proxy config (--trace-buffer, --trace-redact-headers).
hub_options make_hub_options(const config& cfg);

/// The fire-and-forget trace sink (proxy/trace/README.md). push() is called from any worker thread;
/// it wraps the record for serialisation on first read (lazy_json), then under one short mutex
/// assigns a sequence number, moves it into the replay ring and offers it to each follower's
/// bounded queue (O(1) per follower, usually none), then offers it to the uploader's bounded queue.
/// Nothing in push() waits for a consumer.
class hub {
 public:
  /// `metrics` may be null (unit tests); then only the hub's own counters are kept.
  hub(hub_options options, proxy_metrics* metrics);
  ~hub();
  hub(const hub&) = delete;
  hub& operator=(const hub&) = delete;

  /// Serialises and publishes one record. Never blocks on a consumer, never throws.
  void push(record&& r);
  /// An empty record to write in its packed form (a reused one when this thread has one to
  /// spare) and publish with push(); the data path's way, without copies.
  std::shared_ptr<lazy_json> open();
  /// Publishes a record from open() (the caller's reference is taken).
  void push(std::shared_ptr<lazy_json> r);
  /// Publishes an already serialised record (one JSON object, no newline).
  void push_json(std::string json);

  /// The newest `n` entries of the ring, oldest first.
  std::vector<entry> last(std::size_t n) const;

  /// A new follower consuming on `executor`. `replay` receives the newest `last_n` records,
  /// atomically with the subscription: the queue then gets exactly the records pushed after
  /// them, nothing missed or repeated.
  std::shared_ptr<subscription> subscribe(boost::asio::any_io_executor executor, std::size_t last_n,
                                          std::vector<entry>& replay);
  /// Removes a follower (idempotent). Posts nothing, so it is safe from a coroutine frame
  /// being destroyed with its io_context.
  void unsubscribe(const std::shared_ptr<subscription>& s);

  /// Attaches the uploader (start_uploader in uploader.hpp calls this). Call once, before
  /// pushes.
  void set_uploader(std::shared_ptr<uploader> u);
  /// Attaches the OTLP span exporter (start_otlp_exporter calls this). Call once, before pushes.
  void set_span_exporter(std::shared_ptr<uploader> u);

  /// Ends every follow stream and stops the uploader (drain/shutdown). Call it while the
  /// followers' io_context (the admin server's) still exists; the destructor calls it too.
  void close();

  /// Records pushed / skipped by a follower (also in trace_records_total; the uploader counts
  /// its own drops).
  std::uint64_t recorded() const { return recorded_.load(std::memory_order_relaxed); }
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  /// A follower's queue as seen now (for tests and diagnostics).
  struct follower_stat {
    std::size_t queued = 0;
    std::size_t bound = 0;
    std::uint64_t skipped = 0;
  };
  /// One entry per follower.
  std::vector<follower_stat> follower_stats() const;

  /// Number of followers now.
  std::size_t followers() const { return follower_count_.load(std::memory_order_relaxed); }
  /// Whether a record pushed now would reach anyone: the replay ring (--trace-buffer > 0), the
  /// uploader or a follower. When false the data path builds no record at all, which is how
  /// tracing is turned off: `--trace-buffer 0` and no `--trace-upstream` (a follower attaching
  /// later receives the exchanges that begin after it joined). One relaxed load; any thread.
  bool wanted() const {
    return !ring_.empty() || uploader_ != nullptr || spans_ != nullptr ||
           options_.access_log != access_log_mode::off ||
           follower_count_.load(std::memory_order_relaxed) != 0;
  }
  /// Settings in force.
  const hub_options& options() const { return options_; }

 private:
  void publish(std::shared_ptr<const lazy_json> json);
  void recycle(std::shared_ptr<const lazy_json> json);
  void log_access(const record& r) const;
  void count_dropped(std::uint64_t n);

  const hub_options options_;
  const std::shared_ptr<const json_options> json_options_;
  proxy_metrics* metrics_;

  // One mutex for the ring and the follower list, so a new follower's replay and its queue
  // join without a gap and every follower sees records in seq order.
  mutable std::mutex mutex_;
  std::vector<entry> ring_;  // circular, sized once in the constructor (wanted() reads size)
  std::size_t ring_next_ = 0;
  std::size_t ring_size_ = 0;
  std::uint64_t seq_ = 0;
  std::vector<std::shared_ptr<subscription>> followers_;
  std::atomic<std::size_t> follower_count_{0};

  std::shared_ptr<uploader> uploader_;  // set once before workers start
  std::shared_ptr<uploader> spans_;     // OTLP exporter, set once before workers start
  std::atomic<std::uint64_t> recorded_{0};
  std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace devspaces::proxy::trace
