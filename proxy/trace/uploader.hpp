#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "proxy/metrics.hpp"
#include "proxy/trace/hub.hpp"

namespace devspaces::proxy::trace {

/// The parts of an `http://host:port/path` URL.
struct http_url {
  std::string host;          ///< name or address, IPv6 without brackets
  std::string port = "80";   ///< decimal
  std::string target = "/";  ///< path and query
  std::string host_header;   ///< "host:port" as sent in Host
};

/// Parses `http://host[:port][/path]` (IPv6 as `[::1]`); nullopt when malformed.
std::optional<http_url> parse_http_url(std::string_view url);

/// Settings of the --trace-upstream uploader (proxy/trace/README.md, "Streaming to a collector");
/// the defaults are the contract, tests shorten the times.
struct uploader_options {
  std::string url;                                   ///< --trace-upstream
  std::size_t queue = 10000;                         ///< bound; the oldest record is dropped
  std::size_t batch = 256;                           ///< records per POST at most
  std::chrono::milliseconds interval{1000};          ///< a batch waits at most this long
  std::chrono::milliseconds backoff_initial{500};    ///< first retry delay, doubled per failure
  std::chrono::milliseconds backoff_max{30000};      ///< retry delay cap
  std::chrono::milliseconds request_timeout{10000};  ///< connect + POST + response
  /// Builds the POST body of a batch; null: NDJSON, one record a line. (The OTLP exporter
  /// reuses this machinery with an encoder of its own.)
  std::function<std::string(const std::vector<entry>&)> encode;
  std::string content_type = "application/x-ndjson";  ///< of the POST body
  std::string what = "trace upstream";                ///< names the destination in log lines
  /// Counters for delivered / dropped records; null: trace_records_total{outcome=sent|dropped}.
  prometheus::Counter* sent_counter = nullptr;
  prometheus::Counter* dropped_counter = nullptr;
};

/// Streams records to a collector as NDJSON POSTs. offer() (any thread) appends to a bounded
/// queue, dropping the oldest when full; a coroutine on the given executor sends batches,
/// keeps the connection alive between them and retries failures with exponential backoff.
/// Records leave the queue only once a POST carrying them got a 2xx answer.
class uploader : public std::enable_shared_from_this<uploader> {
 public:
  /// Does not start anything; call start(). `metrics` may be null.
  uploader(boost::asio::any_io_executor executor, uploader_options options, http_url url,
           proxy_metrics* metrics);

  /// Appends an entry (any thread, O(1)). When the queue is full the oldest queued entry is
  /// dropped and counted (trace_records_total{outcome="dropped"}); one that is being POSTed
  /// at that moment counts as sent or dropped by that POST's outcome.
  void offer(entry e);

  /// Spawns the sending coroutine on the executor.
  void start();
  /// Stops the coroutine (any thread); queued records are abandoned.
  void stop();

  /// Records in the queue now.
  std::size_t queued() const;
  /// Records delivered (2xx) so far; also counted as trace_records_total{outcome="sent"}.
  /// Once the queue is empty, sent() + dropped() equals the records offered.
  std::uint64_t sent() const { return sent_.load(std::memory_order_relaxed); }
  /// Records dropped from the full queue so far.
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  /// POST attempts that failed (connect, I/O or non-2xx).
  std::uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }

 private:
  boost::asio::awaitable<void> run();
  void wake();
  void count_dropped(std::uint64_t n);

  boost::asio::any_io_executor executor_;
  const uploader_options options_;
  const http_url url_;
  proxy_metrics* metrics_;
  // The run() frame's timer, touched only on executor_. Owning no I/O object keeps the
  // uploader safe to destroy after its io_context (the hub may outlive it).
  boost::asio::steady_timer* timer_ = nullptr;

  mutable std::mutex mutex_;
  std::deque<entry> queue_;
  std::weak_ptr<void> alive_;  // expires with the run() frame: no posts to a dead io_context
  bool waiting_ = false;       // the coroutine sleeps for a batch and wants a wake at `batch`
  bool stopped_ = false;
  // The batch being POSTed (seq range) and how many of it the full queue evicted meanwhile.
  std::uint64_t inflight_first_ = 0;
  std::uint64_t inflight_last_ = 0;
  std::uint64_t inflight_evicted_ = 0;

  std::atomic<std::uint64_t> sent_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> failures_{0};
};

/// Creates the uploader for `options.url`, attaches it to `h` and starts it on `executor`.
/// Returns an error line when the URL is not `http://host[:port][/path]`.
std::optional<std::string> start_uploader(hub& h, boost::asio::any_io_executor executor,
                                          uploader_options options, proxy_metrics* metrics);

}  // namespace devspaces::proxy::trace
