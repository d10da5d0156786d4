#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proxy/exchange.hpp"
#include "proxy/metrics.hpp"
#include "proxy/routing/decision.hpp"
#include "proxy/routing/router.hpp"

namespace devspaces::proxy::http {

/// What the route step decided for one request, whatever its protocol.
struct route_step_result {
  /// Where to connect: the routed address on the original destination's port, or the
  /// original destination itself.
  boost::asio::ip::tcp::endpoint target;
  /// A field to add to the forwarded request (inbound: the route header), else empty.
  std::optional<std::pair<std::string, std::string>> add_field;
  std::optional<std::string> route_as;
  routing::route_source source = routing::route_source::none;
  std::shared_ptr<const routing::route_decision> decision = routing::no_decision();
  /// The trace id of the request's `traceparent` (32 hex digits), when it has a valid one.
  std::optional<std::string> trace_id;
};

/// The route step of an exchange (HTTP/1 request or HTTP/2 stream): hands the request's fields
/// (the carriers: route header, `baggage`, `kubernetes-route-as`, `traceparent`) and asks the
/// router with the request's authority and direction. The one place that calls the router, so
/// the carriers it reads grow here. With no router the request goes to `original_dst`. Never
/// throws.
///
/// The step returns at once when the router decides without a lookup (inbound; outbound with no
/// carrier, a host that is not one of the chain's services, or a decision it remembers): no
/// coroutine frame on the common path. Otherwise nullopt: `pending` then holds the request's
/// carriers, and finish_route completes the step (call it exactly once).
std::optional<route_step_result> route_request_now(
    routing::router* router, direction dir, std::string_view route_header,
    std::string_view authority, std::span<const field_view> fields,
    const boost::asio::ip::tcp::endpoint& original_dst, routing::router::outbound_pending& pending);
boost::asio::awaitable<route_step_result> finish_route(routing::router* router,
                                                       std::string_view route_header,
                                                       boost::asio::ip::tcp::endpoint original_dst,
                                                       routing::router::outbound_pending pending);

/// The outcome of a failed upstream step (no connection to the routed upstream), whatever the
/// protocol: 504 for a connect timeout, else 502 with the reason, and the error code.
exchange_outcome upstream_connect_failed(connect_failure why);

}  // namespace devspaces::proxy::http
