#include "proxy/trace/hub.hpp"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "proxy/trace/uploader.hpp"
#include "tests/proxy/trace/sample_records.hpp"
#include "tests/support/test_support.hpp"

namespace devspaces::test {
namespace {

namespace asio = boost::asio;
using proxy::proxy_metrics;
using proxy::trace_outcome;

double counter(proxy_metrics& m, trace_outcome o) {
  return m.trace_records(o).Value();
}

std::string body_of(const trace::entry& e) {
  return e.json->text();
}

TEST(Hub, PushSerialisesOnceAndKeepsTheNewestInTheRing) {
  proxy_metrics metrics;
  trace::hub h({.buffer = 3, .json = {}, .follower_queue = 8}, &metrics);
  for (int i = 0; i < 5; ++i) h.push_json("{\"n\":" + std::to_string(i) + "}");
  const auto last = h.last(10);
  ASSERT_EQ(last.size(), 3u);
  EXPECT_EQ(body_of(last[0]), "{\"n\":2}");
  EXPECT_EQ(body_of(last[2]), "{\"n\":4}");
  EXPECT_EQ(last[2].seq, 5u);
  const auto two = h.last(2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(body_of(two[0]), "{\"n\":3}");
  EXPECT_EQ(h.recorded(), 5u);
  EXPECT_EQ(counter(metrics, trace_outcome::recorded), 5);
  EXPECT_EQ(counter(metrics, trace_outcome::dropped), 0);
}

TEST(Hub, ZeroBufferKeepsNothingButStillCounts) {
  trace::hub h({.buffer = 0, .json = {}, .follower_queue = 8}, nullptr);
  h.push(walkthrough_outbound());
  EXPECT_TRUE(h.last(100).empty());
  EXPECT_EQ(h.recorded(), 1u);
}

TEST(Hub, WantedOnlyWhileSomethingReceivesRecords) {
  asio::io_context ioc;
  trace::hub with_ring({.buffer = 1, .json = {}, .follower_queue = 8}, nullptr);
  EXPECT_TRUE(with_ring.wanted());

  // --trace-buffer 0 and no uploader: tracing is off until a follower attaches.
  trace::hub h({.buffer = 0, .json = {}, .follower_queue = 8}, nullptr);
  EXPECT_FALSE(h.wanted());
  std::vector<trace::entry> replay;
  auto a = h.subscribe(ioc.get_executor(), 10, replay);
  auto b = h.subscribe(ioc.get_executor(), 10, replay);
  EXPECT_TRUE(h.wanted());
  h.unsubscribe(a);
  EXPECT_TRUE(h.wanted());
  h.unsubscribe(b);
  EXPECT_FALSE(h.wanted());

  trace::uploader_options o;
  o.url = "http://127.0.0.1:9/traces";
  h.set_uploader(std::make_shared<trace::uploader>(ioc.get_executor(), o,
                                                   *trace::parse_http_url(o.url), nullptr));
  EXPECT_TRUE(h.wanted());
}

TEST(Hub, PushAppliesRedaction) {
  trace::hub h({.buffer = 4, .json = {{"authorization"}}, .follower_queue = 8}, nullptr);
  h.push(refused_outbound());
  const auto last = h.last(1);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_NE(last[0].json->text().find("[\"authorization\",\"[redacted]\"]"), std::string::npos);
  EXPECT_NE(last[0].json->text().find("[\"cookie\",\"a=b\"]"), std::string::npos);
}

TEST(Hub, FollowerGetsReplayThenNewRecordsWithoutGapOrRepeat) {
  asio::io_context ioc;
  trace::hub h({.buffer = 10, .json = {}, .follower_queue = 100}, nullptr);
  for (int i = 0; i < 4; ++i) h.push_json(std::to_string(i));
  std::vector<trace::entry> replay;
  auto sub = h.subscribe(ioc.get_executor(), 2, replay);
  ASSERT_EQ(replay.size(), 2u);
  EXPECT_EQ(body_of(replay[0]), "2");
  EXPECT_EQ(h.followers(), 1u);

  std::vector<std::string> got;
  bool ended = false;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        std::vector<trace::entry> batch;
        while (co_await sub->wait(batch)) {
          for (auto& e : batch) got.push_back(e.json->text());
          batch.clear();
        }
        ended = true;
      },
      asio::detached);
  std::thread pusher([&] {
    for (int i = 4; i < 50; ++i) h.push_json(std::to_string(i));
    wait_for([&] { return sub->queued() == 0; });
    h.unsubscribe(sub);
    sub->close();
  });
  ioc.run_for(std::chrono::seconds(20));
  pusher.join();
  EXPECT_TRUE(ended);
  ASSERT_EQ(got.size(), 46u);
  for (int i = 0; i < 46; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], std::to_string(i + 4));
  EXPECT_EQ(h.followers(), 0u);
}

