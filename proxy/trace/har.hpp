#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace devspaces::proxy::trace {

/// One HAR 1.2 entry (http://www.softwareishard.com/blog/har-12-spec/) for a trace record:
/// startedDateTime = ts, time = duration, request/response with headers and the captured body
/// prefix (base64 bodies keep `encoding: "base64"`), timings all in `wait`. A record without a
/// response (an error before any answer) gets status 0 and the error in `_error`. The proxy's
/// own fields travel as `_direction`, `_pod`, `_route_as`, `_route`, `_trace_id`.
boost::json::object har_entry(const boost::json::object& record);

/// A whole HAR 1.2 document (`{"log": {...}}`) for parsed records, in the order given.
std::string har_document(const std::vector<boost::json::object>& records,
                         std::string_view creator_version);

}  // namespace devspaces::proxy::trace
