#pragma once

// Readiness-first reads on a TCP socket: a receive is made only when the socket may hold
// bytes, and waiting for bytes never changes the epoll interest set.
//
// Asio's epoll reactor keeps, per socket, a "may be readable" bit that is set by every
// readiness event and cleared only when a receive finds nothing (EAGAIN). Its async_read_some
// therefore starts every read with a receive, and on a keep-alive connection the read that
// follows each message fails with EAGAIN; its async_wait re-registers the descriptor
// (epoll_ctl) on every call. The functions here share that bit with the reactor:
//
// - read_some() receives at once only when the bit is set, else it queues a wait on the
//   reactor's read queue (edge-triggered, no system call). A read that returns fewer bytes
//   than asked for drained the socket, so it clears the bit right away — when the socket is
//   watched for the peer's close (watch_peer_close()) and no close was seen, since bytes and a
//   FIN that come together raise one readiness event only.
// - read_now() is read_some()'s first step alone: callers that find their bytes already there
//   read without a coroutine frame.
// - wait_readable() is async_wait(wait_read) without the epoll_ctl.
// - idle_state_of() says, without a system call, whether an idle socket has had nothing to read
//   and no close since its last read: a kept upstream connection in that state is reusable.
//
// All of it applies to Asio's epoll reactor (Boost 1.81), whose per-socket state it reads; with
// another reactor (io_uring, a different Boost) readiness_tracked() is false and every
// function falls back to the plain Asio operation. Every socket must belong to an io_context
// run by one thread.

#include <cstddef>
#include <optional>
#include <tuple>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

namespace devspaces::proxy::io {

/// True when this build reads the reactor's readiness state (Asio's epoll reactor).
bool readiness_tracked();

/// Reads up to `size` bytes into `data`: {error, bytes}; EOF is asio::error::eof with 0 bytes.
/// Cancelled by the socket's cancel()/close() and by the awaiting coroutine's cancellation
/// slot (operation_aborted).
boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some(
    boost::asio::ip::tcp::socket& socket, char* data, std::size_t size);

/// The same read when it needs no wait, made at once and without a coroutine frame: {error,
/// bytes} when the socket may hold bytes and the receive found some (or EOF, or an error);
/// nothing when the caller must wait, i.e. call read_some(): the socket is known drained, or the
/// receive found nothing (and the socket is marked drained for the wait). When readiness is not
/// tracked it always makes the receive.
std::optional<std::tuple<boost::system::error_code, std::size_t>> read_now(
    boost::asio::ip::tcp::socket& socket, char* data, std::size_t size);

/// Waits until the socket is readable (bytes, EOF or an error), consuming nothing: {error}.
/// Adds no coroutine frame of its own (an idle connection waits here, so its memory counts).
boost::asio::awaitable<std::tuple<boost::system::error_code>> wait_readable(
    boost::asio::ip::tcp::socket& socket);

/// For code that makes its own receives (recv, splice) on a non-blocking socket: whether one may
/// find bytes (false only when a tracked socket is known to be drained), and what one found: a
/// short read (fewer bytes than asked for) or nothing (EAGAIN). After note_would_block(),
/// wait_readable() waits for the next readiness event without a system call.
bool may_be_readable(boost::asio::ip::tcp::socket& socket);
void note_short_read(boost::asio::ip::tcp::socket& socket);
void note_would_block(boost::asio::ip::tcp::socket& socket);

/// Asks the reactor to report the peer's close (EPOLLRDHUP) too: one epoll_ctl the first time
/// for a socket, nothing after. Lets read_some() trust short reads on this socket.
void watch_peer_close(boost::asio::ip::tcp::socket& socket);

/// What the reactor knows about an idle socket without a system call.
enum class idle_state : unsigned char {
  unknown,  ///< not watched for the peer's close (or readiness is not tracked)
  quiet,    ///< its last read drained it, and no event (bytes, close, error) came since
  stirred,  ///< something may have come since: only a receive can tell what
};
idle_state idle_state_of(boost::asio::ip::tcp::socket& socket);

}  // namespace devspaces::proxy::io
