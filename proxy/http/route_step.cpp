#include "proxy/http/route_step.hpp"
// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <vector>

#include "proxy/http/parser.hpp"
#include "proxy/routing/router.hpp"

namespace devspaces::proxy::http {

boost::asio::awaitable<route_step_result> route_request(
    routing::router* router, direction dir, std::string_view route_header,
    std::string_view authority, std::span<const field_view> fields,
    boost::asio::ip::tcp::endpoint original_dst) {
  route_step_result out;
  out.target = original_dst;
  if (router == nullptr) co_return out;
  routing::route_result rr;
  if (dir == direction::inbound) {
    rr = router->route_inbound(authority, fields);
  } else {
    rr = co_await router->route_outbound(authority, fields);
  }
  if (rr.insert_header && rr.route_as) out.add_field.emplace(route_header, *rr.route_as);
  if (rr.target) out.target = boost::asio::ip::tcp::endpoint(*rr.target, original_dst.port());
  out.route_as = std::move(rr.route_as);
  out.source = rr.source;
  out.decision = std::move(rr.decision);
  if (rr.trace) out.trace_id = rr.trace->hex();
  co_return out;
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
