#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <type_traits>
#include <utility>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/query.hpp>
#include <boost/system/error_code.hpp>

#if !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT) && !defined(BOOST_ASIO_WINDOWS) && \
    defined(BOOST_ASIO_HAS_EPOLL)
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/socket_ops.hpp>
#define DEVSPACES_READY_READ_REACTOR 1
#endif

// Readiness-first reads on the epoll reactor.
//
// Asio's epoll reactor registers a socket once (EPOLLIN, edge-triggered) and keeps one flag per
// socket: "try the next read before waiting". Every epoll event sets it; for a stream socket only
// a 0-byte read (EOF) clears it. So every read tries `recv` first and fails with EAGAIN whenever
// the peer has not spoken yet (a response right after its request, the next request on a
// keep-alive connection), and `async_wait` re-arms the descriptor with `epoll_ctl(MOD)` each time
// because it cannot know whether its edge already passed.
//
// A short read on a TCP socket (fewer bytes than asked) empties its receive queue, and any byte
// arriving afterwards raises a new edge. async_read_some_drained() records that in the same flag,
// under the reactor's lock, at the moment of the read; async_wait_readable() then waits for the
// next edge without `epoll_ctl` and without `recv`, and the following read on a socket that had no
// edge since is queued without trying first. Both fall back to Asio's own calls on other backends.

namespace devspaces::proxy::io {

/// Reads some bytes like `socket.async_read_some(buffer, token)`; a short read also tells the
/// reactor the socket is drained, so the next read or async_wait_readable() on it waits for
/// epoll's next edge instead of trying a `recv` that would fail. Completes with (ec, n).
template <typename Token>
auto async_read_some_drained(boost::asio::ip::tcp::socket& socket,
                             boost::asio::mutable_buffer buffer, Token&& token);

/// Waits until `socket` has something to read (data, EOF or an error). After a drained read with
/// no edge since, it is queued behind the registered EPOLLIN and completed by the next edge
/// without any system call; otherwise it first looks once with `recv(MSG_PEEK)` (after a read
/// that was not drained, e.g. by Asio's own read). Unlike `async_wait(wait_read)` it never
/// re-arms the descriptor (`epoll_ctl`). Cancelled by `socket.cancel()`/`close()` and by
/// per-operation cancellation (`operation_aborted`).
template <typename Token>
auto async_wait_readable(boost::asio::ip::tcp::socket& socket, Token&& token);

namespace ready_read_detail {

#ifdef DEVSPACES_READY_READ_REACTOR
namespace det = boost::asio::detail;

/// Reaches the socket's implementation (protected in basic_socket).
struct socket_access : boost::asio::ip::tcp::socket {
  static auto& impl(boost::asio::ip::tcp::socket& s) {
    return (s.*(&socket_access::impl_)).get_implementation();
  }
};

/// Per-operation cancellation: takes the operation off the descriptor's read queue.
class cancel_read {
 public:
  cancel_read(det::reactor* r, det::reactor::per_descriptor_data* d, int fd)
      : reactor_(r), data_(d), fd_(fd) {}
  void operator()(boost::asio::cancellation_type_t type) {
    using boost::asio::cancellation_type;
    if (!!(type &
           (cancellation_type::terminal | cancellation_type::partial | cancellation_type::total)))
      reactor_->cancel_ops_by_key(fd_, *data_, det::reactor::read_op, this);
  }

 private:
  det::reactor* reactor_;
  det::reactor::per_descriptor_data* data_;
  int fd_;
};

/// A recv whose short read reports "exhausted" (Asio's own reports it for EOF only).
template <typename Handler, typename IoExecutor>
class drained_recv_op : public det::reactor_op {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(drained_recv_op);

  drained_recv_op(det::socket_type fd, boost::asio::mutable_buffer buffer, Handler& handler,
                  const IoExecutor& io_ex)
      : det::reactor_op(boost::system::error_code(), &drained_recv_op::do_perform,
                        &drained_recv_op::do_complete),
        fd_(fd),
        buffer_(buffer),
        handler_(std::move(handler)),
        work_(handler_, io_ex) {}

  static status do_perform(det::reactor_op* base) {
    auto* o = static_cast<drained_recv_op*>(base);
    if (!det::socket_ops::non_blocking_recv1(o->fd_, o->buffer_.data(), o->buffer_.size(), 0, true,
                                             o->ec_, o->bytes_transferred_))
      return not_done;
    if (o->ec_) return done;
    return o->bytes_transferred_ < o->buffer_.size() ? done_and_exhausted : done;
  }

  static void do_complete(void* owner, det::operation* base, const boost::system::error_code&,
                          std::size_t) {
    auto* o = static_cast<drained_recv_op*>(base);
    ptr p = {det::addressof(o->handler_), o, o};
    det::handler_work<Handler, IoExecutor> w(std::move(o->work_));
    det::binder2<Handler, boost::system::error_code, std::size_t> handler(o->handler_, o->ec_,
                                                                          o->bytes_transferred_);
    p.h = det::addressof(handler.handler_);
    p.reset();
    if (owner) {
      det::fenced_block b(det::fenced_block::half);
      w.complete(handler, handler.handler_);
    }
  }

 private:
  det::socket_type fd_;
  boost::asio::mutable_buffer buffer_;
  Handler handler_;
  det::handler_work<Handler, IoExecutor> work_;
};

/// True while this thread is inside start_read_op()'s reactor call: a perform() then is the
/// reactor's speculative attempt, any other is the reactor reporting an edge.
inline thread_local bool starting_op = false;

/// Waits for readability. Started when the reactor has seen an edge since the last drained read
/// (it may or may not have bytes), it looks once with recv(MSG_PEEK) and waits if nothing is
/// there; completed by an edge, it makes no call at all.
template <typename Handler, typename IoExecutor>
class ready_wait_op : public det::reactor_op {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(ready_wait_op);

