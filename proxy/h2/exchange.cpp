#include "proxy/h2/exchange.hpp"

// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <nghttp2/nghttp2.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

#include "proxy/config.hpp"
#include "proxy/h2/log.hpp"
#include "proxy/h2/upstream.hpp"
#include "proxy/http/route_step.hpp"
#include "proxy/io/socket_util.hpp"
#include "proxy/trace/hub.hpp"

namespace devspaces::proxy::h2 {

namespace asio = boost::asio;
using asio::ip::tcp;
using clock = std::chrono::steady_clock;

namespace {

ssize_t read_request_cb(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                        std::uint32_t* flags, nghttp2_data_source* source, void*) {
  return static_cast<exchange*>(source->ptr)->pull_request(buf, length, flags);
}

ssize_t read_response_cb(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                         std::uint32_t* flags, nghttp2_data_source* source, void*) {
  return static_cast<exchange*>(source->ptr)->pull_response(buf, length, flags);
}

// Request body bytes kept for sending again when the upstream refuses the stream.
constexpr std::size_t max_replay_bytes = 64 * 1024;

bool is_grpc(std::string_view content_type) {
  return content_type.starts_with("application/grpc");
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The fields of a header block as the trace record shows them: without the pseudo-fields.
std::vector<field_view> regular_fields(const field_list& fields) {
  std::vector<field_view> out;
  out.reserve(fields.size());
  for (const auto& [n, v] : fields) {
    if (!n.starts_with(':')) out.emplace_back(n, v);
  }
  return out;
}

std::span<const char> as_chars(std::span<const std::uint8_t> data) {
  return {reinterpret_cast<const char*>(data.data()), data.size()};
}

}  // namespace

std::int32_t submit_request(nghttp2_session* s, const field_list& fields, exchange* body) {
  const auto nv = to_nv(fields);
  nghttp2_data_provider prd{};
  prd.source.ptr = body;
  prd.read_callback = read_request_cb;
  return nghttp2_submit_request(s, nullptr, nv.data(), nv.size(), body ? &prd : nullptr, nullptr);
}

exchange::exchange(client_link& client, std::int32_t stream_id)
    : client_(&client),
      ctx_(client.context()),
      id_(stream_id),
      rec_(ctx_.services ? ctx_.services->traces : nullptr,
           ctx_.services ? ctx_.services->cfg->trace_body_bytes : 0) {}

exchange::~exchange() = default;

// ---- client side

void exchange::on_request_field(std::string_view name, std::string_view value) {
  auto& list = head_done_ ? request_trailers_ : request_;
  list.emplace_back(name, value);
}

void exchange::on_request_head(bool end_stream) {
  head_done_ = true;
  request_end_ = end_stream;
  method_idx_ = method_index(find_field(request_, ":method"));
  begin_record();
  asio::co_spawn(client_->executor(), forward(shared_from_this()), asio::detached);
}

void exchange::on_request_data(std::span<const std::uint8_t> data) {
  rec_.on_body(trace::message_side::request, as_chars(data));
  if (discarding_ || !client_open()) {
    if (client_open()) {
      nghttp2_session_consume(client_->client_session(), id_, data.size());
      client_->client_kick();
    }
    return;
  }
  request_body_.append(data);
  if (up_ && up_id_ > 0 && !up_closed_) {
    nghttp2_session_resume_data(up_->ng(), up_id_);
    up_->kick();
  }
}

void exchange::on_request_end() {
  request_end_ = true;
  if (up_ && up_id_ > 0 && !up_closed_) {
    nghttp2_session_resume_data(up_->ng(), up_id_);
    up_->kick();
  }
}

void exchange::discard_request() {
  discarding_ = true;
  const auto n = client_credit(request_body_.clear());
  if (n > 0 && client_open()) {
    nghttp2_session_consume(client_->client_session(), id_, n);
    client_->client_kick();
  }
}

void exchange::on_client_closed(std::uint32_t code) {
  if (client_closed_) return;
  const bool complete = response_sent_end_;
  // The upstream stream is still going: pass the reset on (RFC 9113 §8.1: a response that
  // ended before the request did also ends the request).
  if (up_ && up_id_ > 0 && !up_closed_ && !(request_sent_end_ && response_end_)) {
    nghttp2_submit_rst_stream(up_->ng(), NGHTTP2_FLAG_NONE, up_id_,
                              code == NGHTTP2_NO_ERROR ? std::uint32_t{NGHTTP2_CANCEL} : code);
    up_->kick();
  }
  if (up_ && up_id_ > 0 && !abandoned_) {
    const auto n = response_body_.clear();
    if (n > 0) {
      nghttp2_session_consume(up_->ng(), up_id_, n);
      up_->kick();
    }
  }
  const auto pending = client_credit(request_body_.clear());
  if (pending > 0 && client_ != nullptr)
    nghttp2_session_consume(client_->client_session(), id_, pending);
  client_closed_ = true;
  if (!complete && error_ == nullptr) error_ = "client_reset";
  finish(error_);
}

void exchange::detach_client() {
  on_client_closed(NGHTTP2_CANCEL);
  client_ = nullptr;
}

// ---- routing and the upstream

asio::awaitable<void> exchange::forward(std::shared_ptr<exchange> self) {
  co_await asio::this_coro::throw_if_cancelled(false);
  tcp::endpoint target = self->ctx_.original_dst;
  const bool routed = co_await self->route(target);
  if (!routed || !self->client_open()) co_return;
  if (self->rec_.active()) self->rec_.on_upstream(io::format_endpoint(target).view());
  self->target_ = target;
  co_await self->connect_and_submit(nullptr);
}

asio::awaitable<void> exchange::retry(std::shared_ptr<exchange> self,
                                      std::shared_ptr<upstream_conn> refused) {
  co_await asio::this_coro::throw_if_cancelled(false);
  co_await self->connect_and_submit(refused.get());
}

asio::awaitable<void> exchange::connect_and_submit(const upstream_conn* avoid) {
  auto self = shared_from_this();
  acquire_failure why;
  auto up = co_await acquire_upstream(ctx_, target_, why, avoid);
  if (!client_open()) co_return;
  if (!up) {
    switch (why.reason) {
      case connect_failure::timeout:
        answer_error(504, "gateway timeout: upstream connect timed out", "upstream_timeout");
        break;
      case connect_failure::refused:
        answer_error(502, "bad gateway: upstream refused the connection",
                     "upstream_connect_refused");
        break;
      case connect_failure::unreachable:
        answer_error(502, "bad gateway: upstream unreachable", "upstream_unreachable");
        break;
      default:
        answer_error(502, "bad gateway: upstream connect failed", "upstream_connect_error");
        break;
    }
    co_return;
  }
  submit_upstream(up);
}

bool exchange::can_retry(std::uint32_t code) const {
  // RFC 9113 §8.7: a stream reset with REFUSED_STREAM was not processed, so any request may be
  // sent again. Once, and only while nothing of the response went to the client and the body
  // sent so far is still at hand.
  return code == NGHTTP2_REFUSED_STREAM && !retried_ && replayable_ && !response_head_done_ &&
         !response_head_sent_ && client_open() && !discarding_;
}

void exchange::rewind_request() {
  std::string pending(request_body_.size(), '\0');
  const auto n =
      request_body_.take(reinterpret_cast<std::uint8_t*>(pending.data()), pending.size());
  request_body_.append(
      {reinterpret_cast<const std::uint8_t*>(sent_body_.data()), sent_body_.size()});
  request_body_.append({reinterpret_cast<const std::uint8_t*>(pending.data()), n});
  replayed_pending_ += sent_body_.size();
  std::string().swap(sent_body_);
  request_sent_end_ = false;
  response_.clear();
}

std::size_t exchange::client_credit(std::size_t n) {
  const auto replayed = std::min(n, replayed_pending_);
  replayed_pending_ -= replayed;
  return n - replayed;
}

asio::awaitable<bool> exchange::route(tcp::endpoint& target) {
  auto* router = ctx_.services ? ctx_.services->router : nullptr;
  if (router == nullptr) co_return true;
  const std::string header = lowercase(ctx_.services->cfg->route_header);
  std::string_view host = find_field(request_, ":authority");
  if (host.empty()) host = find_field(request_, "host");
  std::vector<field_view> fields;
  fields.reserve(request_.size());
  for (const auto& [n, v] : request_) fields.emplace_back(n, v);
  // `host` and `fields` point into request_, which nothing changes while this waits.
  auto rr = co_await http::route_request(router, ctx_.dir, header, host, fields, ctx_.original_dst);
  if (!client_open()) co_return false;
  std::optional<field_view> added;
  if (rr.add_field) {
    request_.emplace_back(rr.add_field->first, rr.add_field->second);
    added.emplace(request_.back().first, request_.back().second);
  }
  target = rr.target;
  rec_.on_route(rr.route_as, rr.source, std::move(rr.decision), added, std::move(rr.trace_id));
  co_return true;
}

void exchange::submit_upstream(const std::shared_ptr<upstream_conn>& up) {
  field_list out;
  out.reserve(request_.size());
  for (const auto& [n, v] : request_) {
    if (!connection_specific(n, v)) out.emplace_back(n, v);
  }
  const bool with_body = !request_end_ || !request_body_.empty() || !request_trailers_.empty();
  up_ = up;
  const auto id = up->submit(shared_from_this(), out, with_body);
  if (id < 0) {
    up_.reset();
    answer_error(502, "bad gateway: upstream stream refused", "upstream_reset");
    return;
  }
  up_id_ = id;
  if (!with_body) request_sent_end_ = true;
  log()->debug("[C{}] h2 stream {} -> upstream stream {}", ctx_.id, id_, id);
}

std::ptrdiff_t exchange::pull_request(std::uint8_t* buf, std::size_t length, std::uint32_t* flags) {
  const auto n = request_body_.take(buf, length);
  const auto credit = client_credit(n);
  if (credit > 0 && client_open()) {
    nghttp2_session_consume(client_->client_session(), id_, credit);
    client_->client_kick();
  }
  if (n > 0 && replayable_ && !retried_ && !response_head_done_) {
    if (sent_body_.size() + n <= max_replay_bytes) {
      sent_body_.append(reinterpret_cast<const char*>(buf), n);
    } else {
      replayable_ = false;
      std::string().swap(sent_body_);
    }
  }
  if (request_body_.empty()) {
    if (request_end_) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!request_trailers_.empty()) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        const auto nv = to_nv(request_trailers_);
        nghttp2_submit_trailer(up_->ng(), up_id_, nv.data(), nv.size());
      }
      request_sent_end_ = true;
    } else if (n == 0) {
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<std::ptrdiff_t>(n);
}

// ---- upstream side

void exchange::on_response_field(std::string_view name, std::string_view value) {
  if (abandoned_) return;
  auto& list = response_head_done_ ? response_trailers_ : response_;
  list.emplace_back(name, value);
}

void exchange::on_response_head(bool end_stream) {
  if (abandoned_) return;
  if (response_head_done_) {  // trailers (nghttp2 checks they end the stream)
    response_end_ = true;
    if (rec_.active())
      rec_.on_trailers(trace::message_side::response, regular_fields(response_trailers_));
    if (client_open() && response_head_sent_) {
      nghttp2_session_resume_data(client_->client_session(), id_);
      client_->client_kick();
    }
    return;
  }
  const auto status_text = find_field(response_, ":status");
  int status = 0;
  for (char c : status_text) status = status * 10 + (c - '0');
  if (status >= 100 && status < 200) {  // interim responses are not passed on
    response_.clear();
    return;
  }
  status_ = status;
  response_head_done_ = true;
  response_end_ = end_stream;
  std::string().swap(sent_body_);  // the upstream took the stream: no replay from here on
  replayable_ = false;
  if (rec_.active()) rec_.on_response_head({status, {}, "2", regular_fields(response_)});
  if (!client_open()) return;
  field_list out;
  out.reserve(response_.size());
  for (const auto& [n, v] : response_) {
    if (!connection_specific(n, v)) out.emplace_back(n, v);
  }
  const auto nv = to_nv(out);
  nghttp2_data_provider prd{};
  prd.source.ptr = this;
  prd.read_callback = read_response_cb;
  const int rv = nghttp2_submit_response(client_->client_session(), id_, nv.data(), nv.size(),
                                         end_stream ? nullptr : &prd);
  if (rv != 0) {
    nghttp2_submit_rst_stream(client_->client_session(), NGHTTP2_FLAG_NONE, id_,
                              NGHTTP2_INTERNAL_ERROR);
  }
  response_head_sent_ = true;
  if (end_stream) response_sent_end_ = true;
  client_->client_kick();
}

void exchange::on_response_data(std::span<const std::uint8_t> data) {
  if (!abandoned_) rec_.on_body(trace::message_side::response, as_chars(data));
  if (!client_open() || abandoned_) {
    nghttp2_session_consume(up_->ng(), up_id_, data.size());
    up_->kick();
    return;
  }
  response_body_.append(data);
  nghttp2_session_resume_data(client_->client_session(), id_);
  client_->client_kick();
}

void exchange::on_response_end() {
  if (abandoned_) return;
  response_end_ = true;
  if (client_open() && response_head_sent_) {
    nghttp2_session_resume_data(client_->client_session(), id_);
    client_->client_kick();
  }
}

void exchange::on_upstream_closed(std::uint32_t code) {
  if (up_closed_) return;
  up_closed_ = true;
  if (!client_open() || abandoned_) return;
  if (can_retry(code)) {
    log()->debug("[C{}] h2 stream {}: upstream refused the stream; retrying on another connection",
                 ctx_.id, id_);
    retried_ = true;
    rewind_request();
    auto refused = std::move(up_);
    up_id_ = 0;
    up_closed_ = false;
    asio::co_spawn(client_->executor(), retry(shared_from_this(), std::move(refused)),
                   asio::detached);
    return;
  }
  if (!response_head_done_) {
    log()->debug("[C{}] h2 stream {}: upstream stream closed before a response (code {})", ctx_.id,
                 id_, code);
    answer_error(502, "bad gateway: upstream reset the stream", "upstream_reset");
    return;
  }
  if (!request_sent_end_) discard_request();
  if (!response_end_) {
    error_ = "upstream_reset";
    nghttp2_submit_rst_stream(
        client_->client_session(), NGHTTP2_FLAG_NONE, id_,
        code == NGHTTP2_NO_ERROR ? std::uint32_t{NGHTTP2_INTERNAL_ERROR} : code);
    client_->client_kick();
  }
}

std::ptrdiff_t exchange::pull_response(std::uint8_t* buf, std::size_t length,
                                       std::uint32_t* flags) {
  const auto n = response_body_.take(buf, length);
  if (n > 0 && up_ && up_id_ > 0 && !abandoned_) {
    nghttp2_session_consume(up_->ng(), up_id_, n);
    up_->kick();
  }
  if (response_body_.empty()) {
    if (response_end_) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!response_trailers_.empty() && client_open()) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        const auto nv = to_nv(response_trailers_);
        nghttp2_submit_trailer(client_->client_session(), id_, nv.data(), nv.size());
      }
      response_sent_end_ = true;
    } else if (n == 0) {
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<std::ptrdiff_t>(n);
}

