#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <tuple>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proxy/http/head_edit.hpp"
#include "proxy/http/parser.hpp"
#include "proxy/io/deadline.hpp"
#include "proxy/trace/exchange_recorder.hpp"

namespace prometheus {
class Counter;
}

namespace devspaces::proxy::http {

/// A fixed-size byte buffer: [0, end) holds bytes read, [0, parsed) went through the parser,
/// [0, sent) was forwarded. Never reallocated while a message is in it, so the spans the parser
/// records stay valid; released between messages so an idle keep-alive connection holds no buffer
/// memory. Released buffers of the common size go to a small per-thread cache (each worker is one
/// thread), so a busy connection takes one back without a malloc/free pair per exchange.
struct byte_buffer {
  explicit byte_buffer(std::size_t cap) : capacity(cap) {}
  std::unique_ptr<char[]> data;
  std::size_t capacity;
  std::size_t end = 0;
  std::size_t parsed = 0;
  std::size_t sent = 0;

  char* base() { return data.get(); }
  bool allocated() const { return data != nullptr; }
  /// Allocates (uninitialised) when not allocated.
  void ensure();
  /// Gives the memory back when nothing is pending in it.
  void release();
  /// Moves the unparsed tail to the front (a new message starts at offset 0).
  void compact();
  /// Drops forwarded bytes when nothing else is pending.
  void drop_forwarded() {
    if (sent == end && parsed == end) end = parsed = sent = 0;
  }
  /// Forgets every byte.
  void clear() { end = parsed = sent = 0; }
};

/// How a read waits for bytes. `speculative` receives at once when the socket may hold bytes
/// (after a read that drained the socket it waits for the next readiness event);
/// `wait_first` first waits until the socket is readable, then reads. Neither changes the
/// epoll registration nor makes a receive that is known to fail.
enum class read_policy : std::uint8_t { speculative, wait_first };

/// How one relay step ended.
enum class relay_status : std::uint8_t {
  ok,
  closed,          ///< the source closed or reset (buffered() tells whether bytes came first)
  bad_message,     ///< the parser rejected the bytes: message().error()
  head_too_large,  ///< the head does not fit the buffer / --max-header-bytes
  timed_out,       ///< the deadline expired while waiting
  stopped,         ///< stop() was called: the other direction ended the exchange
  write_failed,    ///< the sink failed
};

/// Where a relay counts bytes and records bodies; every member may be null.
struct relay_hooks {
  prometheus::Counter* read_bytes = nullptr;
  prometheus::Counter* written_bytes = nullptr;
  trace::exchange_recorder* recorder = nullptr;
  trace::message_side side = trace::message_side::request;
};

/// Relays one HTTP/1 message at a time from a source socket to a sink socket, the same code for
/// requests (client → upstream) and responses (upstream → client): read_head() reads and parses
/// the head in place, the caller decides (route, edit the head with a head_edit), write_head()
/// sends the edited head with the body bytes already read, relay_body() streams the rest as it
/// arrives. Bytes of a pipelined next message stay in the buffer for the next start().
///
/// Timeouts come from the connection's io::deadline: relay_body() arms it per read with the idle
/// timeout; head reads use whatever the caller armed. stop() is the other direction's way to end
/// this one (it also cancels the sockets' operations through the caller). Never throws.
class message_relay {
 public:
  using clock = std::chrono::steady_clock;

  /// `capacity` bytes of buffer (at least max_head_bytes plus a read's worth).
  message_relay(parser::kind k, std::size_t max_head_bytes, std::size_t capacity, io::deadline& dl,
                relay_hooks hooks = {});

  /// Puts `bytes` (already read from the source) at the front of the buffer.
  void preload(std::span<const char> bytes);
  /// Starts the next message: keeps unparsed bytes, resets the parser. For responses,
  /// `head_request` / `connect_request` tell how the body is framed.
  void start(bool head_request = false, bool connect_request = false);
  /// Ends the message: drops what was read unless `keep_unparsed` (the request side keeps a
  /// pipelined next request), then frees buffer and parser state when nothing is left, so an
  /// idle keep-alive connection holds neither.
  void finish_message(bool keep_unparsed);
  /// Forgets every buffered byte (a retry on another upstream reads a new response).
  void discard_buffered() { buf_.clear(); }
  /// Clears stop() and the last status (a new exchange).
  void reset() {
    stopped_ = false;
    status_ = relay_status::ok;
  }

