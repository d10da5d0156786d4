#pragma once

// The protocol-neutral vocabulary of one HTTP exchange (one HTTP/1 request and its response,
// or one HTTP/2 stream). An exchange goes request head → route decision → upstream → response
// head → body → end; these are the views the steps hand on, so the route step
// (http::route_request) and the trace recorder (trace::exchange_recorder) see nothing
// protocol-specific.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace devspaces::proxy {

/// One header field as received (views into the connection's buffers, valid for one step).
using field_view = std::pair<std::string_view, std::string_view>;

/// A request head as the steps after parsing see it.
struct request_view {
  std::string_view method;
  std::string_view target;
  std::string_view version;    ///< "1.1", "1.0", "2"
  std::string_view authority;  ///< Host (HTTP/1) or :authority (HTTP/2); empty when absent
  std::span<const field_view> fields;
};

/// A response head (also the proxy's own error answers, exactly as the client gets them).
struct response_view {
  int status = 0;
  std::string_view reason;
  std::string_view version;
  std::span<const field_view> fields;
};

/// The steps of an exchange, in order. An outcome names the step the exchange ended in.
enum class exchange_step : std::uint8_t {
  request_head,   ///< reading and checking the request head
  route,          ///< asking the router where the request goes
  upstream,       ///< getting a connection (pool, new connect) and sending the request head
  response_head,  ///< waiting for the response head (request body may still stream)
  body,           ///< streaming the bodies
  end,            ///< the response ended
};

/// What the connection does after an exchange.
enum class exchange_end : std::uint8_t {
  keep_alive,  ///< both messages ended cleanly: serve the next request
  close,       ///< the exchange ended, the connection may not carry another one
  tunnel,      ///< the upgrade / CONNECT was accepted: relay raw bytes from here on
  answer,      ///< the proxy answers `status` itself (nothing of a response was sent yet)
  reset,       ///< the exchange broke after the response started: close at once
  quiet,       ///< nothing to answer (an idle connection closed or timed out)
};

/// The outcome value of one exchange: every step returns one, the first that is not
/// `proceed()` ends the exchange, and the connection acts on it (answer, keep, close, tunnel).
/// The same value serves HTTP/1 (answer = an error response, reset = a closed connection) and
/// HTTP/2 (answer = a response on the stream, reset = RST_STREAM).
struct exchange_outcome {
  exchange_step step = exchange_step::end;
  exchange_end end = exchange_end::keep_alive;
  bool next = false;            ///< the step succeeded: go on with the next step
  int status = 0;               ///< the status the client gets / got (0: none)
  const char* error = nullptr;  ///< the error code for traces and metrics (null: none)
  std::string reason;           ///< the one-line reason of the proxy's own answer

  /// The step succeeded.
  static exchange_outcome proceed() {
    return {exchange_step::end, exchange_end::keep_alive, true, 0, nullptr, {}};
  }
  /// The response ended (status `status`); `how`: keep_alive or tunnel.
  static exchange_outcome finished(exchange_end how, int status) {
    return {exchange_step::end, how, false, status, nullptr, {}};
  }
  /// Nothing to answer (the client went away or an idle connection ended) in step `at`;
  /// `code` is recorded when not null.
  static exchange_outcome quiet(exchange_step at, const char* code) {
    return {at, exchange_end::quiet, false, 0, code, {}};
  }
  /// The proxy answers `status` with `why` (error code `code`) in step `at`.
  static exchange_outcome answer(exchange_step at, int status, std::string why, const char* code) {
    return {at, exchange_end::answer, false, status, code, std::move(why)};
  }
  /// The exchange broke in step `at` (error code `code`); nothing more can be answered.
  static exchange_outcome reset(exchange_step at, const char* code) {
    return {at, exchange_end::reset, false, 0, code, {}};
  }
};

}  // namespace devspaces::proxy
