#include "proxy/trace/hub.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/trace/access_log.hpp"
#include "proxy/trace/uploader.hpp"

namespace devspaces::proxy::trace {

namespace asio = boost::asio;

subscription::subscription(asio::any_io_executor executor, std::size_t bound)
    : bound_(bound == 0 ? 1 : bound), executor_(executor), timer_(executor) {}

bool subscription::offer(const entry& e) {
  bool wake_now = false;
  {
    std::lock_guard lock(mutex_);
    if (closed_ || queue_.size() >= bound_) {
      skipped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    queue_.push_back(e);
    wake_now = waiting_;
    waiting_ = false;
  }
  // Only the first entry after the consumer went to sleep posts a wake-up: one post per batch.
  if (wake_now) wake();
  return true;
}

void subscription::wake() {
  asio::post(executor_, [self = shared_from_this()] { self->timer_.cancel(); });
}

void subscription::close() {
  bool wake_now = false;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    wake_now = waiting_;
    waiting_ = false;
  }
  if (wake_now) wake();
}

std::size_t subscription::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

asio::awaitable<bool> subscription::wait(std::vector<entry>& out) {
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (!queue_.empty()) {
        out.insert(out.end(), std::make_move_iterator(queue_.begin()),
                   std::make_move_iterator(queue_.end()));
        queue_.clear();
        co_return true;
      }
      if (closed_) co_return false;
      waiting_ = true;
    }
    // The periodic expiry is a safety net only; offer() cancels the timer when it queues.
    timer_.expires_after(std::chrono::seconds(1));
    auto [ec] = co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    {
      std::lock_guard lock(mutex_);
      waiting_ = false;
    }
    if (ec && ec != asio::error::operation_aborted) co_return false;
    // Cancelled by the caller (e.g. the client went away): stop waiting.
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cs.cancelled() != asio::cancellation_type::none) co_return false;
  }
}

