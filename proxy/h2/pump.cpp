#include "proxy/h2/pump.hpp"

// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <nghttp2/nghttp2.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "proxy/io/readiness.hpp"
#include "proxy/io/socket_util.hpp"

namespace devspaces::proxy::h2 {

namespace asio = boost::asio;
using asio::ip::tcp;
using token = asio::as_tuple_t<asio::use_awaitable_t<>>;
using namespace asio::experimental::awaitable_operators;

namespace {
constexpr std::size_t read_size = 16 * 1024;
}

pump::pump(tcp::socket socket, const limits& lim, std::chrono::milliseconds write_timeout)
    : sock_(std::move(socket)),
      lim_(lim),
      write_timeout_(write_timeout),
      write_deadline_(sock_.get_executor(), io::cancel_on_expire(sock_)),
      wake_(sock_.get_executor()) {
  boost::system::error_code ec;
  sock_.set_option(tcp::no_delay(true), ec);
}

pump::~pump() = default;

void pump::kick() {
  if (waiting_) wake_.cancel();
}

void pump::close_now() {
  closed_ = true;
  io::close_quietly(sock_);
  kick();
}

bool pump::session_over() const {
  return ng_ == nullptr ||
         (nghttp2_session_want_read(ng_.get()) == 0 && nghttp2_session_want_write(ng_.get()) == 0);
}

bool pump::feed(const std::uint8_t* data, std::size_t n) {
  const auto rv = nghttp2_session_mem_recv(ng_.get(), data, n);
  if (rv < 0) {
    // Bad magic, a flood, a failed callback: say goodbye (best effort) and stop reading.
    nghttp2_session_terminate_session(
        ng_.get(), rv == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
    kick();
    return false;
  }
  kick();
  return true;
}

asio::awaitable<void> pump::run_loops(std::string initial) {
  co_await asio::this_coro::throw_if_cancelled(false);
  if (ng_ == nullptr) {
    close_now();
    co_return;
  }
  co_await (read_loop(std::move(initial)) && write_loop());
}

asio::awaitable<void> pump::read_loop(std::string initial) {
  co_await asio::this_coro::throw_if_cancelled(false);
  bool ok = true;
  if (!initial.empty()) {
    rx_ += initial.size();
    ok = feed(reinterpret_cast<const std::uint8_t*>(initial.data()), initial.size());
    std::string().swap(initial);
  }
  in_.resize(read_size);
  // Readiness-first reads: after a read that drained the socket the next one waits for the
  // next readiness event instead of failing with EAGAIN (watched for the peer's close, so a
  // close that comes with the last bytes is seen).
  io::watch_peer_close(sock_);
  auto* data = reinterpret_cast<char*>(in_.data());
  while (ok && !closed_ && !session_over()) {
    // Bytes already there are read at once, without a frame; otherwise io::read_some waits for
    // the next readiness event (no system call) and reads then.
    auto got = io::read_now(sock_, data, in_.size());
    if (!got) {
      got = co_await io::read_some(sock_, data, in_.size());
    }
    const auto [ec, n] = *got;
    if (ec || n == 0) break;
    rx_ += n;
    if (rx_counter_ != nullptr) rx_counter_->Increment(static_cast<double>(n));
    ok = feed(in_.data(), n);
  }
  std::vector<std::uint8_t>().swap(in_);
  read_done_ = true;
  kick();
}

asio::awaitable<void> pump::write_loop() {
  co_await asio::this_coro::throw_if_cancelled(false);
  while (!closed_) {
    out_.clear();
    while (out_.size() < lim_.max_output) {
      const std::uint8_t* p = nullptr;
      const auto n = nghttp2_session_mem_send(ng_.get(), &p);
      if (n < 0) {
        closed_ = true;
        break;
      }
      if (n == 0) break;
      out_.append(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
    }
    if (!out_.empty()) {
      // One timer for the connection's life: re-arming per write only moves a number.
      write_deadline_.arm_after(write_timeout_);
      auto [ec, n] = co_await asio::async_write(sock_, asio::buffer(out_), token{});
      write_deadline_.disarm();
      tx_ += n;
      if (tx_counter_ != nullptr && n > 0) tx_counter_->Increment(static_cast<double>(n));
      if (ec) break;
      continue;
    }
    if (closed_ || read_done_ || session_over()) break;
    waiting_ = true;
    wake_.expires_at(std::chrono::steady_clock::time_point::max());
    co_await wake_.async_wait(token{});
    waiting_ = false;
  }
  std::string().swap(out_);
  co_await write_deadline_.close();
  closed_ = true;
  boost::system::error_code ec;
  sock_.shutdown(tcp::socket::shutdown_send, ec);
  io::close_quietly(sock_);
}

}  // namespace devspaces::proxy::h2
