#pragma once

#include <string>
#include <string_view>

namespace devspaces::proxy::trace {

/// Renders one trace record (one JSON line) in the Dev Spaces view of `devspaces-proxy traces`:
///
///   caller --id-> callee:
///      GET /api HTTP/1.1
///   caller <-id-- callee:
///      HTTP/1.1 200 OK
///      body (first lines, ...<[TRUNCATED]> when cut)
///      grpc-status: 14 UNAVAILABLE (message)      (gRPC answers: from the trailers, or the
///                                                 headers of a trailers-only answer)
///
/// Inbound: the caller is the request's Host, the callee this pod. Outbound: the caller is this
/// pod, the callee the routed service with the space that served it ("serviceb (default)"),
/// or the Host when the request went to its original destination. An exchange that failed
/// shows "error: <code>". A line that is not a record is returned as is. Ends with '\n'.
std::string render_record(std::string_view json_line);

/// How the traces client shows a record.
struct render_options {
  bool color = false;     ///< ANSI colours (status class, errors, arrows)
  bool duration = false;  ///< the exchange's duration after the response arrow: ": 1.834 ms"
};

/// render_record with options.
std::string render_record(std::string_view json_line, const render_options& options);

}  // namespace devspaces::proxy::trace
