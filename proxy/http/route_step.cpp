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

}  // namespace devspaces::proxy::http
