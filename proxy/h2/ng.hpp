#pragma once

// The nghttp2 glue both HTTP/2 sides share, with nothing of sockets or the event loop in it (so
// the fuzz targets build it alone): session creation with the proxy's limits, callbacks
// forwarded to a frame_handler, a bounded body queue and header-list helpers.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nghttp2/nghttp2.h>
#include <boost/container/small_vector.hpp>

namespace devspaces::proxy::h2 {

/// Limits applied to every HTTP/2 peer (client or upstream); see proxy/h2/README.md.
struct limits {
  std::uint32_t max_concurrent_streams = 256;        ///< advertised to clients
  std::int32_t stream_window = 256 * 1024;           ///< per-stream receive window
  std::int32_t connection_window = 4 * 1024 * 1024;  ///< per-connection receive window
  std::uint32_t max_header_list = 65536;             ///< decoded field bytes per header block
  std::uint32_t max_frame_size = 16384;              ///< SETTINGS_MAX_FRAME_SIZE (default)
  std::size_t max_continuations = 8;                 ///< CONTINUATION frames per header block
  std::size_t max_outbound_ack = 1000;               ///< queued SETTINGS/PING ACKs (flood)
  std::size_t max_settings = 32;                     ///< entries per SETTINGS frame
  std::uint64_t reset_burst = 1000;                  ///< RST_STREAM tokens (rapid reset)
  std::uint64_t reset_rate = 33;                     ///< tokens regained per second
  std::size_t max_output = 64 * 1024;                ///< bytes serialised ahead of the socket
};

/// Header fields as received or to be sent (names lowercase, pseudo-fields first). A stream keeps
/// its fields in an arena of its own (see exchange), so a list takes a memory resource.
using field_list = std::pmr::vector<std::pair<std::pmr::string, std::pmr::string>>;

/// nghttp2's view of a field list, for a submit call (which copies what it needs); on the stack
/// for up to 24 fields.
using nv_list = boost::container::small_vector<nghttp2_nv, 24>;

/// Events of one nghttp2 session, called from inside nghttp2_session_mem_recv/mem_send.
/// Returning a negative nghttp2 error code follows nghttp2's callback rules (0 = fine).
class frame_handler {
 public:
  virtual ~frame_handler() = default;
  /// A header block starts on `stream_id` (request, response, trailers or push).
  virtual int on_begin_headers(std::int32_t stream_id) = 0;
  /// One decoded field of the current block (already within max_header_list).
  virtual int on_field(std::int32_t stream_id, std::string_view name, std::string_view value) = 0;
  /// The block is complete. `end_stream`: it also ended the peer's side of the stream.
  virtual int on_headers_done(std::int32_t stream_id, bool end_stream) = 0;
  /// DATA payload bytes (not yet consumed for flow control: call consume when passed on).
  virtual int on_data(std::int32_t stream_id, std::span<const std::uint8_t> data) = 0;
  /// A DATA frame with END_STREAM arrived.
  virtual int on_data_end(std::int32_t stream_id) = 0;
  /// The stream closed (RST_STREAM either way, or both sides ended). `error_code` is HTTP/2's.
  virtual int on_stream_close(std::int32_t stream_id, std::uint32_t error_code) = 0;
  /// The peer sent GOAWAY; streams above `last_stream_id` were not processed.
  virtual void on_goaway(std::int32_t last_stream_id, std::uint32_t error_code) = 0;
};

/// Owns an nghttp2 session.
struct session_deleter {
  void* glue = nullptr;  ///< the callbacks' user data, freed with the session
  void operator()(nghttp2_session* s) const;
};
using session_ptr = std::unique_ptr<nghttp2_session, session_deleter>;

/// Which side of the connection the proxy plays.
enum class role { server, client };

/// A session with the proxy's options (no automatic WINDOW_UPDATE: the owner calls
/// nghttp2_session_consume as the other side takes the bytes; the limits above), its initial
/// SETTINGS submitted and the connection window raised. `handler` must outlive it.
session_ptr make_session(role r, frame_handler& handler, const limits& lim);

/// Bytes of one direction of a stream held between the two sessions: appended as DATA arrives
/// on one side, taken as the other side's flow control allows. Bounded by the receive window.
class body_queue {
 public:
  void append(std::span<const std::uint8_t> data);
  /// Copies up to `n` bytes to `out` and drops them; returns how many.
  std::size_t take(std::uint8_t* out, std::size_t n);
  std::size_t size() const { return data_.size() - head_; }
  bool empty() const { return size() == 0; }
  /// Drops everything; returns how many bytes were dropped.
  std::size_t clear();

 private:
  std::string data_;
  std::size_t head_ = 0;
};

/// Fields as nghttp2_nv entries pointing into `fields` (valid while `fields` is unchanged),
/// without the connection-specific ones (HTTP/2 forbids them): the fields to forward.
nv_list to_nv(const field_list& fields);

/// True for fields RFC 9113 §8.2.2 forbids in HTTP/2 (connection-specific), and for `te` with a
/// value other than "trailers".
bool connection_specific(std::string_view name, std::string_view value);

/// The first value of `name` in `fields`, or empty.
std::string_view find_field(const field_list& fields, std::string_view name);

}  // namespace devspaces::proxy::h2
