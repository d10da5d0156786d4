// libFuzzer target over the proxy's upstream HTTP/2 session: the client-side nghttp2 session
// made with the proxy's options (proxy/h2/ng.cpp), three requests submitted (one with a body
// pulled from a body_queue as the relay does), then the input fed as the upstream's frames.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/fuzz/h2_fuzz_common.hpp"

namespace {

devspaces::proxy::h2::body_queue* body_of(nghttp2_data_source* src) {
  return static_cast<devspaces::proxy::h2::body_queue*>(src->ptr);
}

ssize_t pull(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t len,
             std::uint32_t* flags, nghttp2_data_source* src, void*) {
  const auto n = body_of(src)->take(buf, len);
  if (body_of(src)->empty()) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace devspaces::fuzz;
  if (size < 1) return 0;
  limits lim;
  lim.max_header_list = 4096;
  fuzz_handler h(lim, false);
  auto s = make_session(role::client, h, lim);
  check(s != nullptr);
  h.s = s.get();
  body_queue body;
  const std::string payload(100000, 'b');
  body.append({reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()});
  const field_list req{{":method", "POST"},
                       {":scheme", "http"},
                       {":authority", "svc"},
                       {":path", "/x"},
                       {"content-type", "application/grpc"}};
  const auto nv = to_nv(req);
  nghttp2_data_provider prd{};
  prd.source.ptr = &body;
  prd.read_callback = pull;
  check(nghttp2_submit_request(s.get(), nullptr, nv.data(), nv.size(), &prd, nullptr) > 0);
  check(nghttp2_submit_request(s.get(), nullptr, nv.data(), nv.size(), nullptr, nullptr) > 0);
  check(nghttp2_submit_request(s.get(), nullptr, nv.data(), nv.size(), nullptr, nullptr) > 0);
  drive(s.get(), data + 1, size - 1, data[0] * 7u + 1);
  return 0;
}
