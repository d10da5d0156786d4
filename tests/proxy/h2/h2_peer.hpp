#pragma once

// A blocking HTTP/2 peer for tests, built on nghttp2: a client driving the proxy's client side
// or a server standing in for an upstream. Everything runs on the test thread; pump() moves
// bytes both ways once.

#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace devspaces::test::h2 {

using fields = std::vector<std::pair<std::string, std::string>>;

/// What one peer saw and sends on one stream.
struct stream_state {
  fields head;      ///< request or response head (pseudo-fields included)
  fields trailers;  ///< a later header block
  std::string body;
  bool end = false;  ///< the other side ended its half
  bool closed = false;
  std::uint32_t close_code = 0;
  // Outgoing.
  std::string out_body;
  std::size_t out_pos = 0;
  bool out_end = true;  ///< end the stream once out_body is sent (else wait for more)
  fields out_trailers;
};

inline std::string field(const fields& f, const std::string& name) {
  for (const auto& [n, v] : f) {
    if (n == name) return v;
  }
  return {};
}

class peer {
 public:
  enum class kind { client, server };

  /// `auto_window`: give the window back at once (false: only through consume()).
  peer(kind k, int fd, bool auto_window = true) : fd_(fd), kind_(k) {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, auto_window ? 0 : 1);
    if (k == kind::client) {
      nghttp2_session_client_new2(&ng_, cb, this, opt);
    } else {
      nghttp2_session_server_new2(&ng_, cb, this, opt);
    }
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000};
    nghttp2_submit_settings(ng_, NGHTTP2_FLAG_NONE, &iv, 1);
  }
  ~peer() {
    nghttp2_session_del(ng_);
    if (fd_ >= 0) ::close(fd_);
  }
  peer(const peer&) = delete;
  peer& operator=(const peer&) = delete;

  nghttp2_session* ng() { return ng_; }
  int fd() const { return fd_; }
  std::map<std::int32_t, stream_state> streams;
  bool goaway = false;
  std::int32_t goaway_last = -1;
  bool eof = false;
  std::uint64_t data_sent = 0;  ///< DATA payload bytes serialised so far
  /// Server: called when a request ended (END_STREAM). Default: no answer.
  std::function<void(std::int32_t, stream_state&)> on_request;

  /// Client: submits a request; `body` empty and no trailers → no DATA.
  std::int32_t request(const fields& head, std::string body = {}, fields trailers = {},
                       bool end = true) {
    auto nv = to_nv(head);
    const bool with_data = !body.empty() || !trailers.empty() || !end;
    nghttp2_data_provider prd{};
    prd.read_callback = read_cb;
    const auto id = nghttp2_submit_request(ng_, nullptr, nv.data(), nv.size(),
                                           with_data ? &prd : nullptr, this);
    auto& s = streams[id];
    s.out_body = std::move(body);
    s.out_trailers = std::move(trailers);
    s.out_end = end;
    return id;
  }
  /// Server: answers stream `id`.
  void respond(std::int32_t id, const fields& head, std::string body = {}, fields trailers = {},
               bool end = true) {
    auto nv = to_nv(head);
    auto& s = streams[id];
    s.out_body = std::move(body);
    s.out_trailers = std::move(trailers);
    s.out_end = end;
    const bool with_data = !s.out_body.empty() || !s.out_trailers.empty() || !end;
    nghttp2_data_provider prd{};
    prd.read_callback = read_cb;
    nghttp2_submit_response(ng_, id, nv.data(), nv.size(), with_data ? &prd : nullptr);
  }
  /// Adds body bytes to a stream that is still sending.
  void send_more(std::int32_t id, const std::string& more, bool end) {
    auto& s = streams[id];
    s.out_body += more;
    s.out_end = end;
    nghttp2_session_resume_data(ng_, id);
  }
  void reset(std::int32_t id, std::uint32_t code = NGHTTP2_CANCEL) {
    nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, id, code);
  }
  void consume(std::int32_t id, std::size_t n) { nghttp2_session_consume(ng_, id, n); }

  /// Sends what is pending, then reads what arrives within `wait`.
  void pump(std::chrono::milliseconds wait = std::chrono::milliseconds(5)) {
    flush();
    if (fd_ < 0 || eof) return;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return;
    char buf[65536];
    const auto n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) {
      eof = true;
      return;
    }
    nghttp2_session_mem_recv(ng_, reinterpret_cast<const std::uint8_t*>(buf),
                             static_cast<std::size_t>(n));
    flush();
  }

  /// Sends raw bytes (hostile input).
  void send_raw(const std::string& bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
      const auto n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<std::size_t>(n);
    }
  }

  void flush() {
    for (;;) {
      const std::uint8_t* p = nullptr;
      const auto n = nghttp2_session_mem_send(ng_, &p);
      if (n <= 0) return;
      std::size_t off = 0;
      while (off < static_cast<std::size_t>(n)) {
        pollfd pw{fd_, POLLOUT, 0};
        if (::poll(&pw, 1, 2000) <= 0) return;
        const auto w = ::send(fd_, p + off, static_cast<std::size_t>(n) - off, MSG_NOSIGNAL);
        if (w <= 0) return;
        off += static_cast<std::size_t>(w);
      }
    }
  }

 private:
  static std::vector<nghttp2_nv> to_nv(const fields& f) {
    std::vector<nghttp2_nv> nv;
    for (const auto& [n, v] : f) {
      nv.push_back({reinterpret_cast<std::uint8_t*>(const_cast<char*>(n.data())),
                    reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), n.size(),
                    v.size(), NGHTTP2_NV_FLAG_NONE});
    }
    return nv;
  }
  static peer& self(void* u) { return *static_cast<peer*>(u); }
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* f, void* u) {
    auto& s = self(u).streams[f->hd.stream_id];
    (void)s;
    return 0;
  }
  static int on_header(nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* n,
                       std::size_t nl, const std::uint8_t* v, std::size_t vl, std::uint8_t,
                       void* u) {
    auto& s = self(u).streams[f->hd.stream_id];
    auto& list = f->headers.cat == NGHTTP2_HCAT_HEADERS ? s.trailers : s.head;
    list.emplace_back(std::string(reinterpret_cast<const char*>(n), nl),
                      std::string(reinterpret_cast<const char*>(v), vl));
    return 0;
  }
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* u) {
    auto& p = self(u);
    if (f->hd.type == NGHTTP2_GOAWAY) {
      p.goaway = true;
      p.goaway_last = f->goaway.last_stream_id;
    }
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
      auto& s = p.streams[f->hd.stream_id];
      s.end = true;
      if (p.kind_ == kind::server && p.on_request) p.on_request(f->hd.stream_id, s);
    }
    return 0;
  }
  static int on_data(nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* d,
                     std::size_t n, void* u) {
    self(u).streams[id].body.append(reinterpret_cast<const char*>(d), n);
    return 0;
  }
  static int on_close(nghttp2_session*, std::int32_t id, std::uint32_t code, void* u) {
    auto& s = self(u).streams[id];
    s.closed = true;
    s.close_code = code;
    return 0;
  }
  static ssize_t read_cb(nghttp2_session* ng, std::int32_t id, std::uint8_t* buf, std::size_t len,
                         std::uint32_t* flags, nghttp2_data_source*, void* u) {
    auto& p = self(u);
    auto& s = p.streams[id];
    const auto n = std::min(len, s.out_body.size() - s.out_pos);
    std::memcpy(buf, s.out_body.data() + s.out_pos, n);
    s.out_pos += n;
    p.data_sent += n;
    if (s.out_pos == s.out_body.size()) {
      if (!s.out_end) {
        if (n == 0) return NGHTTP2_ERR_DEFERRED;
        return static_cast<ssize_t>(n);
      }
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!s.out_trailers.empty()) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        auto nv = to_nv(s.out_trailers);
        nghttp2_submit_trailer(ng, id, nv.data(), nv.size());
      }
    }
    return static_cast<ssize_t>(n);
  }

  nghttp2_session* ng_ = nullptr;
  int fd_;
  kind kind_;
};

}  // namespace devspaces::test::h2
