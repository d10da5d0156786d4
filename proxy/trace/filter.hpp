#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

namespace devspaces::proxy::trace {

/// Which trace records to show: the filters of `/traces` and of `devspaces-proxy traces`. Every
/// field set must match (and); a field holding several comma-separated values matches any of
/// them (or). An empty filter matches every record.
struct record_filter {
  std::vector<std::string> direction;  ///< inbound, outbound
  std::vector<std::string> method;     ///< GET, post (any case)
  std::vector<std::string> status;     ///< 404 (exact), 5xx (class)
  std::optional<std::string> path;     ///< prefix of request.target
  std::vector<std::string> route_as;   ///< the space the request was routed as
  std::vector<std::string> decision;   ///< own, parent, grandparent, original
  std::optional<std::string> error;    ///< "any" (an error of any kind) or one error code
  std::vector<std::string> trace_id;   ///< 32 hex digits

  /// No field set.
  bool empty() const;

  /// Sets one field from its name and value (query parameter or CLI flag without "--").
  /// Returns false when `key` is not a filter name; sets `problem` when the value is wrong.
  bool set(std::string_view key, std::string_view value, std::optional<std::string>& problem);

  /// True when the parsed record passes.
  bool matches(const boost::json::object& rec) const;
  /// Parses the JSON line first; a line that is not a JSON object never matches a non-empty
  /// filter.
  bool matches_line(std::string_view json_line) const;

  /// The filter as URL query parameters ("direction=outbound&status=5xx"), percent-encoded.
  std::string to_query() const;
};

/// The names `record_filter::set` accepts, in the order the help lists them.
inline constexpr std::string_view filter_names[] = {"direction", "method",   "status", "path",
                                                    "route_as",  "decision", "error",  "trace_id"};

/// Percent-decodes a URL query component ('+' is a space); nullopt on a broken escape.
std::optional<std::string> url_decode(std::string_view s);

}  // namespace devspaces::proxy::trace