  /// Reads until the head is complete.
  boost::asio::awaitable<relay_status> read_head(boost::asio::ip::tcp::socket& from,
                                                 read_policy first_read);
  /// read_head() without waiting: the status when the head completed (or failed) from what was
  /// buffered and what the socket held; nothing when a wait is needed, and read_head() with the
  /// same arguments goes on from there. Under load the bytes are usually there, so the common
  /// path needs no coroutine frame.
  std::optional<relay_status> try_read_head(boost::asio::ip::tcp::socket& from,
                                            read_policy first_read);
  /// Sends the head as edited by `edit`, followed (with `with_body`) by the body bytes already
  /// read and parsed.
  /// write_head() without waiting: true when the socket took all of it (status() is ok);
  /// otherwise write_head() with the same arguments sends the rest. Writes usually complete at
  /// once, so the common path needs no coroutine frame and no asynchronous operation.
  bool try_write_head(boost::asio::ip::tcp::socket& to, const head_edit& edit,
                      bool with_body = true);
  boost::asio::awaitable<relay_status> write_head(boost::asio::ip::tcp::socket& to,
                                                  const head_edit& edit, bool with_body = true);
  /// Streams the rest of the body until the message ends; arms the deadline with `idle`
  /// (tagged `tag`) before every read.
  boost::asio::awaitable<relay_status> relay_body(boost::asio::ip::tcp::socket& from,
                                                  boost::asio::ip::tcp::socket& to,
                                                  clock::duration idle, std::uint8_t tag);

  /// Ends the current step at its next check (the caller cancels the sockets' operations).
  void stop() { stopped_ = true; }
  bool stopped() const { return stopped_; }
  /// How the last step ended.
  relay_status status() const { return status_; }

  /// The parser of the current message (head, body spans, framing).
  const parser& message() const { return parser_; }
  /// Bytes of the buffer that were read.
  std::size_t buffered() const { return buf_.end; }
  /// Bytes read past what the parser took (a pipelined next message, tunnel bytes).
  std::span<const char> unparsed() const;
  /// True while every byte of the message since start() is still in the buffer (no body byte
  /// was read after the head went out), so it could be sent again to another upstream.
  bool whole_message_buffered() const { return whole_; }
  /// True when a buffer is allocated.
  bool has_buffer() const { return buf_.allocated(); }
  /// Allocates the buffer (before the first read of a message).
  void ensure_buffer() { buf_.ensure(); }

 private:
  // One read into [end, end + max) of the buffer, made only when it needs no wait: {error,
  // bytes} (0 bytes with no error is EOF), or nothing when the caller must wait for readiness
  // (io::wait_readable) first, always so for `wait_first`.
  std::optional<std::tuple<boost::system::error_code, std::size_t>> read_now(
      boost::asio::ip::tcp::socket& from, std::size_t max, read_policy policy);
  relay_status feed_head();
  std::optional<relay_status> head_progress(boost::asio::ip::tcp::socket& from,
                                            read_policy& policy);
  relay_status after_read_error(const boost::system::error_code& ec);
  boost::asio::awaitable<relay_status> body_step(boost::asio::ip::tcp::socket& from,
                                                 boost::asio::ip::tcp::socket& to);
  relay_status done(relay_status s) { return status_ = s; }
  void count_read(std::size_t n);
  void count_written(std::size_t n);

  byte_buffer buf_;
  parser parser_;
  io::deadline& deadline_;
  relay_hooks hooks_;
  relay_status status_ = relay_status::ok;
  bool stopped_ = false;
  bool whole_ = true;
  std::size_t head_sent_ = 0;  // bytes of the head write try_write_head() already sent
};

}  // namespace devspaces::proxy::http
