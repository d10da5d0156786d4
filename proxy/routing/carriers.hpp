#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "proxy/routing/decision.hpp"
#include "proxy/routing/names.hpp"

namespace devspaces::proxy::routing {

/// One header field of a request as received: name in any case, value as on the wire.
using header_ref = std::pair<std::string_view, std::string_view>;

/// A W3C Trace Context trace id (the 16 bytes of `traceparent`'s second field).
struct trace_id {
  std::array<std::uint8_t, 16> bytes{};
  /// 32 lowercase hex digits, as in `traceparent`.
  std::string hex() const;
  /// A hash of the id (its bytes are random already: the first eight are used).
  std::uint64_t hash() const;
  friend bool operator==(const trace_id&, const trace_id&) = default;
};

/// Parses a `traceparent` value (W3C Trace Context, "version-traceid-parentid-flags", lowercase
/// hex). Version ff, an all-zero trace or parent id, or any other shape → nullopt. Versions
/// above 00 may carry more fields after the flags (forward compatible, as the spec asks).
std::optional<trace_id> parse_traceparent(std::string_view value);

/// The span id (parent id) of a valid `traceparent`, 16 hex digits; empty when invalid.
std::string_view traceparent_span_id(std::string_view value);

/// Most bytes of `baggage` (all fields together) read for routing: the W3C Baggage limit.
inline constexpr std::size_t max_baggage_bytes = 8192;

/// The member `key` of the W3C `baggage` header(s), looked up for routing.
struct baggage_member {
  enum class state {
    absent,    ///< no member with the key (or no usable baggage at all)
    found,     ///< `value` holds the percent-decoded value
    conflict,  ///< the key appears with different values, or its member is malformed
  };
  state status = state::absent;
  std::string value;
};

/// Looks `key` up (ASCII case-insensitive) in the comma-joined `baggage` field values (W3C
/// Baggage: `key OWS "=" OWS value *( OWS ";" OWS property )` members separated by commas,
/// values percent-encoded). Malformed members with other keys are skipped; baggage larger than
/// max_baggage_bytes is not read at all (absent), so a huge header costs no parsing.
baggage_member find_baggage_member(std::span<const std::string_view> values, std::string_view key);

/// What the carriers of one request say (route header, then `baggage`, then
/// `kubernetes-route-as`), and its trace id.
struct carrier_result {
  route_header::state status = route_header::state::absent;
  std::string space;                         ///< lowercase, when valid
  route_source source = route_source::none;  ///< the first carrier present, when valid
  bool route_header_present = false;         ///< the route header itself carried the space
  std::optional<trace_id> trace;             ///< from a single valid `traceparent`
};

/// Reads every carrier from the request's header list in one pass. Each carrier that is
/// present must hold a DNS label (after trimming and lowercasing) and all present carriers
/// must agree; otherwise the result is invalid (ignored for routing, forwarded untouched).
/// `route_header` is the configured header name (lowercase).
carrier_result read_carriers(std::span<const header_ref> headers, std::string_view route_header);

}  // namespace devspaces::proxy::routing