hub_options make_hub_options(const config& cfg) {
  hub_options o;
  o.buffer = static_cast<std::size_t>(cfg.trace_buffer);
  o.json.redact_headers = cfg.trace_redact_headers;
  o.access_log = cfg.access_log == "all"      ? access_log_mode::all
                 : cfg.access_log == "errors" ? access_log_mode::errors
                                              : access_log_mode::off;
  o.access_log_json = cfg.log_format == "json";
  for (auto& h : o.json.redact_headers) {
    for (auto& c : h) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  return o;
}

hub::hub(hub_options options, proxy_metrics* metrics)
    : options_(std::move(options)),
      json_options_(std::make_shared<const json_options>(options_.json)),
      metrics_(metrics) {
  ring_.resize(options_.buffer);
}

hub::~hub() {
  close();
}

void lazy_json::unpack(record& r) const {
  packed::unpack(packed_.view(), route_, r);
}

const std::string& lazy_json::text() const {
  if (!done_.load(std::memory_order_acquire)) {
    std::lock_guard lock(mutex_);
    if (!done_.load(std::memory_order_relaxed)) {
      if (rec_) {
        append_json(json_, *rec_, *opts_);
        rec_.reset();
      } else {
        record r;
        unpack(r);
        append_json(json_, r, *opts_);
      }
      done_.store(true, std::memory_order_release);
    }
  }
  return json_;
}

void lazy_json::reuse(const std::shared_ptr<const json_options>& opts) {
  rec_.reset();
  packed_.clear(16 * 1024);  // a typical record is 1–3 KiB
  route_.reset();
  json_.clear();
  done_.store(false, std::memory_order_relaxed);
  if (opts_ != opts) opts_ = opts;
}

namespace {

// Published records that nobody holds any more, kept per thread for the next exchange: the
// worker that publishes a record also evicts the ring's oldest, so with the ring full one is at
// hand for every exchange and a record costs no allocation.
constexpr std::size_t spare_records = 8;
thread_local std::vector<std::shared_ptr<lazy_json>> spares;

}  // namespace

std::shared_ptr<lazy_json> hub::open() {
  if (spares.empty()) return std::make_shared<lazy_json>(json_options_);
  auto r = std::move(spares.back());
  spares.pop_back();
  r->reuse(json_options_);
  return r;
}

void hub::recycle(std::shared_ptr<const lazy_json> json) {
  // The last reference: nobody else can read the record while it is reused. The fence pairs
  // with the release of the reference another thread dropped last (its reads come before).
  if (json.use_count() != 1 || spares.size() >= spare_records) return;
  std::atomic_thread_fence(std::memory_order_acquire);
  spares.push_back(std::const_pointer_cast<lazy_json>(std::move(json)));
}

void hub::log_access(const record& r) const {
  if (options_.access_log == access_log_mode::all ||
      (options_.access_log == access_log_mode::errors && r.error.has_value())) {
    write_access_log(r, options_.access_log_json);
  }
}

void hub::push(record&& r) {
  apply_body_policy(r, options_.omit_body_types);
  if (options_.access_log != access_log_mode::off) log_access(r);
  publish(std::make_shared<lazy_json>(std::move(r), json_options_));
}

void hub::push(std::shared_ptr<lazy_json> entry) {
  // The recorder applied the body policy while it wrote the record.
  if (options_.access_log != access_log_mode::off) {
    record r;
    entry->unpack(r);
    log_access(r);
  }
  publish(std::move(entry));
}

void hub::push_json(std::string json) {
  publish(std::make_shared<const lazy_json>(std::move(json)));
}

void hub::publish(std::shared_ptr<const lazy_json> json) {
  recorded_.fetch_add(1, std::memory_order_relaxed);
  if (metrics_) metrics_->trace_records(trace_outcome::recorded).Increment();

  entry e{0, std::move(json)};
  entry evicted;  // released after the lock: freeing a string is not O(1) work
  std::uint64_t skipped = 0;
  {
    std::lock_guard lock(mutex_);
    e.seq = ++seq_;
    if (!ring_.empty()) {
      evicted = std::move(ring_[ring_next_]);
      ring_[ring_next_] = e;
      ring_next_ = (ring_next_ + 1) % ring_.size();
      if (ring_size_ < ring_.size()) ++ring_size_;
    }
    for (const auto& f : followers_) {
      if (!f->offer(e)) ++skipped;
    }
  }
  if (spans_) spans_->offer(e);  // counts its own drops
  if (uploader_) uploader_->offer(std::move(e));
  if (skipped != 0) count_dropped(skipped);
  if (evicted.json) recycle(std::move(evicted.json));
}

void hub::count_dropped(std::uint64_t n) {
  dropped_.fetch_add(n, std::memory_order_relaxed);
  if (metrics_) metrics_->trace_records(trace_outcome::dropped).Increment(static_cast<double>(n));
}

std::vector<entry> hub::last(std::size_t n) const {
  std::lock_guard lock(mutex_);
  const std::size_t count = n < ring_size_ ? n : ring_size_;
  std::vector<entry> out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t idx = (ring_next_ + ring_.size() - count + i) % ring_.size();
    out.push_back(ring_[idx]);
  }
  return out;
}

std::shared_ptr<subscription> hub::subscribe(asio::any_io_executor executor, std::size_t last_n,
                                             std::vector<entry>& replay) {
  auto s = std::make_shared<subscription>(executor, options_.follower_queue);
  std::lock_guard lock(mutex_);
  const std::size_t count = last_n < ring_size_ ? last_n : ring_size_;
  replay.clear();
  replay.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    replay.push_back(ring_[(ring_next_ + ring_.size() - count + i) % ring_.size()]);
  }
  followers_.push_back(s);
  follower_count_.store(followers_.size(), std::memory_order_relaxed);
  return s;
}

void hub::unsubscribe(const std::shared_ptr<subscription>& s) {
  std::lock_guard lock(mutex_);
  std::erase(followers_, s);
  follower_count_.store(followers_.size(), std::memory_order_relaxed);
}

std::vector<hub::follower_stat> hub::follower_stats() const {
  std::vector<std::shared_ptr<subscription>> followers;
  {
    std::lock_guard lock(mutex_);
    followers = followers_;
  }
  std::vector<follower_stat> out;
  for (const auto& f : followers) out.push_back({f->queued(), f->bound(), f->skipped()});
  return out;
}

void hub::set_uploader(std::shared_ptr<uploader> u) {
  uploader_ = std::move(u);
}

void hub::set_span_exporter(std::shared_ptr<uploader> u) {
  spans_ = std::move(u);
}

void hub::close() {
  std::vector<std::shared_ptr<subscription>> followers;
  {
    std::lock_guard lock(mutex_);
    followers.swap(followers_);
    follower_count_.store(0, std::memory_order_relaxed);
  }
  for (const auto& f : followers) f->close();
  if (uploader_) uploader_->stop();
  if (spans_) spans_->stop();
}

}  // namespace devspaces::proxy::trace
