#include "proxy/io/relay.hpp"
// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/io/deadline.hpp"
#include "proxy/io/readiness.hpp"
#include "proxy/io/socket_util.hpp"

namespace devspaces::proxy::io {

namespace asio = boost::asio;
using asio::ip::tcp;
using token = asio::as_tuple_t<asio::use_awaitable_t<>>;
using namespace asio::experimental::awaitable_operators;

const char* to_string(relay_end e) {
  switch (e) {
    case relay_end::done:
      return "done";
    case relay_end::idle_timeout:
      return "idle_timeout";
    case relay_end::client_reset:
      return "client_reset";
    case relay_end::upstream_reset:
      return "upstream_reset";
    case relay_end::client_error:
      return "client_error";
    case relay_end::upstream_error:
      return "upstream_error";
  }
  return "unknown";
}

namespace {

constexpr std::size_t buffer_size = 16 * 1024;
constexpr int pipe_size = 256 * 1024;

/// A pipe for splice(2), created on first use and closed with the relay.
struct splice_pipe {
  int read_end = -1;
  int write_end = -1;
  std::size_t capacity = 0;
  splice_pipe() = default;
  splice_pipe(const splice_pipe&) = delete;
  splice_pipe& operator=(const splice_pipe&) = delete;
  ~splice_pipe() {
    if (read_end >= 0) ::close(read_end);
    if (write_end >= 0) ::close(write_end);
  }
  bool open() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return false;
    read_end = fds[0];
    write_end = fds[1];
    int size = ::fcntl(write_end, F_SETPIPE_SZ, pipe_size);
    if (size < 0) size = ::fcntl(write_end, F_GETPIPE_SZ);
    capacity = size > 0 ? static_cast<std::size_t>(size) : 65536;
    return true;
  }
};

/// Shared by the two copy loops of one relay (all on one strand-less executor: no locking). The
/// idle timeout is an io::deadline re-armed by every byte moved: its expiry aborts the relay.
struct relay_state {
  tcp::socket& client;
  tcp::socket& upstream;
  deadline idle;
  std::chrono::milliseconds idle_timeout;
  bool stop = false;
  int finished = 0;
  relay_end end = relay_end::done;
  bool reset_client = false;
  bool reset_upstream = false;

  relay_state(tcp::socket& c, tcp::socket& u, std::chrono::milliseconds timeout)
      : client(c),
        upstream(u),
        idle(c.get_executor(), [this] { abort(relay_end::idle_timeout, false, false); }),
        idle_timeout(timeout) {
    active();
  }

  /// Bytes moved: the idle timeout starts again.
  void active() { idle.arm_after(idle_timeout); }

