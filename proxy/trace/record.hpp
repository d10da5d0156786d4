#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proxy/routing/decision.hpp"

namespace devspaces::proxy::trace {

using header_list = std::vector<std::pair<std::string, std::string>>;

/// Captured body prefix of one message (at most --trace-body-bytes).
struct body_capture {
  std::uint64_t total_bytes = 0;  ///< all body bytes seen (trace field body_bytes)
  std::string prefix;             ///< raw bytes kept; encoded (text or base64) when serialised
  bool truncated = false;
};

/// Request side of a trace record. Header names as received (serialised lowercase).
struct request_info {
  std::string method;
  std::string target;
  std::string version;  ///< "1.1", "1.0"
  std::string host;
  header_list headers;
  body_capture body;
};

/// Response side of a trace record.
struct response_info {
  int status = 0;
  std::string reason;
  std::string version;
  header_list headers;
  body_capture body;
};

/// One HTTP exchange seen by one proxy side (SPEC §2.3). Built once, then moved to the sink.
struct record {
  std::string id;  ///< short exchange id, unique per process
  std::chrono::system_clock::time_point ts;
  std::chrono::microseconds duration{0};
  bool outbound = false;  ///< direction
  std::string pod;
  std::string space;
  std::string client;        ///< "ip:port" / "[v6]:port"
  std::string original_dst;  ///< "ip:port"
  std::string upstream;      ///< "ip:port" actually used; empty when none
  std::optional<std::string> route_as;
  routing::route_source route_as_source = routing::route_source::none;
  routing::route_decision route;
  request_info request;
  std::optional<response_info> response;
  std::optional<std::string> error;  ///< short code, e.g. "upstream_connect_refused"
};

}  // namespace devspaces::proxy::trace
