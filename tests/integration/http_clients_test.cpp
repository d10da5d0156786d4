// The HTTP session between real clients (curl, python3 http.client) and a real origin
// (tests/integration/http_upstream.py, python3 stdlib), all on loopback.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <string>

#include "tests/proxy/http/http_fixture.hpp"
#include "tests/support/test_support.hpp"

namespace devspaces::test::http {
namespace {

// The origin as a child process; it exits when its stdin closes.
class origin {
 public:
  origin() {
    int in[2], out[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::close(in[1]);
      ::close(out[0]);
      const std::string script = source_path("tests/integration/http_upstream.py");
      ::execlp("python3", "python3", script.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    stdin_.reset(in[1]);
    stdout_.reset(out[0]);
    std::string line;
    while (line.find('\n') == std::string::npos && wait_fd(stdout_.get(), POLLIN, 10s)) {
      char buf[64];
      const auto n = ::read(stdout_.get(), buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<std::size_t>(n));
    }
    port_ = static_cast<std::uint16_t>(std::atoi(line.c_str()));
  }
  ~origin() {
    stdin_.reset();
    if (pid_ > 0) {
      if (!wait_for([&] { return ::waitpid(pid_, nullptr, WNOHANG) == pid_; }, 5s)) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
      }
    }
  }
  std::uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  fd_guard stdin_;
  fd_guard stdout_;
  std::uint16_t port_ = 0;
};

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(("timeout 120 " + cmd).c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

struct env {
  origin up;
  proxy_harness proxy;
  env() { proxy.set_upstream(up.port()); }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(proxy.port()); }
};

TEST(http_clients, curl_reuses_one_connection_for_two_requests) {
  env e;
  ASSERT_NE(e.up.port(), 0);
  EXPECT_EQ(run("curl -s -w '%{http_code}:%{num_connects} ' " + e.base() + "/hello " + e.base() +
                "/hello"),
            "hello200:1 hello200:0 ");
  EXPECT_TRUE(wait_for([&] { return e.proxy.requests("GET", proxy::code_class::c2xx) == 2; }));
}

TEST(http_clients, curl_head_request) {
  env e;
  const auto out = run("curl -s -I " + e.base() + "/hello");
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("Content-Length: 5"), std::string::npos) << out;
}

TEST(http_clients, curl_chunked_upload_with_expect_continue_keeps_checksum) {
  env e;
  const std::string path =
      std::string(::testing::TempDir()) + "/http_upload_" + std::to_string(::getpid());
  {
    std::ofstream f(path, std::ios::binary);
    std::mt19937_64 rng(42);
    std::string block(1 << 20, '\0');
    for (int i = 0; i < 24; ++i) {
      for (auto& ch : block) ch = static_cast<char>(rng());
      f.write(block.data(), static_cast<std::streamsize>(block.size()));
    }
  }
  const auto sha = run("sha256sum " + path + " | cut -d' ' -f1");
  ASSERT_EQ(sha.size(), 65u);
  const auto out = run("curl -s -T " + path +
                       " -H 'Transfer-Encoding: chunked' -H 'Expect: "
                       "100-continue' " +
                       e.base() + "/sum");
  EXPECT_EQ(out, std::to_string(24 << 20) + " " + sha.substr(0, 64));
  std::remove(path.c_str());
}

TEST(http_clients, curl_streams_a_large_chunked_download) {
  env e;
  EXPECT_EQ(run("curl -s -o /dev/null -w '%{http_code} %{size_download}' " + e.base() +
                "/bytes?n=67108864"),
            "200 67108864");
}

TEST(http_clients, python_http_client_keep_alive_loop) {
  env e;
  const auto out =
      run("python3 -c \"import http.client,sys\n"
          "c=http.client.HTTPConnection('127.0.0.1'," +
          std::to_string(e.proxy.port()) +
          ")\n"
          "ok=0\n"
          "for i in range(50):\n"
          "  c.request('GET','/headers',headers={'X-N':str(i)})\n"
          "  r=c.getresponse(); b=r.read()\n"
          "  ok+= r.status==200 and ('X-N: %d' % i) in b.decode()\n"
          "print(ok)\"");
  EXPECT_EQ(out, "50\n");
}

}  // namespace
}  // namespace devspaces::test::http
