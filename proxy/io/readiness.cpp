#include "proxy/io/readiness.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <optional>
#include <type_traits>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/version.hpp>

#if defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT) && \
    BOOST_VERSION == 108100
#define DEVSPACES_READINESS_TRACKED 1
#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/reactive_socket_service.hpp>
#include <boost/asio/detail/reactive_wait_op.hpp>
#else
#define DEVSPACES_READINESS_TRACKED 0
#endif

namespace devspaces::proxy::io {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using read_result = std::tuple<error_code, std::size_t>;
constexpr auto token = asio::as_tuple(asio::use_awaitable);

#if DEVSPACES_READINESS_TRACKED

namespace {

namespace detail = asio::detail;
using reactor = detail::epoll_reactor;
using state = reactor::descriptor_state;
static_assert(std::is_same_v<detail::reactor, reactor>);
}  // namespace

// The reactor keeps its per-socket state private. An explicit instantiation may name private
// members ([temp.explicit]), so each `member<Tag, &X::m>` below hands out a pointer to one of
// them through the friend function get(Tag), found by argument-dependent lookup.
namespace reactor_access {
template <typename Tag, typename Tag::type Pointer>
struct member {
  friend typename Tag::type get(Tag) { return Pointer; }
};

using socket_impl_type =
    detail::io_object_impl<detail::reactive_socket_service<tcp>, asio::any_io_executor>;
struct socket_impl_tag {
  using type = socket_impl_type asio::basic_socket<tcp, asio::any_io_executor>::*;
  friend type get(socket_impl_tag);
};
struct try_speculative_tag {
  using type = bool (state::*)[reactor::max_ops];
  friend type get(try_speculative_tag);
};
struct registered_events_tag {
  using type = std::uint32_t state::*;
  friend type get(registered_events_tag);
};
struct state_mutex_tag {
  using type = detail::conditionally_enabled_mutex state::*;
  friend type get(state_mutex_tag);
};
struct state_reactor_tag {
  using type = reactor* state::*;
  friend type get(state_reactor_tag);
};
struct epoll_fd_tag {
  using type = int reactor::*;
  friend type get(epoll_fd_tag);
};
struct task_result_tag {
  using type = unsigned int detail::scheduler_operation::*;
  friend type get(task_result_tag);
};

}  // namespace reactor_access

template struct reactor_access::member<reactor_access::socket_impl_tag,
                                       &asio::basic_socket<tcp, asio::any_io_executor>::impl_>;
template struct reactor_access::member<reactor_access::try_speculative_tag,
                                       &state::try_speculative_>;
template struct reactor_access::member<reactor_access::registered_events_tag,
                                       &state::registered_events_>;
template struct reactor_access::member<reactor_access::state_mutex_tag, &state::mutex_>;
template struct reactor_access::member<reactor_access::state_reactor_tag, &state::reactor_>;
template struct reactor_access::member<reactor_access::epoll_fd_tag, &reactor::epoll_fd_>;
template struct reactor_access::member<reactor_access::task_result_tag,
                                       &detail::scheduler_operation::task_result_>;

namespace {

constexpr std::uint32_t closed_events = EPOLLRDHUP | EPOLLHUP | EPOLLERR;

detail::reactive_socket_service_base::base_implementation_type& impl_of(tcp::socket& s) {
  return (s.*get(reactor_access::socket_impl_tag{})).get_implementation();
}

// The socket's reactor state, or null when it has none (closed socket).
state* state_of(tcp::socket& s) {
  return impl_of(s).reactor_data_;
}

bool& may_read(state* d) {
  return (d->*get(reactor_access::try_speculative_tag{}))[reactor::read_op];
}

std::uint32_t& registered(state* d) {
  return d->*get(reactor_access::registered_events_tag{});
}

// The events of the socket's last readiness report. descriptor_state is privately derived
// from scheduler_operation, which holds them; the C-style cast names that base.
unsigned int last_events(state* d) {
  return ((detail::scheduler_operation*)d)->*get(reactor_access::task_result_tag{});  // NOLINT
}

// A short read drained the socket: no receive until the next readiness event, provided a close
// that came with the bytes would have been seen (it raises no event of its own).
void note_drained(state* d) {
  detail::conditionally_enabled_mutex::scoped_lock lock(d->*get(reactor_access::state_mutex_tag{}));
  if ((registered(d) & EPOLLRDHUP) != 0 && (last_events(d) & closed_events) == 0)
    may_read(d) = false;
}

void note_empty(state* d) {
  detail::conditionally_enabled_mutex::scoped_lock lock(d->*get(reactor_access::state_mutex_tag{}));
  may_read(d) = false;
}

bool readable_now(state* d) {
  detail::conditionally_enabled_mutex::scoped_lock lock(d->*get(reactor_access::state_mutex_tag{}));
  return may_read(d);
}

// Removes a queued wait when the awaiting coroutine's cancellation slot fires.
class wait_cancellation {
 public:
  wait_cancellation(reactor* r, reactor::per_descriptor_data* data, int fd)
      : reactor_(r), data_(data), fd_(fd) {}
  void operator()(asio::cancellation_type_t type) {
    if (!!(type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                   asio::cancellation_type::total)))
      reactor_->cancel_ops_by_key(fd_, *data_, reactor::read_op, this);
  }

