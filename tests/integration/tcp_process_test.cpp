// devspaces-proxy as a process: startup errors (one line, exit 2 / 1) and SIGTERM (exit 0).

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include "tests/integration/tcp_harness.hpp"

extern char** environ;

namespace devspaces::test {
namespace {

using namespace std::chrono_literals;

/// A child process with its stderr captured in a file.
struct child {
  pid_t pid = -1;
  std::string err_path;

  static child start(std::vector<std::string> args) {
    child c;
    char tmpl[] = "/tmp/devspaces-proxy-err-XXXXXX";
    int fd = ::mkstemp(tmpl);
    ::close(fd);
    c.err_path = tmpl;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, c.err_path.c_str(), O_WRONLY | O_TRUNC, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    args.insert(args.begin(), binary_path("proxy/devspaces-proxy"));
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&c.pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) c.pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    return c;
  }
  /// Exit code, or -1 when it did not exit within `timeout` (then it is killed).
  int wait(std::chrono::milliseconds timeout = 20s) {
    int status = 0;
    bool done = wait_for([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, timeout);
    if (!done) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      pid = -1;
      return -1;
    }
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string stderr_text() const {
    std::FILE* f = std::fopen(err_path.c_str(), "r");
    std::string out;
    char buf[4096];
    std::size_t n;
    while (f && (n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    if (f) std::fclose(f);
    return out;
  }
  ~child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (!err_path.empty()) ::unlink(err_path.c_str());
  }
};

std::uint16_t free_port() {
  std::uint16_t port = 0;
  listen_any(1, &port);
  return port;
}

std::vector<std::string> port_args() {
  return {"--outbound-port", std::to_string(free_port()),
          "--inbound-port",  std::to_string(free_port()),
          "--admin-address", "127.0.0.1:" + std::to_string(free_port())};
}

TEST(tcp_process, bad_flag_is_one_line_and_exit_2) {
  auto c = child::start({"--idle-timeout", "soon"});
  EXPECT_EQ(c.wait(), 2);
  auto err = c.stderr_text();
  EXPECT_NE(err.find("--idle-timeout"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}

TEST(tcp_process, port_in_use_is_one_line_and_exit_1) {
  std::uint16_t busy = 0;
  auto holder = listen_any(16, &busy);
  auto args = port_args();
  args[1] = std::to_string(busy);
  auto c = child::start(args);
  EXPECT_EQ(c.wait(), 1);
  auto err = c.stderr_text();
  EXPECT_NE(err.find("already in use"), std::string::npos) << err;
  EXPECT_NE(err.find(std::to_string(busy)), std::string::npos) << err;
}

TEST(tcp_process, sigterm_when_idle_exits_0_promptly) {
  auto args = port_args();
  auto admin_port = static_cast<std::uint16_t>(std::stoi(args[5].substr(10)));
  auto c = child::start(args);
  ASSERT_GT(c.pid, 0);
  ASSERT_TRUE(wait_for([&] {
    auto s = connect_to(admin_port);
    if (!s) return false;
    s.send_all("GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    return s.read_until_eof().data.starts_with("HTTP/1.1 200");
  }));
  ::kill(c.pid, SIGTERM);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(c.wait(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

}  // namespace
}  // namespace devspaces::test
