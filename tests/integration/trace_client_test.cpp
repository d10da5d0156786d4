// `devspaces-proxy traces URL`: follows a real admin server, renders records, reconnects
// without printing a record twice, exits 0 on SIGINT.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "proxy/admin/admin_server.hpp"
#include "proxy/trace/hub.hpp"
#include "proxy/trace/traces_client.hpp"
#include "tests/integration/trace_test_util.hpp"
#include "tests/proxy/trace/sample_records.hpp"
#include "tests/support/test_support.hpp"

namespace devspaces::test {
namespace {

namespace trace = proxy::trace;

/// The client in a child process with its stdout on a pipe.
class client_process {
 public:
  explicit client_process(const std::string& url) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      // Drop inherited descriptors (the admin listener): the parent rebinds its port later.
      ::close_range(3, ~0U, 0);
      std::string a0 = "devspaces-proxy", a1 = "traces", a2 = url;
      char* argv[] = {a0.data(), a1.data(), a2.data(), nullptr};
      ::_exit(trace::run_traces_client(3, argv));
    }
    ::close(fds[1]);
    out_ = fds[0];
    ::fcntl(out_, F_SETFL, O_NONBLOCK);
  }
  ~client_process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_);
  }

  /// Reads stdout until it contains `needle` (or 10 s pass).
  bool wait_output(const std::string& needle) {
    return wait_for([&] {
      char buf[4096];
      for (;;) {
        const auto n = ::read(out_, buf, sizeof buf);
        if (n <= 0) break;
        text_.append(buf, static_cast<std::size_t>(n));
      }
      return text_.find(needle) != std::string::npos;
    });
  }

  /// SIGINT, then the exit status (-1 when it did not exit normally within 10 s).
  int interrupt() {
    ::kill(pid_, SIGINT);
    int status = 0;
    bool done = wait_for([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; });
    if (!done) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  const std::string& text() const { return text_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string text_;
};

TEST(TraceClient, FollowsRendersReconnectsAndExitsZeroOnSigint) {
  proxy::proxy_metrics metrics;
  trace::hub hub({.buffer = 100, .json = {}, .follower_queue = 64}, &metrics);
  proxy::admin::admin_hooks hooks;
  hooks.traces = &hub;
  auto server = std::make_unique<proxy::admin::admin_server>(metrics, hooks);
  ASSERT_FALSE(server->bind("127.0.0.1", 0));
  const auto port = server->port();
  hub.push(outbound_exchange("aaa", "/first"));
  // Fork while this process has one thread (the listener is bound but not served yet), so
  // the child cannot inherit a lock some other thread held.
  client_process client("http://127.0.0.1:" + std::to_string(port));
  server->start();
  ASSERT_TRUE(client.wait_output("   hello\n")) << client.text();
  EXPECT_EQ(client.text(),
            "servicea-7d9f --aaa-> serviceb (default):\n"
            "   GET /first HTTP/1.1\n"
            "servicea-7d9f <-aaa-- serviceb (default): 1.834 ms\n"
            "   HTTP/1.1 200 OK\n"
            "   hello\n");
  ASSERT_TRUE(wait_for([&] { return hub.followers() == 1; }));
  hub.push(outbound_exchange("bbb", "/second"));
  ASSERT_TRUE(client.wait_output("GET /second")) << client.text();

  // The admin server goes away and comes back on the same port: the client reconnects, gets
  // the replay again and prints only what it has not printed.
  hub.close();
  server.reset();  // closes the listener
  server = std::make_unique<proxy::admin::admin_server>(metrics, hooks);
  const auto err = server->bind("127.0.0.1", port);
  ASSERT_FALSE(err) << *err;
  server->start();
  hub.push(outbound_exchange("ccc", "/third"));
  ASSERT_TRUE(client.wait_output("GET /third")) << client.text();
  EXPECT_EQ(count_of(client.text(), "--aaa->"), 1u);
  EXPECT_EQ(count_of(client.text(), "--bbb->"), 1u);

  EXPECT_EQ(client.interrupt(), 0);
  hub.close();
  server->stop();
}

}  // namespace
}  // namespace devspaces::test
