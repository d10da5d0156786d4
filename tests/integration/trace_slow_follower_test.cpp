// A /traces follower that never reads must not slow pushes or grow memory: its bounded queue
// fills, further records are skipped for it and counted as dropped.
#include <gtest/gtest.h>
#include <boost/asio/socket_base.hpp>

#include "proxy/admin/admin_server.hpp"
#include "proxy/trace/hub.hpp"
#include "tests/integration/trace_test_util.hpp"
#include "tests/proxy/trace/sample_records.hpp"
#include "tests/support/test_support.hpp"

namespace devspaces::test {
namespace {

namespace asio = boost::asio;
namespace trace = proxy::trace;
using asio::ip::tcp;

trace::record big_record(int n) {
  auto r = outbound_exchange("s" + std::to_string(n), "/upload");
  r.request.method = "POST";
  r.request.body.append(std::string(1024, 'a' + static_cast<char>(n % 26)), 1024);
  return r;
}

TEST(TraceSlowFollower, PushesStayPromptAndTheQueueBounded) {
  constexpr std::size_t bound = 32;
  constexpr int records = 20000;
  proxy::proxy_metrics metrics;
  trace::hub hub({.buffer = 100, .json = {}, .follower_queue = bound}, &metrics);
  proxy::admin::admin_hooks hooks;
  hooks.traces = &hub;
  proxy::admin::admin_server server(metrics, hooks);
  ASSERT_FALSE(server.bind("127.0.0.1", 0));
  server.start();

  // The stuck follower: a tiny receive buffer and it never reads after the response head.
  raw_http stuck(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()));
  stuck.socket().set_option(asio::socket_base::receive_buffer_size(4096));
  stuck.send("GET /traces?follow=1&last=0 HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(stuck.read_until([&](const std::string& d) { return d.find("\r\n\r\n") != d.npos; }));
  ASSERT_TRUE(wait_for([&] { return hub.followers() == 1; }));

  std::size_t max_queued = 0;
  const auto start = std::chrono::steady_clock::now();
  auto slowest = std::chrono::steady_clock::duration::zero();
  for (int i = 0; i < records; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    hub.push(big_record(i));
    slowest = std::max(slowest, std::chrono::steady_clock::now() - t0);
    if (i % 1000 == 0) {
      for (const auto& s : hub.follower_stats()) max_queued = std::max(max_queued, s.queued);
    }
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;

  const auto stats = hub.follower_stats();
  ASSERT_EQ(stats.size(), 1u);
  max_queued = std::max(max_queued, stats[0].queued);
  EXPECT_LE(max_queued, bound);
  // 20000 records of ~1.3 KB are ~26 MB: far more than socket buffers, so most were skipped.
  EXPECT_GT(stats[0].skipped, static_cast<std::uint64_t>(records) / 2);
  EXPECT_EQ(hub.dropped(), stats[0].skipped);
  EXPECT_EQ(metrics.trace_records(proxy::trace_outcome::dropped).Value(),
            static_cast<double>(stats[0].skipped));
  EXPECT_EQ(metrics.trace_records(proxy::trace_outcome::recorded).Value(), records);
  // Generous bounds (sanitizer builds on a shared machine); a blocked push would take the
  // 30 s write timeout.
  EXPECT_LT(elapsed, std::chrono::seconds(20));
  EXPECT_LT(slowest, std::chrono::seconds(2));
  // The follower is still connected: skipping, not disconnected, while the write can wait.
  EXPECT_EQ(hub.followers(), 1u);

  hub.close();
  server.stop();
}

}  // namespace
}  // namespace devspaces::test