 private:
  reactor* reactor_;
  reactor::per_descriptor_data* data_;
  int fd_;
};

// Queues a wait for the socket's next readiness event, or completes it at once when the socket
// may already be readable: the reactor's start_op with speculation allowed, which for a read
// queue changes no epoll registration. The wait operation itself is Asio's (its perform step
// does nothing, so a readiness event completes it).
// With `peek_first`, a socket the reactor takes for readable (no read has drained it since the
// last event) is asked once with a peek: bytes, EOF or an error complete the wait at once;
// nothing queues it.
struct start_edge_wait {
  template <typename Handler>
  void operator()(Handler handler, tcp::socket* s, bool peek_first) const {
    auto& impl = impl_of(*s);
    state* d = impl.reactor_data_;
    if (d == nullptr) {
      auto ex = asio::get_associated_executor(handler, s->get_executor());
      asio::post(ex, [h = std::move(handler)]() mutable {
        std::move(h)(error_code(asio::error::bad_descriptor));
      });
      return;
    }
    reactor* r = d->*get(reactor_access::state_reactor_tag{});
    auto slot = asio::get_associated_cancellation_slot(handler);
    using op = detail::reactive_wait_op<Handler, asio::any_io_executor>;
    typename op::ptr p = {asio::detail::addressof(handler), op::ptr::allocate(handler), nullptr};
    p.p = new (p.v) op(error_code(), handler, s->get_executor());
    if (peek_first && readable_now(d) && !peek_finds_nothing(*s, d)) {
      r->post_immediate_completion(p.p, false);
      p.v = p.p = nullptr;
      return;
    }
    if (slot.is_connected())
      p.p->cancellation_key_ =
          &slot.template emplace<wait_cancellation>(r, &impl.reactor_data_, impl.socket_);
    r->start_op(reactor::read_op, impl.socket_, impl.reactor_data_, p.p, false, true);
    p.v = p.p = nullptr;
  }

  // One peek: true (and the socket marked drained) when it finds nothing to read.
  static bool peek_finds_nothing(tcp::socket& s, state* d) {
    for (;;) {
      char c;
      const ssize_t n = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return false;
      note_empty(d);
      return true;
    }
  }
};

}  // namespace

bool readiness_tracked() {
  return true;
}

std::optional<read_result> read_now(tcp::socket& socket, char* data, std::size_t size) {
  for (;;) {
    state* d = state_of(socket);
    if (d == nullptr) return read_result{asio::error::bad_descriptor, 0};
    if (!readable_now(d)) return std::nullopt;
    const ssize_t n = ::recv(socket.native_handle(), data, size, MSG_DONTWAIT);
    if (n > 0) {
      if (static_cast<std::size_t>(n) < size) note_drained(d);
      return read_result{error_code(), static_cast<std::size_t>(n)};
    }
    if (n == 0) return read_result{size == 0 ? error_code() : asio::error::eof, 0};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      note_empty(d);
      return std::nullopt;
    }
    return read_result{error_code(errno, asio::error::get_system_category()), 0};
  }
}

