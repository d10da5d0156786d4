#pragma once

// What the two HTTP/2 fuzz targets share: a frame_handler that behaves like the proxy's (it
// answers request heads, consumes DATA as a relay would, forgets closed streams) and checks the
// limits the proxy relies on.

#include <cstdlib>
#include <map>
#include <string>

#include "proxy/h2/ng.hpp"

namespace devspaces::fuzz {

using namespace devspaces::proxy::h2;

inline void check(bool ok) {
  if (!ok) std::abort();
}

class fuzz_handler : public frame_handler {
 public:
  explicit fuzz_handler(const limits& lim, bool server) : lim_(lim), server_(server) {}
  nghttp2_session* s = nullptr;

  int on_begin_headers(std::int32_t id) override {
    block_ = 0;
    check(id > 0);
    if (streams_.size() < 4096) streams_[id];
    return 0;
  }
  int on_field(std::int32_t id, std::string_view name, std::string_view value) override {
    block_ += name.size() + value.size() + 32;
    check(block_ <= lim_.max_header_list);  // the glue stops a block at the limit
    auto it = streams_.find(id);
    if (it != streams_.end() && it->second.size() < 256) it->second.emplace_back(name, value);
    return 0;
  }
  int on_headers_done(std::int32_t id, bool) override {
    if (server_ && answered_.insert_or_assign(id, true).second) {
      const field_list out{{":status", "200"}, {"content-type", "text/plain"}};
      const auto nv = to_nv(out);
      nghttp2_submit_response(s, id, nv.data(), nv.size(), nullptr);
    }
    return 0;
  }
  int on_data(std::int32_t id, std::span<const std::uint8_t> data) override {
    check(data.size() <= lim_.max_frame_size);
    nghttp2_session_consume(s, id, data.size());  // the other side took it
    return 0;
  }
  int on_data_end(std::int32_t) override { return 0; }
  int on_stream_close(std::int32_t id, std::uint32_t) override {
    streams_.erase(id);
    answered_.erase(id);
    return 0;
  }
  void on_goaway(std::int32_t, std::uint32_t) override {}

 private:
  const limits& lim_;
  bool server_;
  std::size_t block_ = 0;
  std::map<std::int32_t, field_list> streams_;
  std::map<std::int32_t, bool> answered_;
};

/// Feeds `in` in pieces (sizes from `split`), draining the session's output after each; the
/// output per round stays bounded by what the input can provoke.
inline void drive(nghttp2_session* s, const std::uint8_t* in, std::size_t size, std::size_t split) {
  std::size_t pos = 0;
  while (pos < size) {
    const std::size_t n = std::min(size - pos, split == 0 ? size : split);
    const auto rv = nghttp2_session_mem_recv(s, in + pos, n);
    pos += n;
    for (int i = 0; i < 10000; ++i) {
      const std::uint8_t* p = nullptr;
      const auto w = nghttp2_session_mem_send(s, &p);
      if (w <= 0) break;
    }
    if (rv < 0) return;
    if (nghttp2_session_want_read(s) == 0) return;
  }
}

}  // namespace devspaces::fuzz
