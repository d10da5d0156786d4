// Cost of one OTLP export batch (256 spans), for a profiler (not asserted: speed belongs in
// bench, not in a test). Run under callgrind with a release build: valgrind --tool=callgrind
// --toggle-collect='devspaces::proxy::trace::otlp_export_body*' trace_test
// --gtest_also_run_disabled_tests --gtest_filter='OtlpBench.*'
#include <string>

#include <gtest/gtest.h>

#include "proxy/trace/hub.hpp"
#include "proxy/trace/otlp.hpp"
#include "tests/proxy/trace/sample_records.hpp"

namespace devspaces::test {
namespace {

TEST(OtlpBench, DISABLED_ExportBatch) {
  trace::hub h({.buffer = 256, .json = {}, .follower_queue = 8}, nullptr);
  for (int i = 0; i < 256; ++i) {
    auto r = walkthrough_outbound();
    r.response->body = {};
    r.response->body.append(std::string(1024, 'x'), 1024);
    h.push(std::move(r));
  }
  const auto body = trace::otlp_export_body(h.last(256), trace::otlp_resource{});
  EXPECT_NE(body.find("\"spans\":[{"), std::string::npos);
}

}  // namespace
}  // namespace devspaces::test
