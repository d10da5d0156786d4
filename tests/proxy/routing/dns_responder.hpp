#pragma once

// A tiny authoritative DNS responder for tests: UDP on 127.0.0.1:<ephemeral>, on its own
// thread. Answers A/AAAA records with a TTL, NODATA for a known name without that type,
// NXDOMAIN for unknown names; chosen names can be delayed, dropped or answered SERVFAIL.

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace devspaces::test {

/// What the responder knows about one name.
struct dns_record {
  std::optional<boost::asio::ip::address_v4> a;
  std::optional<boost::asio::ip::address_v6> aaaa;
  std::uint32_t ttl = 30;
  std::chrono::milliseconds delay{0};
  bool drop = false;
  bool servfail = false;
};

/// The responder; records are fixed at construction.
class dns_server {
 public:
  /// Starts answering `records` (names without a trailing dot).
  explicit dns_server(std::map<std::string, dns_record> records)
      : records_(std::move(records)),
        socket_(io_,
                boost::asio::ip::udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)) {
    receive();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~dns_server() {
    io_.stop();
    thread_.join();
  }
  /// "127.0.0.1:<port>", for dns_backend_options::servers.
  std::string address() const {
    return "127.0.0.1:" + std::to_string(socket_.local_endpoint().port());
  }
  /// Queries received for `name` (any type).
  int queries(const std::string& name) {
    std::lock_guard lock(mu_);
    return queries_[name];
  }

 private:
  void receive() {
    socket_.async_receive_from(
        boost::asio::buffer(buf_), peer_, [this](boost::system::error_code ec, std::size_t n) {
          if (ec) return;
          handle(std::vector<unsigned char>(buf_.begin(), buf_.begin() + static_cast<long>(n)),
                 peer_);
          receive();
        });
  }

  void handle(std::vector<unsigned char> q, boost::asio::ip::udp::endpoint peer) {
    if (q.size() < 12) return;
    std::size_t pos = 12;
    std::string name;
    while (pos < q.size() && q[pos] != 0) {
      std::size_t len = q[pos];
      if (pos + 1 + len > q.size()) return;
      if (!name.empty()) name += '.';
      name.append(reinterpret_cast<const char*>(&q[pos + 1]), len);
      pos += 1 + len;
    }
    if (pos + 5 > q.size()) return;
    std::uint16_t qtype = static_cast<std::uint16_t>(q[pos + 1] << 8 | q[pos + 2]);
    std::size_t question_end = pos + 5;
    {
      std::lock_guard lock(mu_);
      ++queries_[name];
    }
    std::vector<unsigned char> r(q.begin(), q.begin() + static_cast<long>(question_end));
    r[2] = static_cast<unsigned char>(0x84 | (q[2] & 0x01));  // QR, AA, RD copied
    r[3] = 0x80;                                              // RA, rcode 0
    r[6] = r[7] = r[8] = r[9] = r[10] = r[11] = 0;            // an/ns/ar counts
    auto it = records_.find(name);
    std::chrono::milliseconds delay{0};
    if (it == records_.end()) {
      r[3] |= 3;  // NXDOMAIN
    } else {
      const auto& rec = it->second;
      if (rec.drop) return;
      delay = rec.delay;
      if (rec.servfail) {
        r[3] |= 2;
      } else {
        std::vector<unsigned char> rdata;
        if (qtype == 1 && rec.a) {
          auto b = rec.a->to_bytes();
          rdata.assign(b.begin(), b.end());
        } else if (qtype == 28 && rec.aaaa) {
          auto b = rec.aaaa->to_bytes();
          rdata.assign(b.begin(), b.end());
        }
        if (!rdata.empty()) {
          r[7] = 1;
          unsigned char rr[] = {0xc0,
                                0x0c,
                                0,
                                static_cast<unsigned char>(qtype),
                                0,
                                1,
                                static_cast<unsigned char>(rec.ttl >> 24),
                                static_cast<unsigned char>(rec.ttl >> 16),
                                static_cast<unsigned char>(rec.ttl >> 8),
                                static_cast<unsigned char>(rec.ttl),
                                0,
                                static_cast<unsigned char>(rdata.size())};
          r.insert(r.end(), std::begin(rr), std::end(rr));
          r.insert(r.end(), rdata.begin(), rdata.end());
        }
      }
    }
    auto reply = std::make_shared<std::vector<unsigned char>>(std::move(r));
    if (delay.count() == 0) {
      socket_.send_to(boost::asio::buffer(*reply), peer);
      return;
    }
    auto timer = std::make_shared<boost::asio::steady_timer>(io_, delay);
    timer->async_wait([this, timer, reply, peer](boost::system::error_code ec) {
      if (!ec) socket_.send_to(boost::asio::buffer(*reply), peer);
    });
  }

  std::map<std::string, dns_record> records_;
  boost::asio::io_context io_;
  boost::asio::ip::udp::socket socket_;
  std::array<unsigned char, 512> buf_{};
  boost::asio::ip::udp::endpoint peer_;
  std::mutex mu_;
  std::map<std::string, int> queries_;
  std::thread thread_;
};

/// An A record.
inline dns_record a_record(const char* addr, std::uint32_t ttl = 30) {
  dns_record r;
  r.a = boost::asio::ip::make_address_v4(addr);
  r.ttl = ttl;
  return r;
}

}  // namespace devspaces::test
