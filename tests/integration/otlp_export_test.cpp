// OTLP/HTTP JSON span export, decoded by the official OpenTelemetry protobuf definitions (a node
// collector built on the opentelemetry-proto code shipped in @opentelemetry/otlp-transformer),
// the exporter's bounds when the collector is down, and HAR output checked by har-validator.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "proxy/trace/har.hpp"
#include "proxy/trace/hub.hpp"
#include "proxy/trace/otlp.hpp"
#include "tests/proxy/trace/sample_records.hpp"
#include "tests/support/test_support.hpp"

namespace devspaces::test {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

/// `node <script> args...` from tests/js with stdout on a pipe; killed on destruction.
class node_process {
 public:
  explicit node_process(std::vector<std::string> args) {
    const auto dir = source_path("tests/js");
    if (!std::filesystem::exists(dir + "/node_modules")) {
      ADD_FAILURE() << dir << "/node_modules is missing: run scripts/setup-deps";
      return;
    }
    int fds[2];
    if (::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::close_range(3, ~0U, 0);
      if (::chdir(dir.c_str()) != 0) ::_exit(127);
      std::vector<char*> argv;
      std::string node = "node";
      argv.push_back(node.data());
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp("node", argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = fds[0];
    ::fcntl(out_, F_SETFL, O_NONBLOCK);
  }
  ~node_process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) ::close(out_);
  }
  /// Waits until stdout has `n` complete lines (or 15 s pass).
  bool wait_lines(std::size_t n) {
    if (out_ < 0) return false;
    return wait_for(
        [&] {
          char buf[4096];
          for (;;) {
            const auto got = ::read(out_, buf, sizeof buf);
            if (got <= 0) break;
            text_.append(buf, static_cast<std::size_t>(got));
          }
          return lines().size() >= n;
        },
        std::chrono::seconds(15));
  }
  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    std::size_t pos = 0;
    for (auto nl = text_.find('\n'); nl != std::string::npos; nl = text_.find('\n', pos)) {
      out.push_back(text_.substr(pos, nl - pos));
      pos = nl + 1;
    }
    return out;
  }
  /// Exit status once it ends by itself (-1 on timeout).
  int wait_exit() {
    if (pid_ <= 0) return -1;
    int status = 0;
    if (!wait_for([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; },
                  std::chrono::seconds(15))) {
      return -1;
    }
    pid_ = -1;
    wait_lines(0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string text_;
};

struct exporter_env {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
  proxy::proxy_metrics metrics;
  trace::hub hub{trace::hub_options{.buffer = 16, .json = {}, .follower_queue = 8}, &metrics};
  std::thread thread;

  std::optional<std::string> start(trace::uploader_options uo) {
    trace::otlp_resource res;
    res.pod = "servicea-7d9f";
    res.space = "azureuser";
    res.version = "test";
    auto err = trace::start_otlp_exporter(hub, io.get_executor(), std::move(uo), res, &metrics);
    thread = std::thread([this] { io.run(); });
    return err;
  }
  ~exporter_env() {
    hub.close();
    guard.reset();
    io.stop();
    if (thread.joinable()) thread.join();
  }
};

TEST(OtlpExport, SpansDecodeWithTheOfficialProtobufDefinitions) {
  node_process collector({"otlp_collector.mjs"});
  ASSERT_TRUE(collector.wait_lines(1));
  const auto first = collector.lines().at(0);
  ASSERT_TRUE(first.starts_with("listening ")) << first;
  exporter_env env;
  trace::uploader_options uo;
  uo.url = "http://127.0.0.1:" + first.substr(10) + "/v1/traces";
  uo.interval = std::chrono::milliseconds(50);
  ASSERT_FALSE(env.start(uo));

  auto out = walkthrough_outbound();
  out.request.headers.emplace_back("traceparent",
                                   "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  out.trace_id = "0af7651916cd43dd8448eb211c80319c";
  env.hub.push(std::move(out));
  env.hub.push(walkthrough_inbound());
  env.hub.push(refused_outbound());
  ASSERT_TRUE(collector.wait_lines(4)) << ::testing::PrintToString(collector.lines());

  std::vector<json::object> spans;
  for (const auto& l : collector.lines()) {
    ASSERT_FALSE(l.starts_with("reject")) << l;
    if (l.starts_with("{")) spans.push_back(json::parse(l).as_object());
  }
  ASSERT_EQ(spans.size(), 3u);
  const auto& client = spans[0];
  EXPECT_EQ(client.at("kind").as_string(), "SPAN_KIND_CLIENT");
  EXPECT_EQ(client.at("traceId").as_string(), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(client.at("parentSpanId").as_string(), "b7ad6b7169203331");
  EXPECT_EQ(client.at("spanId").as_string().size(), 16u);
  EXPECT_EQ(client.at("name").as_string(), "GET");
  EXPECT_EQ(client.at("start").as_string(), "1795294029700123000");
  EXPECT_EQ(client.at("end").as_string(), "1795294029701957000");
  const auto& a = client.at("attributes").as_object();
  EXPECT_EQ(a.at("http.request.method").as_string(), "GET");
  EXPECT_EQ(a.at("http.response.status_code").as_int64(), 200);
  EXPECT_EQ(a.at("url.path").as_string(), "/api");
  EXPECT_EQ(a.at("devspaces.route_as").as_string(), "azureuser");
  EXPECT_EQ(a.at("devspaces.decision").as_string(), "parent");
  EXPECT_EQ(a.at("devspaces.level").as_int64(), 1);
  EXPECT_EQ(client.at("resource").as_object().at("service.name").as_string(), "devspaces-proxy");
  EXPECT_EQ(client.at("resource").as_object().at("k8s.pod.name").as_string(), "servicea-7d9f");

  const auto& server = spans[1];
  EXPECT_EQ(server.at("kind").as_string(), "SPAN_KIND_SERVER");
  EXPECT_EQ(server.at("traceId").as_string().size(), 32u);
  EXPECT_EQ(server.at("parentSpanId").as_string(), "");
  EXPECT_EQ(spans[2].at("status").as_string(), "STATUS_CODE_ERROR");
  EXPECT_EQ(spans[2].at("attributes").as_object().at("error.type").as_string(),
            "upstream_connect_refused");
  EXPECT_TRUE(wait_for([&] { return env.metrics.otlp_spans(true).Value() == 3; }));
}

TEST(OtlpExport, CollectorDownQueueIsBoundedAndDropsAreCounted) {
  std::uint16_t port = 0;
  {
    // A port nothing listens on: bind, read the port, close.
    asio::io_context probe;
    asio::ip::tcp::acceptor a(probe, {asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  exporter_env env;
  trace::uploader_options uo;
  uo.url = "http://127.0.0.1:" + std::to_string(port) + "/v1/traces";
  uo.queue = 5;
  uo.batch = 2;
  uo.interval = std::chrono::milliseconds(10);
  uo.backoff_initial = std::chrono::milliseconds(10);
  uo.backoff_max = std::chrono::milliseconds(50);
  ASSERT_FALSE(env.start(uo));
  for (int i = 0; i < 20; ++i) env.hub.push(outbound_exchange("x" + std::to_string(i)));
  // At most 5 spans wait; every other one was dropped and counted, none sent.
  EXPECT_TRUE(wait_for([&] { return env.metrics.otlp_spans(false).Value() >= 15; }))
      << env.metrics.otlp_spans(false).Value();
  EXPECT_EQ(env.metrics.otlp_spans(true).Value(), 0);
  // The records themselves were not dropped from the replay ring.
  EXPECT_EQ(env.metrics.trace_records(proxy::trace_outcome::dropped).Value(), 0);
}

TEST(Har, OutputPassesHarValidator) {
  std::vector<json::object> recs;
  for (const auto& r : {walkthrough_inbound(), walkthrough_outbound(), refused_outbound()}) {
    recs.push_back(json::parse(trace::to_json(r, {})).as_object());
  }
  const auto path =
      std::string(::testing::TempDir()) + "/exchanges-" + std::to_string(::getpid()) + ".har";
  std::ofstream(path) << trace::har_document(recs, "test");
  node_process validator({"har_validate.mjs", path});
  EXPECT_EQ(validator.wait_exit(), 0) << ::testing::PrintToString(validator.lines());
  ASSERT_FALSE(validator.lines().empty());
  EXPECT_EQ(validator.lines().back(), "valid 3");
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace devspaces::test
