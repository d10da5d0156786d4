#include "proxy/http/message_relay.hpp"

// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include <prometheus/counter.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "proxy/io/readiness.hpp"

namespace devspaces::proxy::http {

namespace asio = boost::asio;
using asio::ip::tcp;
using token = asio::as_tuple_t<asio::use_awaitable_t<>>;

namespace {

constexpr std::size_t read_chunk = 16 * 1024;

// Buffers released between messages go to a small per-thread cache, at most 32 of the common
// size (address space; only the pages a buffer ever had bytes in are resident, as they would be
// in malloc's free lists).
class buffer_cache {
 public:
  std::unique_ptr<char[]> take(std::size_t capacity) {
    if (capacity == capacity_ && !spare_.empty()) {
      auto p = std::move(spare_.back());
      spare_.pop_back();
      return p;
    }
    return std::make_unique_for_overwrite<char[]>(capacity);
  }
  void give(std::unique_ptr<char[]> p, std::size_t capacity) {
    if (capacity_ == 0) capacity_ = capacity;
    if (capacity != capacity_ || spare_.size() >= max_spare) return;  // freed here
    spare_.push_back(std::move(p));
  }

 private:
  static constexpr std::size_t max_spare = 32;
  std::size_t capacity_ = 0;
  std::vector<std::unique_ptr<char[]>> spare_;
};

buffer_cache& buffers() {
  thread_local buffer_cache cache;
  return cache;
}

}  // namespace

void byte_buffer::ensure() {
  if (!data) data = buffers().take(capacity);
}

void byte_buffer::release() {
  if (end == 0 && data) buffers().give(std::move(data), capacity);
}

void byte_buffer::compact() {
  if (parsed > 0 && end > parsed) std::memmove(data.get(), data.get() + parsed, end - parsed);
  end -= std::min(parsed, end);
  parsed = 0;
  sent = 0;
}

message_relay::message_relay(parser::kind k, std::size_t max_head_bytes, std::size_t capacity,
                             io::deadline& dl, relay_hooks hooks)
    : buf_(capacity), parser_(k, max_head_bytes), deadline_(dl), hooks_(hooks) {}

void message_relay::preload(std::span<const char> bytes) {
  buf_.ensure();
  const auto n = std::min(bytes.size(), buf_.capacity - buf_.end);
  if (n > 0) std::memcpy(buf_.base() + buf_.end, bytes.data(), n);
  buf_.end += n;
}

void message_relay::start(bool head_request, bool connect_request) {
  buf_.ensure();
  buf_.compact();
  parser_.begin_message(buf_.base(), head_request, connect_request);
  whole_ = true;
}

void message_relay::finish_message(bool keep_unparsed) {
  if (!keep_unparsed) buf_.clear();
  if (buf_.allocated()) buf_.compact();
  if (buf_.end == 0) {
    buf_.release();
    parser_.release();
  }
}

std::span<const char> message_relay::unparsed() const {
  if (!buf_.data) return {};
  return {buf_.data.get() + buf_.parsed, buf_.end - buf_.parsed};
}

void message_relay::count_read(std::size_t n) {
  if (hooks_.read_bytes != nullptr && n > 0) hooks_.read_bytes->Increment(static_cast<double>(n));
}

void message_relay::count_written(std::size_t n) {
  if (hooks_.written_bytes != nullptr && n > 0)
    hooks_.written_bytes->Increment(static_cast<double>(n));
}

// Where this relay reads without waiting. Reads are readiness-first (io::read_now): a receive is
// made only when the socket may hold bytes, so the read after a message's last bytes finds
// nothing to do and the caller waits for the next readiness event (a head with
// io::wait_readable: no system call, no coroutine frame; a body with io::read_some) instead of a
// recv failing with EAGAIN.
std::optional<std::tuple<boost::system::error_code, std::size_t>> message_relay::read_now(
    tcp::socket& from, std::size_t max, read_policy policy) {
  if (policy == read_policy::wait_first) return std::nullopt;
  return io::read_now(from, buf_.base() + buf_.end, max);
}

relay_status message_relay::feed_head() {
  auto r = parser_.feed(buf_.base() + buf_.parsed, buf_.end - buf_.parsed);
  buf_.parsed += r.consumed;
  if (r.event != parse_event::error) return relay_status::ok;
  return parser_.error() == parse_error::head_too_large ? relay_status::head_too_large
                                                        : relay_status::bad_message;
}

relay_status message_relay::after_read_error(const boost::system::error_code&) {
  if (stopped_) return relay_status::stopped;
  if (deadline_.expired()) return relay_status::timed_out;
  return relay_status::closed;
}

// Parses what is buffered and reads what the socket holds until the head is complete or fails
// (a status), or until a read would have to wait (nothing). `policy` becomes speculative after
// the first read.
std::optional<relay_status> message_relay::head_progress(tcp::socket& from, read_policy& policy) {
  while (!parser_.head_complete()) {
    if (buf_.parsed < buf_.end) {
      const auto st = feed_head();
      if (st != relay_status::ok) return done(st);
      if (parser_.head_complete()) break;
    }
    if (buf_.end == buf_.capacity) return done(relay_status::head_too_large);
    if (stopped_) return done(relay_status::stopped);
    if (deadline_.expired()) return done(relay_status::timed_out);
    const auto got = read_now(from, buf_.capacity - buf_.end, policy);
    if (!got) return std::nullopt;
    policy = read_policy::speculative;
    const auto [ec, n] = *got;
    if (ec || n == 0) return done(after_read_error(ec));
    count_read(n);
    buf_.end += n;
  }
  return done(relay_status::ok);
}

std::optional<relay_status> message_relay::try_read_head(tcp::socket& from,
                                                         read_policy first_read) {
  return head_progress(from, first_read);
}

asio::awaitable<relay_status> message_relay::read_head(tcp::socket& from, read_policy first_read) {
  auto policy = first_read;
  for (;;) {
    const auto st = head_progress(from, policy);
    if (st) co_return *st;
    // head_progress() found the socket drained: wait for its next readiness event (no system
    // call, no coroutine frame), then read again.
    auto [ec] = co_await io::wait_readable(from);
    if (ec) co_return done(after_read_error(ec));
    policy = read_policy::speculative;
  }
}

bool message_relay::try_write_head(tcp::socket& to, const head_edit& edit, bool with_body) {
  const auto& h = parser_.head();
  auto pieces = edit.pieces(buf_.base(), h.start, h.end);
  constexpr std::size_t max_iov = 16;
  if (pieces.size() + 1 > max_iov) return false;
  iovec iov[max_iov];
  std::size_t count = 0;
  std::size_t total = 0;
  for (auto p : pieces) {
    iov[count++] = {const_cast<char*>(p.data()), p.size()};
    total += p.size();
  }
  if (with_body && buf_.parsed > h.end) {
    iov[count++] = {buf_.base() + h.end, buf_.parsed - h.end};
    total += buf_.parsed - h.end;
  }
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = count;
  const auto n = ::sendmsg(to.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n <= 0) return false;  // write_head() waits, or reports the error
  count_written(static_cast<std::size_t>(n));
  if (static_cast<std::size_t>(n) < total) {
    head_sent_ = static_cast<std::size_t>(n);
    return false;
  }
  buf_.sent = with_body ? buf_.parsed : h.end;
  done(relay_status::ok);
  return true;
}

asio::awaitable<relay_status> message_relay::write_head(tcp::socket& to, const head_edit& edit,
                                                        bool with_body) {
  const auto& h = parser_.head();
  auto pieces = edit.pieces(buf_.base(), h.start, h.end);
  std::vector<asio::const_buffer> bufs;
  bufs.reserve(pieces.size() + 1);
  for (auto p : pieces) bufs.emplace_back(p.data(), p.size());
  if (with_body && buf_.parsed > h.end) bufs.emplace_back(buf_.base() + h.end, buf_.parsed - h.end);
  // Skip what try_write_head() already sent.
  std::size_t skip = std::exchange(head_sent_, 0);
  std::size_t first = 0;
  while (first < bufs.size() && skip >= bufs[first].size()) skip -= bufs[first++].size();
  if (first < bufs.size()) bufs[first] += skip;
  bufs.erase(bufs.begin(), bufs.begin() + static_cast<std::ptrdiff_t>(first));
  auto [ec, n] = co_await asio::async_write(to, bufs, token{});
  count_written(n);
  buf_.sent = with_body ? buf_.parsed : h.end;
  if (ec) co_return done(stopped_ ? relay_status::stopped : relay_status::write_failed);
  co_return done(relay_status::ok);
}

asio::awaitable<relay_status> message_relay::body_step(tcp::socket& from, tcp::socket& to) {
  if (buf_.end == buf_.capacity) co_return relay_status::closed;  // the parser takes what is read
  const auto max = std::min(read_chunk, buf_.capacity - buf_.end);
  // Bytes already there are read without a frame; a read that must wait takes io::read_some's.
  auto got = read_now(from, max, read_policy::speculative);
  if (!got) {
    got = co_await io::read_some(from, buf_.base() + buf_.end, max);
  }
  const auto [ec, n] = *got;
  if (stopped_) co_return relay_status::stopped;
  if (ec || n == 0) {
    if (!ec || ec == asio::error::eof) {
      if (parser_.finish() == parse_event::message_complete) {  // a close-delimited body
        if (hooks_.recorder != nullptr) hooks_.recorder->on_body(hooks_.side, parser_.body());
        co_return relay_status::ok;
      }
    }
    co_return after_read_error(ec);
  }
  count_read(n);
  buf_.end += n;
  auto r = parser_.feed(buf_.base() + buf_.parsed, buf_.end - buf_.parsed);
  buf_.parsed += r.consumed;
  if (hooks_.recorder != nullptr) hooks_.recorder->on_body(hooks_.side, parser_.body());
  if (r.event == parse_event::error) co_return relay_status::bad_message;
  auto [wec, wn] = co_await asio::async_write(
      to, asio::buffer(buf_.base() + buf_.sent, buf_.parsed - buf_.sent), token{});
  count_written(wn);
  buf_.sent = buf_.parsed;
  if (wec) co_return stopped_ ? relay_status::stopped : relay_status::write_failed;
  co_return relay_status::ok;
}

asio::awaitable<relay_status> message_relay::relay_body(tcp::socket& from, tcp::socket& to,
                                                        clock::duration idle, std::uint8_t tag) {
  while (!parser_.message_done()) {
    buf_.drop_forwarded();
    if (stopped_) co_return done(relay_status::stopped);
    if (deadline_.expired()) co_return done(relay_status::timed_out);
    deadline_.arm_after(idle, tag);
    whole_ = false;
    const auto st = co_await body_step(from, to);
    if (st != relay_status::ok) co_return done(st);
  }
  co_return done(relay_status::ok);
}

}  // namespace devspaces::proxy::http
