#pragma once

#include <chrono>
#include <string_view>

#include "proxy/trace/record.hpp"

namespace devspaces::test {

namespace trace = proxy::trace;
namespace routing = proxy::routing;

/// 2026-11-21T20:47:09.700123Z plus `extra_us`.
inline std::chrono::system_clock::time_point sample_time(long long extra_us = 0) {
  using namespace std::chrono;
  return system_clock::time_point(seconds(1795294029) + microseconds(700123 + extra_us));
}

inline void set_body(trace::body_capture& b, std::string_view data, std::size_t limit = 1024) {
  b.append(data, limit);
}

/// Hop 1 of the walk-through: the servicea pod's inbound side.
inline trace::record walkthrough_inbound() {
  trace::record r;
  r.id = "gyk";
  r.ts = sample_time();
  r.duration = std::chrono::microseconds(4210);
  r.outbound = false;
  r.pod = "servicea-7d9f";
  r.space = "azureuser";
  r.client = "10.244.0.1:50312";
  r.original_dst = "10.244.0.5:80";
  r.upstream = "127.0.0.1:80";
  r.route_as = "azureuser";
  r.route_as_source = routing::route_source::host;
  r.route = routing::no_decision();  // not routed by a space
  r.request = {"GET",
               "/",
               "1.1",
               "azureuser.s.default.servicea.example.io",
               {{"Host", "azureuser.s.default.servicea.example.io"},
                {"User-Agent", "curl/7.88.1"},
                {"azds-route-as", "azureuser"}},
               {}};
  trace::response_info res;
  res.status = 200;
  res.reason = "OK";
  res.version = "1.1";
  res.headers = {{"Content-Type", "text/html"}, {"Content-Length", "2400"}};
  set_body(res.body, std::string("<!DOCTYPE html>\n<html><body>") + std::string(2000, 'x'), 64);
  r.response = std::move(res);
  return r;
}

/// Hop 2/3: the servicea pod's outbound side, routed to the parent space (the README's "Reading
/// traces" example).
inline trace::record walkthrough_outbound() {
  trace::record r;
  r.id = "pu5";
  r.ts = sample_time();
  r.duration = std::chrono::microseconds(1834);
  r.outbound = true;
  r.pod = "servicea-7d9f";
  r.space = "azureuser";
  r.client = "10.244.0.5:43122";
  r.original_dst = "10.0.0.12:80";
  r.upstream = "10.0.0.7:80";
  r.route_as = "azureuser";
  r.route_as_source = routing::route_source::header;
  routing::route_decision route;
  route.service = "serviceb";
  route.decision = routing::decision_kind::parent;
  route.level = 1;
  route.tried = {{"serviceb.azureuser.svc.cluster.local", "nxdomain"},
                 {"serviceb.default.svc.cluster.local", "10.0.0.7"}};
  r.route = std::make_shared<const routing::route_decision>(std::move(route));
  r.request = {
      "GET", "/api", "1.1", "serviceb", {{"host", "serviceb"}, {"azds-route-as", "azureuser"}}, {}};
  trace::response_info res;
  res.status = 200;
  res.reason = "OK";
  res.version = "1.1";
  res.headers = {{"content-length", "5"}};
  set_body(res.body, "hello");
  r.response = std::move(res);
  return r;
}

/// walkthrough_outbound() as exchange `id` to `target`, stamped now: the records stream tests push.
inline trace::record outbound_exchange(std::string_view id, std::string_view target = "/api") {
  auto r = walkthrough_outbound();
  r.id = id;
  r.ts = std::chrono::system_clock::now();
  r.request.target = target;
  return r;
}

/// An outbound exchange that failed: nothing listened at the original destination.
inline trace::record refused_outbound() {
  trace::record r;
  r.id = "q0z";
  r.ts = sample_time(250);
  r.duration = std::chrono::microseconds(312);
  r.outbound = true;
  r.pod = "servicea-7d9f";
  r.space = "azureuser";
  r.client = "[fd00::5]:40000";
  r.original_dst = "[fd00::99]:8080";
  r.route_as_source = routing::route_source::none;
  r.route = routing::no_decision();  // not routed by a space
  r.request = {"POST",
               "/upload?x=1",
               "1.1",
               "files.example.com:8080",
               {{"Host", "files.example.com:8080"},
                {"Authorization", "Bearer s3cr3t"},
                {"Cookie", "a=b"},
                {"Content-Type", "application/octet-stream"},
                {"Transfer-Encoding", "chunked"}},
               {}};
  const char png[] = {'\x89', 'P', 'N', 'G', '\r', '\n', '\x1a', '\n', '\0', '\0'};
  set_body(r.request.body, std::string_view(png, sizeof png));
  r.error = "upstream_connect_refused";
  return r;
}

}  // namespace devspaces::test
