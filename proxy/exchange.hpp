#pragma once

// The protocol-neutral vocabulary of one HTTP exchange (one HTTP/1 request and its response,
// or one HTTP/2 stream). An exchange goes request head → route decision → upstream → response
// head → body → end; these are the views the steps hand on, so the route step
// (http::route_request) and the trace recorder (trace::exchange_recorder) see nothing
// protocol-specific.

#include <span>
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

}  // namespace devspaces::proxy
