#include "proxy/metrics.hpp"

#include <unistd.h>

#include <dirent.h>
#include <fstream>
#include <sstream>

#include <prometheus/text_serializer.h>

namespace devspaces::proxy {

namespace {

constexpr std::array<const char*, 2> directions{"inbound", "outbound"};
constexpr std::array<const char*, 3> protocols{"http", "tcp", "h2"};
constexpr std::array<const char*, 2> flows{"rx", "tx"};
constexpr std::array<const char*, 6> code_classes{"1xx", "2xx", "3xx", "4xx", "5xx", "error"};
constexpr std::array<const char*, 6> decisions{"own",      "parent",    "grandparent",
                                               "original", "no_header", "invalid_header"};
constexpr std::array<const char*, 4> reasons{"refused", "timeout", "unreachable", "other"};
constexpr std::array<const char*, 4> dns_results{"hit", "found", "nxdomain", "error"};
constexpr std::array<const char*, 3> trace_outcomes{"recorded", "sent", "dropped"};
constexpr std::array<const char*, 3> memory_results{"hit", "miss", "stored"};
const std::string prefix = "devspaces_proxy_";

// process_* metrics read from /proc at scrape time.
std::string process_metrics() {
  double rss = 0, cpu = 0, fds = 0, start = 0;
  long page = sysconf(_SC_PAGESIZE);
  long ticks = sysconf(_SC_CLK_TCK);
  {
    std::ifstream statm("/proc/self/statm");
    long size = 0, resident = 0;
    if (statm >> size >> resident) rss = static_cast<double>(resident) * static_cast<double>(page);
  }
  {
    std::ifstream stat("/proc/self/stat");
    std::string line;
    std::getline(stat, line);
    auto close = line.rfind(')');
    if (close != std::string::npos) {
      std::istringstream rest(line.substr(close + 2));
      std::string field;
      // fields after ")" start at field 3 (state); utime=14, stime=15, starttime=22.
      for (int i = 3; i <= 22 && rest >> field; ++i) {
        if (i == 14 || i == 15) cpu += std::stod(field) / static_cast<double>(ticks);
        if (i == 22) start = std::stod(field) / static_cast<double>(ticks);
      }
    }
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    while (auto* e = readdir(d))
      if (e->d_name[0] != '.') fds += 1;
    closedir(d);
    fds -= 1;  // the directory stream itself
  }
  double boot = 0;
  {
    std::ifstream s("/proc/stat");
    std::string key;
    while (s >> key) {
      if (key == "btime") {
        s >> boot;
        break;
      }
      std::string skip;
      std::getline(s, skip);
    }
  }
  std::ostringstream o;
  o << "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
       "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes "
    << static_cast<long long>(rss)
    << "\n# HELP process_open_fds Number of open file descriptors.\n"
       "# TYPE process_open_fds gauge\nprocess_open_fds "
    << static_cast<long long>(fds)
    << "\n# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
       "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total "
    << cpu
    << "\n# HELP process_start_time_seconds Start time of the process since unix epoch in "
       "seconds.\n"
       "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds "
    << static_cast<long long>(boot + start) << "\n";
  return o.str();
}

}  // namespace

int method_index(std::string_view method) {
  for (std::size_t i = 0; i + 1 < metric_methods.size(); ++i)
    if (metric_methods[i] == method) return static_cast<int>(i);
  return method_other;
}

code_class class_of_status(int status) {
  if (status < 100 || status > 599) return code_class::error;
  return static_cast<code_class>(status / 100 - 1);
}

std::string_view to_string(direction d) {
  return directions[static_cast<int>(d)];
}

proxy_metrics::proxy_metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  using namespace prometheus;
  auto& conns = BuildCounter()
                    .Name(prefix + "connections_total")
                    .Help("Accepted connections by direction and protocol.")
                    .Register(*registry_);
  auto& active = BuildGauge()
                     .Name(prefix + "connections_active")
                     .Help("Connections open now, by direction.")
                     .Register(*registry_);
  auto& bytes = BuildCounter()
                    .Name(prefix + "bytes_total")
                    .Help("Bytes relayed: rx from the client, tx to the client.")
                    .Register(*registry_);
  auto& reqs = BuildCounter()
                   .Name(prefix + "http_requests_total")
                   .Help("HTTP exchanges by direction, method and status class.")
                   .Register(*registry_);
  auto& dur = BuildHistogram()
                  .Name(prefix + "http_request_duration_seconds")
                  .Help("From the request head to the end of the response.")
                  .Register(*registry_);
  auto& route = BuildCounter()
                    .Name(prefix + "route_decisions_total")
                    .Help("Route decisions (outbound; inbound only for invalid headers).")
                    .Register(*registry_);
  auto& fails = BuildCounter()
                    .Name(prefix + "upstream_connect_failures_total")
                    .Help("Upstream connects that failed, by reason.")
                    .Register(*registry_);
  auto& dns = BuildCounter()
                  .Name(prefix + "dns_lookups_total")
                  .Help("Name lookups through the resolver, by result.")
                  .Register(*registry_);
  auto& trace = BuildCounter()
                    .Name(prefix + "trace_records_total")
                    .Help("Trace records by outcome.")
                    .Register(*registry_);
  auto& reloads = BuildCounter()
                      .Name(prefix + "config_reloads_total")
                      .Help("Space tree reloads by result.")
                      .Register(*registry_);
  auto& memory = BuildCounter()
                     .Name(prefix + "route_memory_total")
                     .Help("Trace-id route memory: outbound hits and misses, inbound stores.")
                     .Register(*registry_);
  auto& otlp = BuildCounter()
                   .Name(prefix + "otlp_spans_total")
                   .Help("Spans exported over OTLP (sent) or dropped from the full queue.")
                   .Register(*registry_);
  otlp_[0] = &otlp.Add({{"outcome", "sent"}});
  otlp_[1] = &otlp.Add({{"outcome", "dropped"}});
  BuildGauge()
      .Name(prefix + "build_info")
      .Help("The version and commit of this build (always 1).")
      .Register(*registry_)
      .Add({{"version", std::string(build_version())}, {"commit", std::string(build_commit())}})
      .Set(1);
  const Histogram::BucketBoundaries buckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                            0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                            1,      2.5,     5,      10,    30,     60};
  for (int d = 0; d < 2; ++d) {
    for (int p = 0; p < 3; ++p)
      connections_[d][p] = &conns.Add({{"direction", directions[d]}, {"protocol", protocols[p]}});
    active_[d] = &active.Add({{"direction", directions[d]}});
    for (int f = 0; f < 2; ++f)
      bytes_[d][f] = &bytes.Add({{"direction", directions[d]}, {"flow", flows[f]}});
    for (std::size_t m = 0; m < metric_methods.size(); ++m)
      for (int c = 0; c < 6; ++c)
        http_requests_[d][m][c] = &reqs.Add({{"direction", directions[d]},
                                             {"method", std::string(metric_methods[m])},
                                             {"code_class", code_classes[c]}});
    http_duration_[d] = &dur.Add({{"direction", directions[d]}}, buckets);
    for (int r = 0; r < 4; ++r)
      connect_failures_[d][r] = &fails.Add({{"direction", directions[d]}, {"reason", reasons[r]}});
  }
  for (int i = 0; i < 6; ++i) route_[i] = &route.Add({{"decision", decisions[i]}});
  for (int i = 0; i < 4; ++i) dns_[i] = &dns.Add({{"result", dns_results[i]}});
  for (int i = 0; i < 3; ++i) trace_[i] = &trace.Add({{"outcome", trace_outcomes[i]}});
  reloads_[0] = &reloads.Add({{"result", "ok"}});
  reloads_[1] = &reloads.Add({{"result", "error"}});
  for (int i = 0; i < 3; ++i) memory_[i] = &memory.Add({{"result", memory_results[i]}});
}

std::string_view proxy_metrics::build_version() {
#ifdef DEVSPACES_VERSION
  return DEVSPACES_VERSION;
#else
  return "unknown";
#endif
}

std::string_view proxy_metrics::build_commit() {
#ifdef DEVSPACES_COMMIT
  return DEVSPACES_COMMIT;
#else
  return "unknown";
#endif
}

std::string proxy_metrics::serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect()) + process_metrics();
}

}  // namespace devspaces::proxy