// ---- answers of the proxy's own

void exchange::answer_error(int status, std::string_view reason, const char* code) {
  error_ = code;
  discard_request();
  if (up_ && up_id_ > 0 && !up_closed_) {
    nghttp2_submit_rst_stream(up_->ng(), NGHTTP2_FLAG_NONE, up_id_, NGHTTP2_CANCEL);
    up_->kick();
  }
  abandoned_ = true;
  response_trailers_.clear();
  if (!client_open() || response_head_sent_) return;
  const std::string message = "devspaces-proxy: " + std::string(reason);
  field_list out;
  if (is_grpc(find_field(request_, "content-type"))) {
    // gRPC: a trailers-only response, UNAVAILABLE.
    out = {{":status", "200"},
           {"content-type", "application/grpc"},
           {"grpc-status", "14"},
           {"grpc-message", message}};
    status_ = 200;
    response_end_ = true;
  } else {
    status_ = status;
    response_body_.clear();
    const std::string body = message + "\n";
    response_body_.append({reinterpret_cast<const std::uint8_t*>(body.data()), body.size()});
    out = {{":status", std::to_string(status)},
           {"content-type", "text/plain; charset=utf-8"},
           {"content-length", std::to_string(body.size())}};
    response_end_ = true;
  }
  response_head_done_ = true;
  if (rec_.active()) {
    rec_.on_response_head({status_, {}, "2", regular_fields(out)});
    if (!response_body_.empty()) {
      rec_.on_body(trace::message_side::response, std::span<const char>(message));
      rec_.on_body(trace::message_side::response, std::span<const char>("\n", 1));
    }
  }
  const auto nv = to_nv(out);
  nghttp2_data_provider prd{};
  prd.source.ptr = this;
  prd.read_callback = read_response_cb;
  const bool has_body = !response_body_.empty();
  nghttp2_submit_response(client_->client_session(), id_, nv.data(), nv.size(),
                          has_body ? &prd : nullptr);
  response_head_sent_ = true;
  if (!has_body) response_sent_end_ = true;
  client_->client_kick();
}

