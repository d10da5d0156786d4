#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include <optional>

#include <boost/asio/any_io_executor.hpp>

#include "proxy/trace/hub.hpp"
#include "proxy/trace/uploader.hpp"

namespace devspaces::proxy::trace {

/// Who exports the spans (OTLP resource attributes).
struct otlp_resource {
  std::string service_name = "devspaces-proxy";
  std::string pod;
  std::string space;
  std::string version;
};

/// One OTLP span (OTLP/JSON encoding of opentelemetry.proto.trace.v1.Span) for a parsed trace
/// record. The span joins the trace of the request's `traceparent` (traceId = its trace id,
/// parentSpanId = its span id); without one it starts a new trace. Inbound records are SERVER
/// spans, outbound CLIENT spans. Attributes follow the HTTP semantic conventions
/// (http.request.method, url.path, url.query, server.address, server.port,
/// http.response.status_code, network.protocol.version, client.address,
/// network.peer.address, error.type) plus devspaces.route_as, devspaces.route_as_source,
/// devspaces.decision and devspaces.level. Status is ERROR for proxy errors, 5xx on a server
/// span, 4xx/5xx on a client span.
/// Its values are allocated from `sp` (the default resource when null).
boost::json::object otlp_span(const boost::json::object& record, boost::json::storage_ptr sp = {});

/// An ExportTraceServiceRequest body (OTLP/HTTP JSON) holding one span per record that parses.
std::string otlp_export_body(const std::vector<entry>& entries, const otlp_resource& resource);

/// Starts the OTLP/HTTP JSON span exporter for `options.url` (--otlp-endpoint) on `executor`
/// and attaches it to `h`. It is the trace uploader with an OTLP encoder: batches of at most
/// `options.batch` spans or `options.interval`, a bounded queue dropping the oldest, retries
/// with exponential backoff; delivered and dropped spans count in otlp_spans_total. Returns an
/// error line when the URL is not `http://host[:port][/path]`.
std::optional<std::string> start_otlp_exporter(hub& h, boost::asio::any_io_executor executor,
                                               uploader_options options, otlp_resource resource,
                                               proxy_metrics* metrics);

/// Nanoseconds since the epoch for an RFC 3339 UTC time ("2026-11-21T20:47:09.700123Z");
/// 0 when malformed.
std::uint64_t unix_nanos(std::string_view rfc3339);

}  // namespace devspaces::proxy::trace
