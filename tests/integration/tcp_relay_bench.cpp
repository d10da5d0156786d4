// Bulk throughput of the raw relay, in-process on loopback: N bytes from a sender through the
// proxy server (original destination injected) to a sink, against the same transfer direct.
// A measurement, not a test; built and run by tests/integration/tcp_bench.sh:
//   tcp_relay_bench <GiB> <splice_after: 0 | bytes | never> [runs]

#include <cstdlib>
#include <iostream>

#include "tests/integration/tcp_harness.hpp"

using namespace devspaces::test;
using clock_type = std::chrono::steady_clock;

namespace {

double transfer(std::uint16_t port, std::size_t total) {
  std::vector<char> buf(1 << 20, 'x');
  auto c = connect_to(port);
  c.set_timeout(std::chrono::seconds(120));
  auto start = clock_type::now();
  for (std::size_t sent = 0; sent < total; sent += buf.size())
    if (!c.send_all(std::string_view(buf.data(), buf.size()))) return 0;
  c.shutdown_send();
  c.read_until_eof();  // the sink closes after it counted everything
  std::chrono::duration<double> s = clock_type::now() - start;
  return static_cast<double>(total) * 8 / s.count() / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: tcp_relay_bench <GiB> <splice_after|never> [runs]\n";
    return 2;
  }
  std::size_t total = static_cast<std::size_t>(std::atof(argv[1]) * (1 << 30));
  std::string mode = argv[2];
  std::size_t splice_after = mode == "never" ? SIZE_MAX : std::stoull(mode);
  int runs = argc > 3 ? std::atoi(argv[3]) : 3;
  upstream_server sink([](fd_socket& s, const sockaddr_in&) {
    std::vector<char> buf(1 << 20);
    while (::recv(s.fd(), buf.data(), buf.size(), 0) > 0) {
    }
  });
  proxy_under_test proxy([](devspaces::proxy::config& c) { c.workers = 1; }, splice_after);
  proxy.set_target(sink.endpoint());
  for (int i = 0; i < runs; ++i) {
    double direct = transfer(sink.port(), total);
    double relayed = transfer(proxy.outbound_port(), total);
    std::cout << "run " << i << " splice_after=" << mode << " direct " << direct
              << " Gbit/s, through proxy " << relayed << " Gbit/s\n";
  }
  return 0;
}
