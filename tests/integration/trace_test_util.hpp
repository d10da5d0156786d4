#pragma once

#include <poll.h>

#include <cctype>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

namespace devspaces::test {

/// A blocking loopback HTTP client for the trace tests: raw bytes in and out, reads bounded
/// by a deadline (never a fixed sleep).
class raw_http {
 public:
  explicit raw_http(const boost::asio::ip::tcp::endpoint& ep) : sock_(ioc_) {
    sock_.connect(ep);
    sock_.non_blocking(true);
  }

  void send(std::string_view bytes) {
    sock_.non_blocking(false);
    boost::asio::write(sock_, boost::asio::buffer(bytes.data(), bytes.size()));
    sock_.non_blocking(true);
  }

  /// Reads until `done(received)` holds, the peer closes, or `timeout` passes.
  bool read_until(const std::function<bool(const std::string&)>& done,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[65536];
    while (!done(data_)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || closed_) return done(data_);
      pollfd p{sock_.native_handle(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      boost::system::error_code ec;
      const auto n = sock_.read_some(boost::asio::buffer(buf), ec);
      if (ec == boost::asio::error::would_block) continue;
      if (ec) {
        closed_ = true;
        continue;
      }
      data_.append(buf, n);
    }
    return true;
  }

  /// Reads until the peer closes (or timeout); true when it closed.
  bool read_to_close(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    read_until([this](const std::string&) { return closed_; }, timeout);
    return closed_;
  }

  const std::string& data() const { return data_; }
  boost::asio::ip::tcp::socket& socket() { return sock_; }

  /// The response head (up to and without the blank line); empty while incomplete.
  std::string head() const {
    const auto end = data_.find("\r\n\r\n");
    return end == std::string::npos ? std::string() : data_.substr(0, end);
  }

  /// The body received so far; chunk framing removed when the response is chunked.
  std::string body() const {
    const auto end = data_.find("\r\n\r\n");
    if (end == std::string::npos) return {};
    std::string raw = data_.substr(end + 4);
    std::string h = head();
    for (auto& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (h.find("transfer-encoding: chunked") == std::string::npos) return raw;
    std::string out;
    std::size_t pos = 0;
    for (;;) {
      const auto crlf = raw.find("\r\n", pos);
      if (crlf == std::string::npos) break;
      const auto size = std::stoul(raw.substr(pos, crlf - pos), nullptr, 16);
      if (size == 0 || crlf + 2 + size > raw.size()) break;
      out.append(raw, crlf + 2, size);
      pos = crlf + 2 + size + 2;
      if (pos > raw.size()) break;
    }
    return out;
  }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket sock_;
  std::string data_;
  bool closed_ = false;
};

/// Non-empty lines of `text`.
inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    if (nl > pos) out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

/// Occurrences of `needle` in `text`.
inline std::size_t count_of(const std::string& text, std::string_view needle) {
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

}  // namespace devspaces::test
