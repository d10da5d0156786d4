// The HTTP/1.1 request conformance table (tests/conformance/http1_requests.json) through the
// real proxy server (sniff, dispatch, HTTP session) to a recording origin: each vector asserts
// the client's answer and the exact bytes the origin received, or that it received nothing.
// The same table runs against HAProxy and nginx in bench/conformance.

#include <boost/json.hpp>

#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "proxy/sniff.hpp"
#include "tests/integration/tcp_harness.hpp"

namespace devspaces::test {
namespace {

struct vector_case {
  std::string name;
  std::string cls;
  std::string request;
  int expect = 0;
  bool origin_nothing = false;
  std::string origin;
  bool sniff = false;
};

// JSON strings carry the bytes as code points 0-255 (latin-1).
std::string to_bytes(std::string_view utf8) {
  std::string out;
  for (std::size_t i = 0; i < utf8.size(); ++i) {
    const auto c = static_cast<unsigned char>(utf8[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if ((c & 0xe0) == 0xc0 && i + 1 < utf8.size()) {
      out.push_back(static_cast<char>(((c & 0x1f) << 6) | (utf8[i + 1] & 0x3f)));
      ++i;
    }
  }
  return out;
}

std::vector<vector_case> load_vectors() {
  std::ifstream in(std::string(DEVSPACES_SOURCE_DIR) + "/tests/conformance/http1_requests.json");
  std::stringstream ss;
  ss << in.rdbuf();
  std::vector<vector_case> out;
  boost::system::error_code ec;
  auto doc = boost::json::parse(ss.str(), ec);
  if (ec) return out;
  for (const auto& jv : doc.as_object().at("vectors").as_array()) {
    const auto& o = jv.as_object();
    vector_case v;
    v.name = std::string(o.at("name").as_string());
    v.cls = std::string(o.at("class").as_string());
    v.request = to_bytes(o.at("request").as_string());
    v.expect = static_cast<int>(o.at("expect").as_int64());
    const auto& origin = o.at("origin");
    if (origin.is_null()) {
      v.origin_nothing = true;
    } else if (origin.as_string() == "same") {
      v.origin = v.request;
    } else {
      v.origin = to_bytes(origin.as_string());
    }
    v.sniff = o.contains("sniff") && o.at("sniff").as_bool();
    out.push_back(std::move(v));
  }
  return out;
}

// What the origin of one vector saw: every byte of every connection the proxy opened.
struct recording {
  std::mutex mutex;
  std::string bytes;
  int connections = 0;
};

constexpr std::string_view origin_answer =
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

// Reads until `want` bytes arrived (the whole expected request), answers, then records what
// else comes until the proxy closes: a smuggled second request would show up there.
void serve(fd_socket& s, recording& rec, std::size_t want) {
  s.set_timeout(std::chrono::seconds(3));
  std::string got;
  char buf[65536];
  while (got.size() < want) {
    const auto n = ::recv(s.fd(), buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  s.send_all(origin_answer);
  s.shutdown_send();
  auto rest = s.read_until_eof(1 << 20);
  got += rest.data;
  std::lock_guard lock(rec.mutex);
  rec.bytes += got;
  ++rec.connections;
}

int status_of(const std::string& answer) {
  if (answer.size() < 12 || answer.compare(0, 7, "HTTP/1.") != 0) return 0;
  return std::atoi(answer.substr(9, 3).c_str());
}

// Printable form of bytes for failure messages.
std::string show(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n\n";
    } else if (c < 0x20 || c >= 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

struct result {
  int status = 0;
  std::string origin;
  int connections = 0;
};

result run_vector(proxy_under_test& proxy, const vector_case& v) {
  recording rec;
  result r;
  {
    const std::size_t want = v.origin_nothing ? 0 : v.origin.size();
    upstream_server origin([&rec, want](fd_socket& s, const sockaddr_in&) { serve(s, rec, want); });
    proxy.set_target(origin.endpoint());
    auto c = connect_to(proxy.outbound_port());
    if (!c) return r;
    c.set_timeout(std::chrono::seconds(5));
    c.send_all(v.request);
    // No half-close: a request the proxy waits on must be answered, not ended by our FIN.
    auto answer = c.read_until_eof();
    r.status = status_of(answer.data);
    c.reset();
    proxy.wait_idle();
  }  // the origin's connection threads are joined here
  std::lock_guard lock(rec.mutex);
  r.origin = rec.bytes;
  r.connections = rec.connections;
  return r;
}

class conformance : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { vectors_ = new std::vector<vector_case>(load_vectors()); }
  static void TearDownTestSuite() {
    delete vectors_;
    vectors_ = nullptr;
  }
  static std::vector<vector_case>* vectors_;

  void check(const vector_case& v) {
    SCOPED_TRACE(v.cls + ": " + v.name);
    auto r = run_vector(proxy_, v);
    EXPECT_EQ(r.status, v.expect);
    if (v.origin_nothing) {
      EXPECT_EQ(r.connections, 0) << "origin received:\n" << show(r.origin);
    } else {
      EXPECT_EQ(show(r.origin), show(v.origin));
    }
  }

  proxy_under_test proxy_{[](proxy::config& c) { c.header_timeout = std::chrono::seconds(3); }};
};

std::vector<vector_case>* conformance::vectors_ = nullptr;

TEST_F(conformance, table_has_every_class) {
  ASSERT_GE(vectors_->size(), 100u);
  std::set<std::string> classes;
  for (const auto& v : *vectors_) classes.insert(v.cls);
  for (const char* c :
       {"smuggling", "content-length", "chunk-size", "obs-fold", "bare-cr-lf-ctl", "host",
        "absolute-form", "request-line", "version", "hop-by-hop", "trailers"}) {
    EXPECT_TRUE(classes.count(c)) << c;
  }
}

TEST_F(conformance, request_vectors) {
  std::size_t ran = 0;
  for (const auto& v : *vectors_) {
    if (v.sniff) continue;
    check(v);
    ++ran;
  }
  EXPECT_GT(ran, 100u);
}

// Vectors that reach the parser only because the sniff sends every token method (any case),
// leading empty lines, tab-separated request lines and request lines whose method holds a
// separator to it: none of them is relayed as raw TCP.
TEST_F(conformance, request_vectors_past_the_sniff) {
  std::size_t ran = 0;
  for (const auto& v : *vectors_) {
    if (!v.sniff) continue;
    EXPECT_NE(proxy::classify_first_bytes(v.request), proxy::sniff_verdict::tcp) << v.name;
    check(v);
    ++ran;
  }
  EXPECT_EQ(ran, 9u);
}

}  // namespace
}  // namespace devspaces::test