// ---- trace record and metrics

void exchange::begin_record() {
  if (!rec_.wanted()) return;
  const auto& cfg = *ctx_.services->cfg;
  rec_.begin({ctx_.dir == direction::outbound, cfg.pod_name, cfg.space,
              io::format_endpoint(ctx_.client).view(),
              io::format_endpoint(ctx_.original_dst).view()});
  rec_.on_protocol("h2", id_);
  std::string_view host = find_field(request_, ":authority");
  if (host.empty()) host = find_field(request_, "host");
  const auto fields = regular_fields(request_);
  rec_.on_request_head(
      {find_field(request_, ":method"), find_field(request_, ":path"), "2", host, fields});
}

void exchange::finish(const char* error) {
  if (finished_) return;
  finished_ = true;
  const auto dur = clock::now() - start_;
  auto* metrics = ctx_.services ? ctx_.services->metrics : nullptr;
  if (metrics != nullptr) {
    const auto cls =
        error != nullptr && status_ == 0 ? code_class::error : class_of_status(status_);
    metrics->http_requests(ctx_.dir, method_idx_, cls).Increment();
    metrics->http_duration(ctx_.dir).Observe(std::chrono::duration<double>(dur).count());
  }
  rec_.finish(std::chrono::duration_cast<std::chrono::microseconds>(dur), error);
}

}  // namespace devspaces::proxy::h2
