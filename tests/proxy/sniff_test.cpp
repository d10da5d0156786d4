#include "proxy/sniff.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <memory>
#include <optional>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/config.hpp"
#include "proxy/io/connection_context.hpp"
#include "proxy/metrics.hpp"

namespace devspaces::proxy {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;
using clock = std::chrono::steady_clock;

TEST(sniff, token_and_whitespace_is_http) {
  for (const char* s :
       {"GET / HTTP/1.1\r\n", "POST ", "OPTIONS *", "PROPFIND /x", "X ", "M-SEARCH * HTTP/1.1"})
    EXPECT_EQ(classify_first_bytes(s), sniff_verdict::http) << s;
}

TEST(sniff, any_case_any_tchar_token_is_http) {
  for (const char* s : {"get / HTTP/1.1", "Post /x HTTP/1.1", "VERSION-CONTROL /r HTTP/1.1",
                        "a.b_c~d!e#f$g%h&i'j*k+l^m`n|o /", "1 /"})
    EXPECT_EQ(classify_first_bytes(s), sniff_verdict::http) << s;
}

TEST(sniff, tabs_and_leading_empty_lines_are_http) {
  EXPECT_EQ(classify_first_bytes("GET\t/\tHTTP/1.1"), sniff_verdict::http);
  EXPECT_EQ(classify_first_bytes("\r\nGET / HTTP/1.1"), sniff_verdict::http);
  EXPECT_EQ(classify_first_bytes("\n\nget / HTTP/1.1"), sniff_verdict::http);
  EXPECT_EQ(classify_first_bytes("\r\n\n\r\nPOST\t/"), sniff_verdict::http);
}

TEST(sniff, h2_preface_is_h2) {
  const std::string preface(h2_preface);
  EXPECT_EQ(classify_first_bytes(preface), sniff_verdict::h2);
  EXPECT_EQ(classify_first_bytes(preface + std::string("\x00\x00\x12\x04\x00", 5)),
            sniff_verdict::h2);
  // Every proper prefix waits for the rest.
  for (std::size_t n = 1; n < preface.size(); ++n)
    EXPECT_EQ(classify_first_bytes(preface.substr(0, n)), sniff_verdict::need_more) << n;
  // "PRI" that is not the preface is an HTTP/1 request line: the parser decides.
  EXPECT_EQ(classify_first_bytes("PRI * HTTP/2.0\r\n\r\nXX"), sniff_verdict::http);
  EXPECT_EQ(classify_first_bytes("PRI / HTTP/1.1\r\n"), sniff_verdict::http);
}

TEST(sniff, everything_else_is_tcp) {
  EXPECT_EQ(classify_first_bytes(std::string_view("\x16\x03\x01\x02\x00", 5)), sniff_verdict::tcp);
  EXPECT_EQ(classify_first_bytes(" GET"), sniff_verdict::tcp);
  EXPECT_EQ(classify_first_bytes("GET/ \r\n"), sniff_verdict::tcp);
  EXPECT_EQ(classify_first_bytes("{\"op\":\"get\"} HTTP/1.1\r\n"), sniff_verdict::tcp);
  EXPECT_EQ(classify_first_bytes("SSH-2.0-OpenSSH\r\n"), sniff_verdict::tcp);
  EXPECT_EQ(classify_first_bytes("*1\r\n$4\r\nPING\r\n"), sniff_verdict::tcp);  // RESP
  EXPECT_EQ(classify_first_bytes(std::string_view("\0\0\0\x08", 4)), sniff_verdict::tcp);
  EXPECT_EQ(classify_first_bytes("\rGET / HTTP/1.1"), sniff_verdict::tcp);  // bare CR
  EXPECT_EQ(classify_first_bytes("\r\n\x16"), sniff_verdict::tcp);
}

// An origin that splits the request line at whitespace reads "G(T" as a method: a first line
// that ends in an HTTP version goes to the parser (which rejects it) however the method looks,
// and a line still coming waits for its end, so splitting it into segments does not help.
TEST(sniff, request_line_with_a_separator_in_the_method_is_http) {
  for (const char* s : {"G(T / HTTP/1.1\r\n", "G(T / HTTP/1.1\n", "GET/x /y HTTP/1.0\r\nHost: a",
                        "a:b\t/\thttp/1.1\r\n", "G@T /a?b=c HTTP/9.9\r\n\r\n"})
    EXPECT_EQ(classify_first_bytes(s), sniff_verdict::http) << s;
  for (const char* s : {"G(", "G(T", "G(T / HTTP/1.", "G(T / HTTP/1.1\r"})
    EXPECT_EQ(classify_first_bytes(s), sniff_verdict::need_more) << s;
  for (const char* s : {"G(T / HTTP/1.1x\r\n", "G(T /\r\n", "G(T\x01 / HTTP/1.1\r\n",
                        "G(T / HTTP/1.1\rX\n", "G(THTTP/1.1\r\n"})
    EXPECT_EQ(classify_first_bytes(s), sniff_verdict::tcp) << s;
  EXPECT_EQ(classify_first_bytes("G(" + std::string(sniff_limit, 'x')), sniff_verdict::http);
}

TEST(sniff, undecided_prefix_waits_for_more) {
  for (const char* s : {"", "G", "get", "OPTIO", "VERSION-CONTROL", "\r", "\r\n", "\n\r\nGE"})
    EXPECT_EQ(classify_first_bytes(s), sniff_verdict::need_more) << s;
  EXPECT_EQ(classify_first_bytes(std::string(200, 'A')), sniff_verdict::need_more);
}

TEST(sniff, stream_still_undecided_at_the_limit_goes_to_the_parser) {
  EXPECT_EQ(classify_first_bytes(std::string(sniff_limit, 'A')), sniff_verdict::http);
  EXPECT_EQ(classify_first_bytes(std::string(sniff_limit, '\n')), sniff_verdict::http);
}

TEST(sniff, speculative_connect_delay_stays_inside_the_window) {
  EXPECT_EQ(speculative_connect_delay(100ms), 10ms);
  EXPECT_EQ(speculative_connect_delay(5ms), 5ms);
  EXPECT_EQ(speculative_connect_delay(0ms), 0ms);
}

// ---- the sniff window on real loopback sockets

/// A blocking loopback listener standing in for the original destination.
class upstream_listener {
 public:
  upstream_listener() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 8);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~upstream_listener() {
    if (conn_ >= 0) ::close(conn_);
    ::close(fd_);
  }
  tcp::endpoint endpoint() const {
    return tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_);
  }
  /// Accepts one connection within `timeout`; false when none came.
  bool accept(std::chrono::milliseconds timeout = 5s) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
    conn_ = ::accept(fd_, nullptr, nullptr);
    return conn_ >= 0;
  }
  int conn() const { return conn_; }
  void close_conn() {
    ::close(conn_);
    conn_ = -1;
  }

 private:
  int fd_;
  int conn_ = -1;
  std::uint16_t port_ = 0;
};

