// libFuzzer target over the proxy's client-facing HTTP/2 session: the server-side nghttp2
// session made with the proxy's options and limits (proxy/h2/ng.cpp), fed the client preface
// and then the input as frames, answering each request head and consuming DATA as the relay
// does. Checks that decoded header blocks stay within the limit and DATA within a frame.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/fuzz/h2_fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace devspaces::fuzz;
  if (size < 1) return 0;
  limits lim;
  lim.max_header_list = 4096;  // small, so the fuzzer reaches it
  fuzz_handler h(lim, true);
  auto s = make_session(role::server, h, lim);
  check(s != nullptr);
  h.s = s.get();
  std::string in = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  in.append(reinterpret_cast<const char*>(data) + 1, size - 1);
  drive(s.get(), reinterpret_cast<const std::uint8_t*>(in.data()), in.size(), data[0] * 7u + 1);
  return 0;
}
