// --trace-upstream: batched NDJSON POSTs to a collector that is down, then up.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // GCC 12 false positive, coroutines

#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "proxy/trace/hub.hpp"
#include "proxy/trace/uploader.hpp"
#include "tests/integration/trace_test_util.hpp"
#include "tests/proxy/trace/sample_records.hpp"
#include "tests/support/test_support.hpp"

namespace devspaces::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace trace = proxy::trace;
using asio::ip::tcp;
constexpr auto token = asio::as_tuple(asio::use_awaitable);

/// A trace collector: accepts POSTs, keeps every NDJSON line, answers 200 (keep-alive).
class collector {
 public:
  explicit collector(std::uint16_t port) : acceptor_(ioc_) {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    asio::co_spawn(ioc_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~collector() {
    ioc_.stop();
    thread_.join();
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  std::vector<std::string> lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  std::vector<std::size_t> batch_sizes() const {
    std::lock_guard lock(mutex_);
    return batches_;
  }
  std::vector<std::string> content_types() const {
    std::lock_guard lock(mutex_);
    return types_;
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, sock] = co_await acceptor_.async_accept(token);
      if (ec) co_return;
      asio::co_spawn(ioc_, session(std::move(sock)), asio::detached);
    }
  }

  asio::awaitable<void> session(tcp::socket sock) {
    beast::tcp_stream stream(std::move(sock));
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      auto [ec, n] = co_await http::async_read(stream, buffer, req, token);
      if (ec) co_return;
      {
        std::lock_guard lock(mutex_);
        const auto got = split_lines(req.body());
        lines_.insert(lines_.end(), got.begin(), got.end());
        batches_.push_back(got.size());
        types_.emplace_back(req[http::field::content_type]);
      }
      http::response<http::string_body> res(http::status::ok, req.version());
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      auto [wec, wn] = co_await http::async_write(stream, res, token);
      if (wec || !req.keep_alive()) co_return;
    }
  }

  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
  std::vector<std::size_t> batches_;
  std::vector<std::string> types_;
};

std::uint16_t free_port() {
  asio::io_context ioc;
  tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

std::string id_of(const std::string& line) {
  return std::string(boost::json::parse(line).as_object().at("id").as_string());
}

trace::record sample(int n) {
  return outbound_exchange("u" + std::to_string(n));
}

/// An io_context on its own thread, stopped and joined also when an assertion returns early.
struct loop_thread {
  asio::io_context ioc;
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  std::thread thread{[this] { ioc.run(); }};
  ~loop_thread() {
    work.reset();
    ioc.stop();
    thread.join();
  }
};

TEST(TraceUpstream, CollectorDownThenUpResumesAndCountsDrops) {
  loop_thread loop;
  auto& ioc = loop.ioc;

  proxy::proxy_metrics metrics;
  trace::hub hub({.buffer = 10, .json = {}, .follower_queue = 8}, &metrics);
  const auto port = free_port();
  trace::uploader_options o;
  o.url = "http://127.0.0.1:" + std::to_string(port) + "/v1/records";
  o.queue = 50;
  o.batch = 10;
  o.interval = std::chrono::milliseconds(50);
  o.backoff_initial = std::chrono::milliseconds(20);
  o.backoff_max = std::chrono::milliseconds(200);
  auto up = std::make_shared<trace::uploader>(ioc.get_executor(), o, *trace::parse_http_url(o.url),
                                              &metrics);
  hub.set_uploader(up);
  up->start();

  // Down: nothing listens. 100 records into a queue of 50: the oldest are dropped (a batch
  // whose POST is in flight when they are evicted counts by that POST's outcome instead).
  for (int i = 0; i < 100; ++i) hub.push(sample(i));
  auto sent = [&] { return metrics.trace_records(proxy::trace_outcome::sent).Value(); };
  auto dropped = [&] { return metrics.trace_records(proxy::trace_outcome::dropped).Value(); };
  EXPECT_GE(dropped(), 40);
  EXPECT_EQ(sent(), 0);
  ASSERT_TRUE(wait_for([&] { return up->failures() > 0; }));

  {
    // Up on the same port: the queued records (the newest 50) arrive in order, in batches of
    // at most 10; every record is either sent or dropped.
    collector c(port);
    ASSERT_TRUE(wait_for([&] { return sent() + dropped() == 100; }));
    auto lines = c.lines();
    EXPECT_EQ(static_cast<double>(lines.size()), sent());
    ASSERT_GE(lines.size(), 50u);
    for (std::size_t i = 0; i < 50; ++i) {
      EXPECT_EQ(id_of(lines[lines.size() - 50 + i]), "u" + std::to_string(50 + i));
    }
    for (std::size_t i = 1; i < lines.size(); ++i) {
      EXPECT_LT(std::stoi(id_of(lines[i - 1]).substr(1)), std::stoi(id_of(lines[i]).substr(1)));
    }
    const auto before = lines.size();

    // New records keep flowing; a partial batch goes out after the interval.
    const auto dropped_before = dropped();
    for (int i = 100; i < 135; ++i) hub.push(sample(i));
    ASSERT_TRUE(wait_for([&] { return c.lines().size() >= before + 35; }));
    lines = c.lines();
    ASSERT_EQ(lines.size(), before + 35);
    EXPECT_EQ(id_of(lines.back()), "u134");
    for (auto n : c.batch_sizes()) EXPECT_LE(n, 10u);
    for (const auto& t : c.content_types()) EXPECT_EQ(t, "application/x-ndjson");
    ASSERT_TRUE(wait_for([&] { return sent() == static_cast<double>(before + 35); }));
    EXPECT_EQ(dropped(), dropped_before);
  }

  // Down again (the collector closed its connections): records wait, then a new collector
  // gets them.
  for (int i = 135; i < 140; ++i) hub.push(sample(i));
  {
    collector c(port);
    ASSERT_TRUE(wait_for([&] { return c.lines().size() >= 5; }));
    EXPECT_EQ(id_of(c.lines().front()), "u135");
  }
  EXPECT_EQ(metrics.trace_records(proxy::trace_outcome::recorded).Value(), 140);
  EXPECT_TRUE(wait_for([&] { return sent() + dropped() == 140; }));
  EXPECT_EQ(hub.dropped(), 0u);  // no follower: every drop was the uploader's
  hub.close();
}

TEST(TraceUpstream, MalformedUrlIsRefused) {
  asio::io_context ioc;
  trace::hub hub({}, nullptr);
  trace::uploader_options o;
  o.url = "http://host:notaport/";
  EXPECT_TRUE(trace::start_uploader(hub, ioc.get_executor(), o, nullptr));
}

}  // namespace
}  // namespace devspaces::test
