#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace devspaces::proxy {

/// Label indices; every family is created with all its known label values at startup.
enum class direction : int { inbound = 0, outbound = 1 };
enum class protocol : int { http = 0, tcp = 1, h2 = 2 };
enum class flow : int { rx = 0, tx = 1 };  ///< rx: bytes from the client, tx: bytes to the client
enum class code_class : int { c1xx = 0, c2xx, c3xx, c4xx, c5xx, error };
enum class route_outcome : int {
  own = 0,
  parent,
  grandparent,
  original,
  no_header,
  invalid_header
};
enum class connect_failure : int { refused = 0, timeout, unreachable, other };
enum class dns_result : int { hit = 0, found, nxdomain, error };
enum class trace_outcome : int { recorded = 0, sent, dropped };
enum class memory_result : int { hit = 0, miss, stored };

/// Standard methods get their own label value; everything else is OTHER.
inline constexpr std::array<std::string_view, 10> metric_methods{
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "OTHER"};

/// The index of OTHER in metric_methods.
inline constexpr int method_other = static_cast<int>(metric_methods.size()) - 1;
/// Index into metric_methods for a request method (OTHER for non-standard ones).
int method_index(std::string_view method);
/// code_class for a status code (100..599); anything else counts as error.
code_class class_of_status(int status);
/// "inbound" / "outbound".
std::string_view to_string(direction d);

/// Every metric the admin /metrics endpoint serves, with each series looked up once (no Family::Add
/// on the data path).
class proxy_metrics {
 public:
  proxy_metrics();
  proxy_metrics(const proxy_metrics&) = delete;
  proxy_metrics& operator=(const proxy_metrics&) = delete;

  prometheus::Counter& connections(direction d, protocol p) {
    return *connections_[idx(d)][static_cast<int>(p)];
  }
  prometheus::Gauge& connections_active(direction d) { return *active_[idx(d)]; }
  prometheus::Counter& bytes(direction d, flow f) { return *bytes_[idx(d)][static_cast<int>(f)]; }
  prometheus::Counter& http_requests(direction d, int method, code_class c) {
    return *http_requests_[idx(d)][method][static_cast<int>(c)];
  }
  prometheus::Histogram& http_duration(direction d) { return *http_duration_[idx(d)]; }
  prometheus::Counter& route_decisions(route_outcome o) { return *route_[static_cast<int>(o)]; }
  prometheus::Counter& connect_failures(direction d, connect_failure r) {
    return *connect_failures_[idx(d)][static_cast<int>(r)];
  }
  prometheus::Counter& dns_lookups(dns_result r) { return *dns_[static_cast<int>(r)]; }
  prometheus::Counter& trace_records(trace_outcome o) { return *trace_[static_cast<int>(o)]; }
  prometheus::Counter& config_reloads(bool ok) { return *reloads_[ok ? 0 : 1]; }
  /// route_memory_total{result}: trace-id route memory hits, misses and stores.
  prometheus::Counter& route_memory(memory_result r) { return *memory_[static_cast<int>(r)]; }
  /// otlp_spans_total{outcome}: spans delivered to / dropped before the OTLP collector.
  prometheus::Counter& otlp_spans(bool sent) { return *otlp_[sent ? 0 : 1]; }

  /// The version and commit this binary was built from (devspaces_proxy_build_info labels).
  static std::string_view build_version();
  static std::string_view build_commit();

  /// Prometheus text exposition 0.0.4 of every family, plus process_* metrics.
  std::string serialize() const;

  /// The underlying registry (for components that register extra families at startup).
  prometheus::Registry& registry() { return *registry_; }

 private:
  static int idx(direction d) { return static_cast<int>(d); }

  std::shared_ptr<prometheus::Registry> registry_;
  std::array<std::array<prometheus::Counter*, 3>, 2> connections_{};
  std::array<prometheus::Gauge*, 2> active_{};
  std::array<std::array<prometheus::Counter*, 2>, 2> bytes_{};
  std::array<std::array<std::array<prometheus::Counter*, 6>, metric_methods.size()>, 2>
      http_requests_{};
  std::array<prometheus::Histogram*, 2> http_duration_{};
  std::array<prometheus::Counter*, 6> route_{};
  std::array<std::array<prometheus::Counter*, 4>, 2> connect_failures_{};
  std::array<prometheus::Counter*, 4> dns_{};
  std::array<prometheus::Counter*, 3> trace_{};
  std::array<prometheus::Counter*, 2> reloads_{};
  std::array<prometheus::Counter*, 3> memory_{};
  std::array<prometheus::Counter*, 2> otlp_{};
};

}  // namespace devspaces::proxy
