#pragma once

// The state of one HTTP/2 exchange (a client stream and the upstream stream it was routed to):
// one small enum per direction, the upstream stream's state, the exchange step it is in and the
// outcome once one is decided. Pure (no nghttp2, no sockets): the decisions are unit-tested alone.

#include <cstdint>

#include "proxy/exchange.hpp"

namespace devspaces::proxy::h2 {

/// The request: received from the client, forwarded to the upstream.
enum class request_state : std::uint8_t {
  head,      ///< fields of the request head are coming
  body,      ///< the head is complete; body bytes may come
  ended,     ///< the client ended the request; not all of it went upstream yet
  sent_end,  ///< all of it went upstream, END_STREAM included
  dropped,   ///< no longer forwarded: bytes still coming are given back to the client and dropped
};

/// The response: received from the upstream (or the proxy's own answer), forwarded to the client.
enum class response_state : std::uint8_t {
  none,      ///< no final response head yet
  body,      ///< the head was taken; body bytes may come
  ended,     ///< the response ended; not all of it reached the client yet
  sent_end,  ///< the client was given all of it, END_STREAM included
};

/// The upstream stream.
enum class upstream_state : std::uint8_t {
  none,    ///< not opened (routing, connecting, or about to be sent again)
  open,    ///< submitted and not closed
  closed,  ///< closed by the upstream, its connection, or a reset of the proxy's
};

/// RFC 9113 §8.7: REFUSED_STREAM says the upstream did not process the stream.
inline constexpr std::uint32_t refused_stream_code = 0x7;

struct stream_state {
  exchange_step step = exchange_step::request_head;
  request_state request = request_state::head;
  response_state response = response_state::none;
  upstream_state upstream = upstream_state::none;
  /// `proceed()` until the exchange's end is decided (the proxy answers, or the stream is reset).
  exchange_outcome outcome = exchange_outcome::proceed();
  int status = 0;  ///< the status the client got (a gRPC answer: 200)

  /// The client's stream is still open (it closes only once: step end).
  bool client_open() const { return step != exchange_step::end; }
  /// An outcome is decided: the proxy answered, or the stream was reset.
  bool decided() const { return !outcome.next; }
  /// The proxy answered itself: upstream events are ignored from here on.
  bool answered() const { return decided() && outcome.end == exchange_end::answer; }
  /// Later request header blocks are trailers.
  bool request_head_done() const { return request != request_state::head; }
  /// Request body bytes are forwarded (else given back and dropped).
  bool forwards_request() const { return request != request_state::dropped; }
  /// Both messages are through the upstream stream: nothing to reset there.
  bool upstream_complete() const {
    return request == request_state::sent_end &&
           (response == response_state::ended || response == response_state::sent_end);
  }

  /// The request head is complete (with END_STREAM when `end_stream`); routing starts.
  void request_head(bool end_stream);
  /// The client ended the request (END_STREAM on data or trailers).
  void request_ended();
  /// The request body is no longer forwarded (unless all of it went upstream already).
  void drop_request();
  /// The request is to be sent again (a refused stream): what was sent is queued once more.
  void rewind_request();
  /// A final response head (with END_STREAM when `end_stream`) with `status`.
  void response_head(int code, bool end_stream);
  /// The upstream ended the response (END_STREAM on data or trailers).
  void response_ended();

  /// The upstream stream closing with `code` may be sent again on another connection: refused,
  /// nothing of a response yet, the request still whole (`replayable`), the client still there.
  bool may_retry(std::uint32_t code, bool replayable) const;
  /// What the upstream stream closing (and no retry) decides: before a response
  /// head, a 502 answer; in the middle of the response body, a reset of the client's stream;
  /// after a complete response, nothing (proceed()).
  exchange_outcome upstream_closed() const;
  /// The client's stream closed: the exchange's final outcome (the decided one, else finished
  /// when the client got the whole response, else a client reset). Moves to step end.
  const exchange_outcome& client_closed();
};

}  // namespace devspaces::proxy::h2
