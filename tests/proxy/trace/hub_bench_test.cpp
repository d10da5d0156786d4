// Cost of tracing per exchange, printed (not asserted: speed belongs in bench, not in a test).
// Run: trace_test --gtest_also_run_disabled_tests --gtest_filter='HubBench.*'
// (use a release build for meaningful numbers).
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "proxy/trace/hub.hpp"
#include "tests/proxy/trace/sample_records.hpp"

namespace devspaces::test {
namespace {

using clk = std::chrono::steady_clock;

TEST(HubBench, DISABLED_PushCost) {
  auto base = walkthrough_outbound();
  base.response->body = {};
  base.response->body.append(std::string(1024, 'x'), 1024);
  const trace::json_options jo{{"authorization", "cookie"}};
  constexpr int n = 200000;
  {
    const auto t0 = clk::now();
    std::size_t bytes = 0;
    for (int i = 0; i < n; ++i) bytes += trace::to_json(base, jo).size();
    const auto ns = std::chrono::duration<double, std::nano>(clk::now() - t0).count() / n;
    std::printf("to_json, 1 KiB text body: %.0f ns/record (%zu bytes)\n", ns, bytes / n);
  }
  for (int followers : {0, 1}) {
    for (int threads : {1, 2}) {
      boost::asio::io_context ioc;  // never run: the follower is stuck
      trace::hub h({.buffer = 1000, .json = jo, .follower_queue = 1024}, nullptr);
      std::vector<trace::entry> replay;
      std::shared_ptr<trace::subscription> sub;
      if (followers != 0) sub = h.subscribe(ioc.get_executor(), 0, replay);
      const auto t0 = clk::now();
      std::vector<std::thread> ts;
      for (int t = 0; t < threads; ++t) {
        ts.emplace_back([&] {
          for (int i = 0; i < n; ++i) {
            auto r = base;  // a session builds one record per exchange
            h.push(std::move(r));
          }
        });
      }
      for (auto& t : ts) t.join();
      const auto ns = std::chrono::duration<double, std::nano>(clk::now() - t0).count() / n;
      std::printf("push incl. record copy, %d stuck follower(s), %d thread(s): %.0f ns/record\n",
                  followers, threads, ns);
      EXPECT_EQ(h.recorded(), static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(threads));
    }
  }
}

}  // namespace
}  // namespace devspaces::test
