#include "proxy/io/deadline.hpp"
// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace devspaces::proxy::io {

namespace asio = boost::asio;

deadline::deadline(const asio::any_io_executor& ex, std::function<void()> on_expire)
    : timer_(ex), on_expire_(std::move(on_expire)) {}

void deadline::arm(clock::time_point at, std::uint8_t tag) {
  at_ = at;
  tag_ = tag;
  if (closed_ || at == clock::time_point::max()) return;
  if (!pending_) {
    wait();
  } else if (at < timer_.expiry()) {
    timer_.cancel();  // the callback runs and waits again for the earlier time
  }
}

void deadline::expire_now(std::uint8_t tag) {
  at_ = clock::time_point::max();
  fire(tag);
}

void deadline::fire(std::uint8_t tag) {
  expired_ = true;
  fired_tag_ = tag;
  if (on_expire_) on_expire_();
}

void deadline::wait() {
  timer_.expires_at(at_);
  pending_ = true;
  timer_.async_wait([this](const boost::system::error_code&) { on_timer(); });
}

void deadline::on_timer() {
  pending_ = false;
  if (closed_ || at_ == clock::time_point::max()) return;
  if (at_ <= clock::now()) {
    at_ = clock::time_point::max();
    fire(tag_);
    return;
  }
  wait();
}

asio::awaitable<void> deadline::close() {
  closed_ = true;
  timer_.cancel();
  // The callback is queued by now (cancelled or expired) and runs before this post completes.
  while (pending_) {
    co_await asio::post(asio::use_awaitable);
  }
}

}  // namespace devspaces::proxy::io
