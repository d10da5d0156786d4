#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "proxy/trace/record.hpp"

namespace devspaces::proxy::trace {

/// The access log line of one exchange (--access-log). Text: `key=value` pairs (values with
/// spaces or quotes are quoted). JSON: one object of the same fields, which the log formatter
/// merges into its line. Fields: direction, method, authority, path, status (null/- when no
/// response), duration_ms, upstream, route_as, route_as_source, decision, error, id, trace_id.
std::string access_log_line(const record& r, bool json);

/// Writes access_log_line to the "access" logger (info level).
void write_access_log(const record& r, bool json);

/// The body capture policy: when the request's (response's) Content-Type is one of
/// `omit_types` (media type, parameters ignored, any case), its captured body prefix is dropped
/// and the body marked omitted. Byte counts stay.
void apply_body_policy(record& r, const std::vector<std::string>& omit_types);

/// True when a field name is `Content-Type` (any case).
bool is_content_type(std::string_view name);
/// True when a Content-Type value's media type is one of `omit_types`: the body policy keeps
/// no prefix of that message's body.
bool omitted_type(std::string_view content_type, const std::vector<std::string>& omit_types);

}  // namespace devspaces::proxy::trace