/// Runs sniff_connection for one client connection on its own loop thread.
class sniff_harness {
 public:
  explicit sniff_harness(std::chrono::milliseconds window, tcp::endpoint dst,
                         std::optional<std::chrono::milliseconds> idle = std::nullopt)
      : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    auto cfg = std::make_shared<config>();
    cfg->sniff_timeout = window;
    if (idle) cfg->idle_timeout = *idle;
    cfg->connect_timeout = 2s;
    services_.cfg = cfg;
    services_.metrics = &metrics_;
    ctx_.services = &services_;
    ctx_.original_dst = dst;
    asio::co_spawn(io_, run(), [](std::exception_ptr) {});
    thread_ = std::thread([this] { io_.run(); });
  }
  ~sniff_harness() {
    io_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  /// Connects a blocking client socket to the harness.
  int connect_client() {
    client_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port());
    EXPECT_EQ(::connect(client_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    started_ = clock::now();
    return client_;
  }

  /// The sniff result, waiting up to `timeout`; nullopt when the sniff did not end in time.
  std::optional<sniff_verdict> verdict(std::chrono::milliseconds timeout = 5s) {
    if (done_.wait_for(timeout) != std::future_status::ready) return std::nullopt;
    return verdict_;
  }
  const std::string& bytes() const { return bytes_; }
  bool had_upstream() const { return had_upstream_; }
  bool proceed() const { return proceed_; }
  clock::duration took() const { return finished_ - started_; }
  double rx() { return metrics_.bytes(direction::outbound, flow::rx).Value(); }

  void close_client() {
    if (client_ >= 0) ::close(client_);
    client_ = -1;
  }

 private:
  asio::awaitable<void> run() {
    auto s = co_await acceptor_.async_accept(asio::use_awaitable);
    auto r = co_await sniff_connection(ctx_, s);
    finished_ = clock::now();
    verdict_ = r.verdict;
    bytes_ = r.bytes;
    had_upstream_ = r.upstream.has_value();
    proceed_ = r.proceed;
    ready_.set_value();
  }

  asio::io_context io_{1};
  tcp::acceptor acceptor_;
  proxy_metrics metrics_;
  io::worker_services services_;
  io::connection_context ctx_;
  std::thread thread_;
  std::promise<void> ready_;
  std::future<void> done_ = ready_.get_future();
  sniff_verdict verdict_ = sniff_verdict::need_more;
  std::string bytes_;
  bool had_upstream_ = false;
  bool proceed_ = false;
  int client_ = -1;
  clock::time_point started_;
  clock::time_point finished_;
};

void send_text(int fd, std::string_view s) {
  ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
}

TEST(sniff_window, bytes_sent_at_once_classify_at_once) {
  upstream_listener up;
  sniff_harness h(5s, up.endpoint());
  int c = h.connect_client();
  send_text(c, "get /x HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(h.verdict(), sniff_verdict::http);
  EXPECT_EQ(h.bytes(), "get /x HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(h.rx(), static_cast<double>(h.bytes().size()));
  EXPECT_TRUE(h.proceed());
  h.close_client();
}

TEST(sniff_window, tls_client_hello_is_tcp) {
  upstream_listener up;
  sniff_harness h(5s, up.endpoint());
  int c = h.connect_client();
  send_text(c, std::string_view("\x16\x03\x01\x00\x05hello", 10));
  EXPECT_EQ(h.verdict(), sniff_verdict::tcp);
  EXPECT_EQ(h.bytes().size(), 10u);
  h.close_client();
}

TEST(sniff_window, preface_is_h2) {
  upstream_listener up;
  sniff_harness h(5s, up.endpoint());
  int c = h.connect_client();
  send_text(c, h2_preface);
  EXPECT_EQ(h.verdict(), sniff_verdict::h2);
  h.close_client();
}

TEST(sniff_window, http_bytes_after_the_window_are_still_http) {
  // The client connects, says nothing through the whole window (the proxy connects upstream
  // meanwhile; the upstream says nothing either), then sends a request: still HTTP.
  upstream_listener up;
  sniff_harness h(30ms, up.endpoint());
  int c = h.connect_client();
  ASSERT_TRUE(up.accept());            // the early connect
  std::this_thread::sleep_for(200ms);  // the scenario: silent well past the 30 ms window
  EXPECT_FALSE(h.verdict(0ms).has_value()) << "the sniff must still wait for the client";
  send_text(c, "GET / HTTP/1.1\r\nHost: b\r\n\r\n");
  EXPECT_EQ(h.verdict(), sniff_verdict::http);
  EXPECT_EQ(h.bytes(), "GET / HTTP/1.1\r\nHost: b\r\n\r\n");
  EXPECT_TRUE(h.had_upstream());
  EXPECT_TRUE(h.proceed());
  h.close_client();
}

TEST(sniff_window, server_first_after_the_window_is_tcp_without_client_bytes) {
  upstream_listener up;
  sniff_harness h(30ms, up.endpoint());
  int c = h.connect_client();
  (void)c;
  ASSERT_TRUE(up.accept());
  std::this_thread::sleep_for(200ms);  // past the window: the server speaks late
  EXPECT_FALSE(h.verdict(0ms).has_value());
  send_text(up.conn(), "220 smtp ready\r\n");
  EXPECT_EQ(h.verdict(), sniff_verdict::tcp);
  EXPECT_TRUE(h.bytes().empty());
  EXPECT_TRUE(h.had_upstream());
  EXPECT_TRUE(h.proceed());
  h.close_client();
}

TEST(sniff_window, server_first_inside_a_long_window_has_no_delay) {
  upstream_listener up;
  sniff_harness h(5s, up.endpoint());
  h.connect_client();
  ASSERT_TRUE(up.accept());
  send_text(up.conn(), "SSH-2.0-banner\r\n");
  ASSERT_EQ(h.verdict(), sniff_verdict::tcp);
  EXPECT_LT(h.took(), 1s);
  EXPECT_TRUE(h.had_upstream());
  h.close_client();
}

TEST(sniff_window, upstream_closing_silently_leaves_the_decision_to_the_client) {
  upstream_listener up;
  sniff_harness h(2s, up.endpoint());
  int c = h.connect_client();
  ASSERT_TRUE(up.accept());
  up.close_conn();
  EXPECT_FALSE(h.verdict(100ms).has_value());
  send_text(c, "GET / HTTP/1.1\r\n");
  EXPECT_EQ(h.verdict(), sniff_verdict::http);
  EXPECT_FALSE(h.had_upstream());
  EXPECT_TRUE(h.proceed());
  h.close_client();
}

TEST(sniff_window, undecided_late_bytes_get_a_window_of_their_own) {
  // "before" could still become a method: late bytes wait for the rest as in-time bytes would,
  // for one --sniff-timeout, then go to the raw relay with the upstream opened meanwhile.
  upstream_listener up;
  sniff_harness h(50ms, up.endpoint());
  int c = h.connect_client();
  ASSERT_TRUE(up.accept());
  std::this_thread::sleep_for(150ms);  // the scenario: silent past the window
  send_text(c, "before");
  ASSERT_EQ(h.verdict(), sniff_verdict::tcp);
  EXPECT_EQ(h.bytes(), "before");
  EXPECT_TRUE(h.had_upstream());
  EXPECT_GE(h.took(), 200ms);
  h.close_client();
}

TEST(sniff_window, unreachable_upstream_and_silent_client_ends_at_the_window) {
  tcp::endpoint nowhere;
  {
    upstream_listener gone;
    nowhere = gone.endpoint();
  }  // closed: connecting there is refused
  sniff_harness h(50ms, nowhere);
  h.connect_client();
  ASSERT_EQ(h.verdict(), sniff_verdict::tcp);
  EXPECT_FALSE(h.proceed());
  EXPECT_GE(h.took(), 50ms);
  h.close_client();
}

TEST(sniff_window, silent_client_and_silent_upstream_end_at_the_idle_timeout) {
  // The wait for the client's first bytes is bounded by the connection's idle timeout (the
  // window's io::deadline cancels it); the upstream opened meanwhile goes to the raw relay.
  upstream_listener up;
  sniff_harness h(50ms, up.endpoint(), 400ms);
  h.connect_client();
  ASSERT_TRUE(up.accept());
  ASSERT_EQ(h.verdict(), sniff_verdict::tcp);
  EXPECT_TRUE(h.proceed());
  EXPECT_TRUE(h.had_upstream());
  EXPECT_TRUE(h.bytes().empty());
  EXPECT_GE(h.took(), 400ms);
  EXPECT_LT(h.took(), 3s);
  h.close_client();
}

TEST(sniff_window, each_wait_for_the_client_gets_a_fresh_deadline) {
  // The first wait (the short grace) expires; the second, armed on the same deadline, still
  // lets bytes that come later decide.
  upstream_listener up;
  sniff_harness h(1000ms, up.endpoint(), 5000ms);
  int c = h.connect_client();
  ASSERT_TRUE(up.accept());  // the grace passed: the speculative connect came
  std::this_thread::sleep_for(100ms);
  send_text(c, "GET / HTTP/1.1\r\n");
  ASSERT_EQ(h.verdict(), sniff_verdict::http);
  EXPECT_TRUE(h.had_upstream());
  EXPECT_LT(h.took(), 1000ms);
  h.close_client();
}

}  // namespace
}  // namespace devspaces::proxy