  ready_wait_op(det::socket_type fd, Handler& handler, const IoExecutor& io_ex)
      : det::reactor_op(boost::system::error_code(), &ready_wait_op::do_perform,
                        &ready_wait_op::do_complete),
        fd_(fd),
        handler_(std::move(handler)),
        work_(handler_, io_ex) {}

  static status do_perform(det::reactor_op* base) {
    if (!starting_op) return done;  // an edge: data, EOF or an error is there
    auto* o = static_cast<ready_wait_op*>(base);
    char c;
    std::size_t n = 0;
    boost::system::error_code ec;
    if (!det::socket_ops::non_blocking_recv1(o->fd_, &c, 1, MSG_PEEK, true, ec, n))
      return not_done;  // nothing yet: wait for the edge
    return done;        // bytes, EOF or an error: the read will see them
  }

  static void do_complete(void* owner, det::operation* base, const boost::system::error_code&,
                          std::size_t) {
    auto* o = static_cast<ready_wait_op*>(base);
    ptr p = {det::addressof(o->handler_), o, o};
    det::handler_work<Handler, IoExecutor> w(std::move(o->work_));
    det::binder1<Handler, boost::system::error_code> handler(o->handler_, o->ec_);
    p.h = det::addressof(handler.handler_);
    p.reset();
    if (owner) {
      det::fenced_block b(det::fenced_block::half);
      w.complete(handler, handler.handler_);
    }
  }

 private:
  det::socket_type fd_;
  Handler handler_;
  det::handler_work<Handler, IoExecutor> work_;
};

/// Starts `op` (built by make(handler, fd)) on the socket's read queue, speculation allowed.
/// False (nothing started, handler untouched) when the socket cannot take it.
template <typename Op, typename Handler>
bool start_read_op(boost::asio::ip::tcp::socket& socket, Handler& h, auto&& make) {
  namespace asio = boost::asio;
  auto& impl = socket_access::impl(socket);
  if (impl.socket_ == det::invalid_socket) return false;
  // A socket that never had an asynchronous operation is still blocking inside; Asio's reads set
  // this once per socket, and so does this.
  if ((impl.state_ &
       (det::socket_ops::user_set_non_blocking | det::socket_ops::internal_non_blocking)) == 0) {
    boost::system::error_code ec;
    if (!det::socket_ops::set_internal_non_blocking(impl.socket_, impl.state_, true, ec))
      return false;
  }
  auto& reactor =
      asio::use_service<det::reactor>(asio::query(socket.get_executor(), asio::execution::context));
  const bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(h);
  auto slot = asio::get_associated_cancellation_slot(h);
  typename Op::ptr p = {det::addressof(h), Op::ptr::allocate(h), 0};
  p.p = make(p.v, h, impl.socket_);
  if (slot.is_connected())
    p.p->cancellation_key_ =
        &slot.template emplace<cancel_read>(&reactor, &impl.reactor_data_, impl.socket_);
  starting_op = true;
  reactor.start_op(det::reactor::read_op, impl.socket_, impl.reactor_data_, p.p, is_continuation,
                   true);
  starting_op = false;
  p.v = p.p = 0;
  return true;
}
#endif

struct initiate_read {
  template <typename Handler>
  void operator()(Handler&& handler, boost::asio::ip::tcp::socket* socket,
                  boost::asio::mutable_buffer buffer) const {
#ifdef DEVSPACES_READY_READ_REACTOR
    using handler_t = std::decay_t<Handler>;
    using executor_t = boost::asio::ip::tcp::socket::executor_type;
    using op = drained_recv_op<handler_t, executor_t>;
    handler_t h(std::forward<Handler>(handler));
    const auto ex = socket->get_executor();
    if (buffer.size() > 0 &&  // an empty read completes at once, as Asio's does
        start_read_op<op>(*socket, h, [&](void* mem, handler_t& hh, det::socket_type fd) {
          return new (mem) op(fd, buffer, hh, ex);
        }))
      return;
    socket->async_read_some(buffer, std::move(h));
#else
    socket->async_read_some(buffer, std::forward<Handler>(handler));
#endif
  }
};

struct initiate_wait {
  template <typename Handler>
  void operator()(Handler&& handler, boost::asio::ip::tcp::socket* socket) const {
#ifdef DEVSPACES_READY_READ_REACTOR
    using handler_t = std::decay_t<Handler>;
    using executor_t = boost::asio::ip::tcp::socket::executor_type;
    using op = ready_wait_op<handler_t, executor_t>;
    handler_t h(std::forward<Handler>(handler));
    const auto ex = socket->get_executor();
    if (start_read_op<op>(*socket, h, [&](void* mem, handler_t& hh, det::socket_type fd) {
          return new (mem) op(fd, hh, ex);
        }))
      return;
    socket->async_wait(boost::asio::socket_base::wait_read, std::move(h));
#else
    socket->async_wait(boost::asio::socket_base::wait_read, std::forward<Handler>(handler));
#endif
  }
};

}  // namespace ready_read_detail

template <typename Token>
auto async_read_some_drained(boost::asio::ip::tcp::socket& socket,
                             boost::asio::mutable_buffer buffer, Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      ready_read_detail::initiate_read{}, token, &socket, buffer);
}

template <typename Token>
auto async_wait_readable(boost::asio::ip::tcp::socket& socket, Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
      ready_read_detail::initiate_wait{}, token, &socket);
}

}  // namespace devspaces::proxy::io
