#include "proxy/h2/ng.hpp"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace devspaces::proxy::h2 {

namespace {

// What nghttp2 hands back to every callback: the handler plus the per-session bookkeeping of
// the header block being decoded (blocks are never interleaved, RFC 9113 §4.3).
struct glue {
  frame_handler* handler = nullptr;
  std::size_t block_bytes = 0;
  std::size_t max_block = 0;
};

glue& g(void* user_data) {
  return *static_cast<glue*>(user_data);
}

int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  auto& x = g(user_data);
  x.block_bytes = 0;
  return x.handler->on_begin_headers(frame->hd.stream_id);
}

int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
              std::size_t namelen, const std::uint8_t* value, std::size_t valuelen, std::uint8_t,
              void* user_data) {
  auto& x = g(user_data);
  // RFC 9113 §6.5.2: each field counts its name, its value and 32 bytes.
  x.block_bytes += namelen + valuelen + 32;
  if (x.block_bytes > x.max_block) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // resets it
  return x.handler->on_field(frame->hd.stream_id, {reinterpret_cast<const char*>(name), namelen},
                             {reinterpret_cast<const char*>(value), valuelen});
}

int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  auto& h = *g(user_data).handler;
  const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
      return h.on_headers_done(frame->hd.stream_id, end);
    case NGHTTP2_DATA:
      return end ? h.on_data_end(frame->hd.stream_id) : 0;
    case NGHTTP2_GOAWAY:
      h.on_goaway(frame->goaway.last_stream_id, frame->goaway.error_code);
      return 0;
    default:
      return 0;
  }
}

int on_data_chunk(nghttp2_session*, std::uint8_t, std::int32_t stream_id, const std::uint8_t* data,
                  std::size_t len, void* user_data) {
  return g(user_data).handler->on_data(stream_id, {data, len});
}

int on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code,
                    void* user_data) {
  return g(user_data).handler->on_stream_close(stream_id, error_code);
}

nghttp2_session_callbacks* callbacks() {
  // Built once per thread; nghttp2 copies them into each session.
  struct holder {
    nghttp2_session_callbacks* cb = nullptr;
    holder() {
      nghttp2_session_callbacks_new(&cb);
      nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
      nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
      nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
      nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
      nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    }
    ~holder() { nghttp2_session_callbacks_del(cb); }
  };
  thread_local holder h;
  return h.cb;
}

struct option_holder {
  nghttp2_option* opt = nullptr;
  option_holder() { nghttp2_option_new(&opt); }
  ~option_holder() { nghttp2_option_del(opt); }
};

}  // namespace

void session_deleter::operator()(nghttp2_session* s) const {
  nghttp2_session_del(s);
  delete static_cast<struct glue*>(glue);
}

session_ptr make_session(role r, frame_handler& handler, const limits& lim) {
  option_holder o;
  nghttp2_option_set_no_auto_window_update(o.opt, 1);
  nghttp2_option_set_max_outbound_ack(o.opt, lim.max_outbound_ack);
  nghttp2_option_set_max_settings(o.opt, lim.max_settings);
  nghttp2_option_set_max_continuations(o.opt, lim.max_continuations);
  nghttp2_option_set_stream_reset_rate_limit(o.opt, lim.reset_burst, lim.reset_rate);
  nghttp2_option_set_max_send_header_block_length(o.opt, 4 * lim.max_header_list);
  if (r == role::client) {
    nghttp2_option_set_max_reserved_remote_streams(o.opt, 0);
    // Until the upstream's SETTINGS arrive, assume what most servers advertise.
    nghttp2_option_set_peer_max_concurrent_streams(o.opt, 100);
  }
  auto* x = new glue{&handler, 0, lim.max_header_list};
  nghttp2_session* raw = nullptr;
  const int rv = r == role::server ? nghttp2_session_server_new2(&raw, callbacks(), x, o.opt)
                                   : nghttp2_session_client_new2(&raw, callbacks(), x, o.opt);
  if (rv != 0) {
    delete x;
    return nullptr;
  }
  session_ptr s(raw, session_deleter{x});
  std::array<nghttp2_settings_entry, 4> iv{{
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
       r == role::server ? lim.max_concurrent_streams : 0u},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<std::uint32_t>(lim.stream_window)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, lim.max_header_list},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  }};
  const std::size_t n = r == role::server ? 3 : 4;
  if (nghttp2_submit_settings(raw, NGHTTP2_FLAG_NONE, iv.data(), n) != 0) return nullptr;
  if (nghttp2_session_set_local_window_size(raw, NGHTTP2_FLAG_NONE, 0, lim.connection_window) !=
      0) {
    return nullptr;
  }
  return s;
}

void body_queue::append(std::span<const std::uint8_t> data) {
  if (head_ > 0 && head_ >= data_.size() / 2) {
    data_.erase(0, head_);
    head_ = 0;
  }
  data_.append(reinterpret_cast<const char*>(data.data()), data.size());
}

std::size_t body_queue::take(std::uint8_t* out, std::size_t n) {
  n = std::min(n, size());
  std::memcpy(out, data_.data() + head_, n);
  head_ += n;
  if (head_ == data_.size()) {
    data_.clear();
    head_ = 0;
  }
  return n;
}

std::size_t body_queue::clear() {
  const auto n = size();
  std::string().swap(data_);
  head_ = 0;
  return n;
}

nv_list to_nv(const field_list& fields) {
  nv_list nv;
  for (const auto& [n, v] : fields) {
    if (connection_specific(n, v)) continue;
    nv.push_back({reinterpret_cast<std::uint8_t*>(const_cast<char*>(n.data())),
                  reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                  NGHTTP2_NV_FLAG_NONE});
  }
  return nv;
}

bool connection_specific(std::string_view name, std::string_view value) {
  if (name == "te") return value != "trailers";
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade" || name == "http2-settings";
}

std::string_view find_field(const field_list& fields, std::string_view name) {
  for (const auto& [n, v] : fields) {
    if (n == name) return v;
  }
  return {};
}

}  // namespace devspaces::proxy::h2