asio::awaitable<read_result> read_some(tcp::socket& socket, char* data, std::size_t size) {
  for (;;) {
    auto r = read_now(socket, data, size);
    if (r) co_return *r;
    // Initiated here, not through a helper coroutine: a frame fewer for every read that waits.
    auto [ec] = co_await asio::async_initiate<decltype(token), void(error_code)>(
        start_edge_wait{}, token, &socket, false);
    if (ec) co_return read_result{ec, 0};
    // Look again: the socket may have been closed meanwhile.
  }
}

asio::awaitable<std::tuple<error_code>> wait_readable(tcp::socket& socket) {
  return asio::async_initiate<decltype(token), void(error_code)>(start_edge_wait{}, token, &socket,
                                                                 true);
}

bool may_be_readable(tcp::socket& socket) {
  state* d = state_of(socket);
  return d == nullptr || readable_now(d);
}

void note_short_read(tcp::socket& socket) {
  if (state* d = state_of(socket)) note_drained(d);
}

void note_would_block(tcp::socket& socket) {
  if (state* d = state_of(socket)) note_empty(d);
}

void watch_peer_close(tcp::socket& socket) {
  state* d = state_of(socket);
  if (d == nullptr) return;
  detail::conditionally_enabled_mutex::scoped_lock lock(d->*get(reactor_access::state_mutex_tag{}));
  auto& events = registered(d);
  if (events == 0 || (events & EPOLLRDHUP) != 0) return;
  epoll_event ev{};
  ev.events = events | EPOLLRDHUP;
  ev.data.ptr = d;
  reactor* r = d->*get(reactor_access::state_reactor_tag{});
  // The kernel reports a pending readiness again after a modification, so nothing is missed.
  if (::epoll_ctl(r->*get(reactor_access::epoll_fd_tag{}), EPOLL_CTL_MOD, socket.native_handle(),
                  &ev) == 0)
    events = ev.events;
}

idle_state idle_state_of(tcp::socket& socket) {
  state* d = state_of(socket);
  if (d == nullptr) return idle_state::stirred;
  detail::conditionally_enabled_mutex::scoped_lock lock(d->*get(reactor_access::state_mutex_tag{}));
  if ((registered(d) & EPOLLRDHUP) == 0) return idle_state::unknown;
  return !may_read(d) && (last_events(d) & closed_events) == 0 ? idle_state::quiet
                                                               : idle_state::stirred;
}

#else  // another reactor: the plain Asio operations

bool readiness_tracked() {
  return false;
}

std::optional<read_result> read_now(tcp::socket& socket, char* data, std::size_t size) {
  // No readiness state to consult: one receive tells.
  for (;;) {
    const ssize_t n = ::recv(socket.native_handle(), data, size, MSG_DONTWAIT);
    if (n > 0) return read_result{error_code(), static_cast<std::size_t>(n)};
    if (n == 0) return read_result{size == 0 ? error_code() : asio::error::eof, 0};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
    return read_result{error_code(errno, asio::error::get_system_category()), 0};
  }
}

asio::awaitable<read_result> read_some(tcp::socket& socket, char* data, std::size_t size) {
  co_return co_await socket.async_read_some(asio::buffer(data, size), token);
}

asio::awaitable<std::tuple<error_code>> wait_readable(tcp::socket& socket) {
  return socket.async_wait(tcp::socket::wait_read, token);
}

bool may_be_readable(tcp::socket&) {
  return true;
}

void note_short_read(tcp::socket&) {}

void note_would_block(tcp::socket&) {}

void watch_peer_close(tcp::socket&) {}

idle_state idle_state_of(tcp::socket&) {
  return idle_state::unknown;
}

#endif

}  // namespace devspaces::proxy::io