  /// Ends the relay now: both loops stop at their next step.
  void abort(relay_end why, bool rst_client, bool rst_upstream) {
    if (stop) return;
    stop = true;
    end = why;
    reset_client = rst_client;
    reset_upstream = rst_upstream;
    idle.disarm();
    boost::system::error_code ignored;
    client.cancel(ignored);
    upstream.cancel(ignored);
  }
};

/// One direction of the relay.
struct one_way {
  tcp::socket& from;
  tcp::socket& to;
  bool from_client;  ///< client → upstream
  prometheus::Counter* counter;
  std::uint64_t& total;
  std::size_t splice_after;
};

void record_error(relay_state& st, const one_way& w, bool on_read, int err) {
  // A reset on one side is passed on as a reset to the other; other errors close both.
  bool reading_side_is_client = w.from_client == on_read;
  bool reset = is_reset_errno(err);
  if (reading_side_is_client)
    st.abort(reset ? relay_end::client_reset : relay_end::client_error, false, reset);
  else
    st.abort(reset ? relay_end::upstream_reset : relay_end::upstream_error, reset, false);
}

void account(relay_state& st, const one_way& w, std::size_t n) {
  st.active();
  w.total += n;
  if (w.counter) w.counter->Increment(static_cast<double>(n));
}

/// Writes all of [data, data+n) to w.to; false (after recording the error) on failure.
asio::awaitable<bool> write_all(relay_state& st, const one_way& w, const char* data,
                                std::size_t n) {
  while (n > 0) {
    ssize_t m = ::send(w.to.native_handle(), data, n, MSG_NOSIGNAL);
    if (m >= 0) {
      data += m;
      n -= static_cast<std::size_t>(m);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      record_error(st, w, false, errno);
      co_return false;
    }
    auto [ec] = co_await w.to.async_wait(tcp::socket::wait_write, token{});
    if (st.stop) co_return false;
    if (ec) {
      st.abort(w.from_client ? relay_end::upstream_error : relay_end::client_error, false, false);
      co_return false;
    }
  }
  co_return true;
}

/// Moves everything in the pipe to w.to; false (after recording the error) on failure.
asio::awaitable<bool> drain_pipe(relay_state& st, const one_way& w, splice_pipe& p,
                                 std::size_t pending) {
  while (pending > 0) {
    ssize_t m = ::splice(p.read_end, nullptr, w.to.native_handle(), nullptr, pending,
                         SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (m > 0) {
      pending -= static_cast<std::size_t>(m);
      continue;
    }
    if (m < 0 && errno == EINTR) continue;
    if (m < 0 && errno != EAGAIN) {
      record_error(st, w, false, errno);
      co_return false;
    }
    auto [ec] = co_await w.to.async_wait(tcp::socket::wait_write, token{});
    if (st.stop) co_return false;
    if (ec) {
      st.abort(w.from_client ? relay_end::upstream_error : relay_end::client_error, false, false);
      co_return false;
    }
  }
  co_return true;
}

/// Waits until w.from may hold bytes again (no system call once the socket is watched for the
/// peer's close); false (after recording the error) when the wait failed or the relay stops.
asio::awaitable<bool> wait_for_bytes(relay_state& st, const one_way& w) {
  watch_peer_close(w.from);  // once per socket: its short reads are then trusted
  auto [ec] = co_await wait_readable(w.from);
  if (st.stop) co_return false;
  if (ec) {
    st.abort(w.from_client ? relay_end::client_error : relay_end::upstream_error, false, false);
    co_return false;
  }
  co_return true;
}

asio::awaitable<void> copy(relay_state& st, one_way w) {
  co_await asio::this_coro::throw_if_cancelled(false);
  std::unique_ptr<char[]> buf;
  splice_pipe pipe;
  bool use_splice = false;
  std::uint64_t moved = 0;
  const int from_fd = w.from.native_handle();
  while (!st.stop) {
    if (!use_splice && moved >= w.splice_after &&
        w.splice_after != std::numeric_limits<std::size_t>::max()) {
      use_splice = pipe.open();  // out of descriptors: keep copying through the buffer
      if (use_splice) buf.reset();
    }
    if (!may_be_readable(w.from)) {
      // The last read drained the socket: give the buffer back while idle, then wait.
      buf.reset();
      const bool ready = co_await wait_for_bytes(st, w);
      if (!ready) break;
    }
    ssize_t n;
    if (use_splice) {
      n = ::splice(from_fd, nullptr, pipe.write_end, nullptr, pipe.capacity,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    } else {
      if (!buf) buf = std::make_unique_for_overwrite<char[]>(buffer_size);
      n = ::recv(from_fd, buf.get(), buffer_size, 0);
    }
    if (n > 0) {
      // A short recv drained the socket. A short splice need not have: the pipe can run out of
      // slots before the socket runs out of bytes.
      if (!use_splice && static_cast<std::size_t>(n) < buffer_size) note_short_read(w.from);
      account(st, w, static_cast<std::size_t>(n));
      moved += static_cast<std::uint64_t>(n);
      bool ok = false;
      if (use_splice)
        ok = co_await drain_pipe(st, w, pipe, static_cast<std::size_t>(n));
      else
        ok = co_await write_all(st, w, buf.get(), static_cast<std::size_t>(n));
      if (!ok) break;
      continue;
    }
    if (n == 0) {
      // EOF: pass the half-close on and let the other direction finish.
      ::shutdown(w.to.native_handle(), SHUT_WR);
      break;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      record_error(st, w, true, errno);
      break;
    }
    // Nothing to read: give the buffer back while idle, then wait for readability.
    note_would_block(w.from);
    buf.reset();
    const bool ready = co_await wait_for_bytes(st, w);
    if (!ready) break;
  }
  if (++st.finished == 2) st.idle.disarm();
}

/// Sends bytes read before the relay started; false when the write failed. Bytes from the
/// client were counted in bytes_total when they were read; bytes to the client count now.
asio::awaitable<bool> send_initial(relay_state& st, const one_way& w, const std::string& bytes) {
  if (bytes.empty()) co_return true;
  if (w.from_client) {
    st.active();
    w.total += bytes.size();
  } else {
    account(st, w, bytes.size());
  }
  co_return co_await write_all(st, w, bytes.data(), bytes.size());
}

}  // namespace

asio::awaitable<relay_result> relay(tcp::socket client, tcp::socket upstream,
                                    relay_options options) {
  co_await asio::this_coro::throw_if_cancelled(false);
  relay_result result;
  boost::system::error_code ec;
  client.native_non_blocking(true, ec);
  upstream.native_non_blocking(true, ec);

  relay_state st(client, upstream, options.idle_timeout);
  auto* m = options.metrics;
  one_way up{client,    upstream,
             true,      m ? &m->bytes(options.dir, flow::rx) : nullptr,
             result.rx, options.splice_after};
  one_way down{upstream,  client,
               false,     m ? &m->bytes(options.dir, flow::tx) : nullptr,
               result.tx, options.splice_after};

  // (co_await kept out of conditions: GCC 12 miscompiles some of those shapes.)
  bool sent = co_await send_initial(st, up, options.initial_client_bytes);
  if (sent) sent = co_await send_initial(st, down, options.initial_upstream_bytes);
  if (sent) {
    // Sent: not kept for the connection's life (a sniffed TLS ClientHello can be KiBs).
    std::string().swap(options.initial_client_bytes);
    std::string().swap(options.initial_upstream_bytes);
    co_await (copy(st, up) && copy(st, down));
  }
  co_await st.idle.close();
  result.end = st.end;
  if (st.reset_client)
    close_with_reset(client);
  else
    close_quietly(client);
  if (st.reset_upstream)
    close_with_reset(upstream);
  else
    close_quietly(upstream);
  co_return result;
}

}  // namespace devspaces::proxy::io