TEST(Hub, AFollowerThatNeverReadsSkipsRecordsWithinItsBound) {
  asio::io_context ioc;  // never run: the follower never consumes
  proxy_metrics metrics;
  trace::hub h({.buffer = 10, .json = {}, .follower_queue = 4}, &metrics);
  std::vector<trace::entry> replay;
  auto sub = h.subscribe(ioc.get_executor(), 0, replay);
  for (int i = 0; i < 1000; ++i) h.push(walkthrough_outbound());
  EXPECT_EQ(sub->queued(), 4u);
  EXPECT_EQ(sub->skipped(), 996u);
  EXPECT_EQ(h.dropped(), 996u);
  EXPECT_EQ(counter(metrics, trace_outcome::dropped), 996);
  EXPECT_EQ(counter(metrics, trace_outcome::recorded), 1000);
  h.close();
}

TEST(Hub, ConcurrentPushersAreAllRecorded) {
  trace::hub h({.buffer = 100, .json = {}, .follower_queue = 8}, nullptr);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) h.push(walkthrough_outbound());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(h.recorded(), 2000u);
  const auto last = h.last(100);
  ASSERT_EQ(last.size(), 100u);
  for (std::size_t i = 1; i < last.size(); ++i) EXPECT_EQ(last[i].seq, last[i - 1].seq + 1);
}

TEST(Uploader, FullQueueDropsTheOldest) {
  asio::io_context ioc;
  proxy_metrics metrics;
  trace::hub h({.buffer = 0, .json = {}, .follower_queue = 8}, &metrics);
  trace::uploader_options o;
  o.url = "http://127.0.0.1:9/traces";
  o.queue = 3;
  auto u = std::make_shared<trace::uploader>(ioc.get_executor(), o, *trace::parse_http_url(o.url),
                                             &metrics);
  h.set_uploader(u);  // not started: nothing is sent
  for (int i = 0; i < 5; ++i) h.push_json(std::to_string(i));
  EXPECT_EQ(u->queued(), 3u);
  EXPECT_EQ(u->dropped(), 2u);
  EXPECT_EQ(h.dropped(), 0u);  // no follower skipped anything
  EXPECT_EQ(counter(metrics, trace_outcome::dropped), 2);
  EXPECT_EQ(counter(metrics, trace_outcome::sent), 0);
}

TEST(Uploader, ParsesUrls) {
  auto a = trace::parse_http_url("http://collector:8080/v1/traces");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "collector");
  EXPECT_EQ(a->port, "8080");
  EXPECT_EQ(a->target, "/v1/traces");
  EXPECT_EQ(a->host_header, "collector:8080");
  auto b = trace::parse_http_url("http://[::1]:15090");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->target, "/");
  auto c = trace::parse_http_url("http://example.com");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->port, "80");
  EXPECT_FALSE(trace::parse_http_url("https://example.com"));
  EXPECT_FALSE(trace::parse_http_url("http://"));
  EXPECT_FALSE(trace::parse_http_url("http://host:0/"));
  EXPECT_FALSE(trace::parse_http_url("http://host:99999/"));
  EXPECT_FALSE(trace::parse_http_url("http://[::1/"));
  EXPECT_FALSE(trace::parse_http_url("http://::1:80/"));
}

}  // namespace
}  // namespace devspaces::test
