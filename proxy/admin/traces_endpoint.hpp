#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "proxy/trace/filter.hpp"

namespace devspaces::proxy::trace {
class hub;
}

namespace devspaces::proxy::admin {

/// GET /traces (proxy/trace/README.md) on an admin connection whose request head and body were
/// read: NDJSON (`application/x-ndjson`) of the last N records (`?last=N`, default 100), then with
/// `?follow=1` new records as chunks until the client goes away; `Accept: text/event-stream`
/// gets Server-Sent Events. Loopback clients only (403 otherwise); 503 when `hub` is null.
/// The response ends with `Connection: close`; the caller closes the connection afterwards.
boost::asio::awaitable<void> serve_traces(
    boost::beast::tcp_stream& stream,
    const boost::beast::http::request<boost::beast::http::string_body>& req, trace::hub* hub);

/// 127.0.0.0/8, ::1 and v4-mapped loopback (what kubectl port-forward connects from).
bool is_loopback(const boost::asio::ip::address& a);

/// The parameters of one /traces request.
struct traces_query {
  std::size_t last = 100;
  bool follow = false;
  bool sse = false;
  trace::record_filter filter;       ///< direction, method, status, path, route_as, ...
  std::optional<std::string> error;  ///< why the request is a 400
};

/// Reads `last`, `follow` and the record filters from the target's query (percent-encoded
/// values) and SSE from the Accept header.
traces_query parse_traces_query(std::string_view target, std::string_view accept);

}  // namespace devspaces::proxy::admin
