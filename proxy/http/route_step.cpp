#include "proxy/http/route_step.hpp"
// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <vector>

#include "proxy/http/parser.hpp"
#include "proxy/routing/router.hpp"

namespace devspaces::proxy::http {

namespace {

route_step_result step_result(routing::route_result rr, std::string_view route_header,
                              const boost::asio::ip::tcp::endpoint& original_dst) {
  route_step_result out;
  out.target = original_dst;
  if (rr.insert_header && rr.route_as) out.add_field.emplace(route_header, *rr.route_as);
  if (rr.target) out.target = boost::asio::ip::tcp::endpoint(*rr.target, original_dst.port());
  out.route_as = std::move(rr.route_as);
  out.source = rr.source;
  out.decision = std::move(rr.decision);
  if (rr.trace) out.trace_id = rr.trace->hex();
  return out;
}

}  // namespace

std::optional<route_step_result> route_request_now(
    routing::router* router, direction dir, std::string_view route_header,
    std::string_view authority, std::span<const field_view> fields,
    const boost::asio::ip::tcp::endpoint& original_dst,
    routing::router::outbound_pending& pending) {
  if (router == nullptr) {
    route_step_result out;
    out.target = original_dst;
    return out;
  }
  if (dir == direction::inbound)
    return step_result(router->route_inbound(authority, fields), route_header, original_dst);
  auto rr = router->route_outbound_now(authority, fields, pending);
  if (!rr) return std::nullopt;
  return step_result(std::move(*rr), route_header, original_dst);
}

boost::asio::awaitable<route_step_result> finish_route(routing::router* router,
                                                       std::string_view route_header,
                                                       boost::asio::ip::tcp::endpoint original_dst,
                                                       routing::router::outbound_pending pending) {
  auto rr = co_await router->finish_outbound(std::move(pending));
  co_return step_result(std::move(rr), route_header, original_dst);
}

exchange_outcome upstream_connect_failed(connect_failure why) {
  constexpr auto at = exchange_step::upstream;
  switch (why) {
    case connect_failure::timeout:
      return exchange_outcome::answer(at, 504, "gateway timeout: upstream connect timed out",
                                      "upstream_timeout");
    case connect_failure::refused:
      return exchange_outcome::answer(at, 502, "bad gateway: upstream refused the connection",
                                      "upstream_connect_refused");
    case connect_failure::unreachable:
      return exchange_outcome::answer(at, 502, "bad gateway: upstream unreachable",
                                      "upstream_unreachable");
    default:
      return exchange_outcome::answer(at, 502, "bad gateway: upstream connect failed",
                                      "upstream_connect_error");
  }
}

}  // namespace devspaces::proxy::http
