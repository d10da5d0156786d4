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
           ctx_.services ? ctx_.services->cfg->trace_body_bytes : 0) {
  request_.reserve(12);
  response_.reserve(8);
}

exchange::~exchange() = default;

// ---- client side

void exchange::on_request_field(std::string_view name, std::string_view value) {
  auto& list = st_.request_head_done() ? request_trailers_ : request_;
  list.emplace_back(name, value);
}

void exchange::on_request_head(bool end_stream) {
  st_.request_head(end_stream);
  method_idx_ = method_index(find_field(request_, ":method"));
  begin_record();
  asio::co_spawn(client_->executor(), forward(shared_from_this()), asio::detached);
}

void exchange::on_request_data(std::span<const std::uint8_t> data) {
  rec_.on_body(trace::message_side::request, as_chars(data));
  if (!st_.forwards_request() || !client_open()) {
    give_back_request(data.size());
    return;
  }
  request_body_.append(data);
  resume_upstream();
}

void exchange::on_request_end() {
  st_.request_ended();
  resume_upstream();
}

void exchange::on_client_closed(std::uint32_t code) {
  if (!st_.client_open()) return;
  // The upstream stream is still going: pass the reset on (RFC 9113 §8.1: a response that
  // ended before the request did also ends the request).
  if (st_.upstream == upstream_state::open && !st_.upstream_complete())
    reset_upstream(code == NGHTTP2_NO_ERROR ? std::uint32_t{NGHTTP2_CANCEL} : code);
  if (!st_.answered()) give_back_response(response_body_.clear());
  give_back_request(client_credit(request_body_.clear()));
  st_.client_closed();
  finish();
}

void exchange::detach_client() {
  on_client_closed(NGHTTP2_CANCEL);
  client_ = nullptr;
}

// ---- flow control between the two sessions

void exchange::give_back_request(std::size_t n) {
  if (n == 0 || client_ == nullptr) return;
  nghttp2_session_consume(client_->client_session(), id_, n);
  client_->client_kick();
}

void exchange::give_back_response(std::size_t n) {
  if (n == 0 || !up_ || up_id_ <= 0) return;
  nghttp2_session_consume(up_->ng(), up_id_, n);
  up_->kick();
}

void exchange::resume_upstream() {
  if (st_.upstream != upstream_state::open) return;
  nghttp2_session_resume_data(up_->ng(), up_id_);
  up_->kick();
}

void exchange::resume_client() {
  if (!client_open() || st_.response == response_state::none) return;
  nghttp2_session_resume_data(client_->client_session(), id_);
  client_->client_kick();
}

void exchange::reset_upstream(std::uint32_t code) {
  nghttp2_submit_rst_stream(up_->ng(), NGHTTP2_FLAG_NONE, up_id_, code);
  up_->kick();
}

void exchange::drop_request() {
  st_.drop_request();
  const auto n = client_credit(request_body_.clear());
  if (client_open()) give_back_request(n);
}

std::size_t exchange::client_credit(std::size_t n) {
  const auto replayed = std::min(n, replayed_pending_);
  replayed_pending_ -= replayed;
  return n - replayed;
}

// ---- the steps: route, upstream

asio::awaitable<void> exchange::forward(std::shared_ptr<exchange> self) {
  co_await asio::this_coro::throw_if_cancelled(false);
  auto o = co_await self->route_step();
  if (o.next) o = co_await self->upstream_step(nullptr);
  self->conclude(std::move(o));
}

asio::awaitable<void> exchange::retry(std::shared_ptr<exchange> self,
                                      std::shared_ptr<upstream_conn> refused) {
  co_await asio::this_coro::throw_if_cancelled(false);
  self->conclude(co_await self->upstream_step(refused.get()));
}

asio::awaitable<exchange_outcome> exchange::route_step() {
  target_ = ctx_.original_dst;
  auto* router = ctx_.services ? ctx_.services->router : nullptr;
  if (router == nullptr) co_return exchange_outcome::proceed();
  const std::string header = lowercase(ctx_.services->cfg->route_header);
  std::string_view host = find_field(request_, ":authority");
  if (host.empty()) host = find_field(request_, "host");
  std::vector<field_view> fields;
  fields.reserve(request_.size());
  for (const auto& [n, v] : request_) fields.emplace_back(n, v);
  routing::router::outbound_pending pending;
  auto now =
      http::route_request_now(router, ctx_.dir, header, host, fields, ctx_.original_dst, pending);
  http::route_step_result rr;
  if (now) {
    rr = std::move(*now);
  } else {
    rr = co_await http::finish_route(router, header, ctx_.original_dst, std::move(pending));
    if (!client_open()) co_return exchange_outcome::quiet(exchange_step::route, nullptr);
  }
  std::optional<field_view> added;
  if (rr.add_field) {
    request_.emplace_back(rr.add_field->first, rr.add_field->second);
    added.emplace(request_.back().first, request_.back().second);
  }
  target_ = rr.target;
  rec_.on_route(rr.route_as, rr.source, std::move(rr.decision), added, std::move(rr.trace_id));
  co_return exchange_outcome::proceed();
}

asio::awaitable<exchange_outcome> exchange::upstream_step(const upstream_conn* avoid) {
  auto self = shared_from_this();
  st_.step = exchange_step::upstream;
  if (avoid == nullptr && rec_.active()) rec_.on_upstream(io::format_endpoint(target_).view());
  acquire_failure why;
  auto up = co_await acquire_upstream(ctx_, target_, why, avoid);
  if (!client_open()) co_return exchange_outcome::quiet(exchange_step::upstream, nullptr);
  if (!up) co_return http::upstream_connect_failed(why.reason);
  co_return submit_upstream(up);
}

exchange_outcome exchange::submit_upstream(const std::shared_ptr<upstream_conn>& up) {
  const bool with_body =
      st_.request != request_state::ended || !request_body_.empty() || !request_trailers_.empty();
  const auto id = up->submit(shared_from_this(), request_, with_body);
  if (id < 0)
    return exchange_outcome::answer(exchange_step::upstream, 502,
                                    "bad gateway: upstream stream refused", "upstream_reset");
  up_ = up;
  up_id_ = id;
  st_.upstream = upstream_state::open;
  st_.step = exchange_step::response_head;
  if (!with_body) st_.request = request_state::sent_end;
  log()->debug("[C{}] h2 stream {} -> upstream stream {}", ctx_.id, id_, id);
  return exchange_outcome::proceed();
}

void exchange::rewind_request() {
  std::string pending(request_body_.size(), '\0');
  const auto n =
      request_body_.take(reinterpret_cast<std::uint8_t*>(pending.data()), pending.size());
  request_body_.append({reinterpret_cast<const std::uint8_t*>(replay_->data()), replay_->size()});
  request_body_.append({reinterpret_cast<const std::uint8_t*>(pending.data()), n});
  replayed_pending_ += replay_->size();
  replay_.reset();  // sent again once only
  st_.rewind_request();
  response_.clear();
}

std::ptrdiff_t exchange::pull_request(std::uint8_t* buf, std::size_t length, std::uint32_t* flags) {
  const auto n = request_body_.take(buf, length);
  const auto credit = client_credit(n);
  if (client_open()) give_back_request(credit);
  if (n > 0 && replay_) {
    if (replay_->size() + n <= max_replay_bytes)
      replay_->append(reinterpret_cast<const char*>(buf), n);
    else
      replay_.reset();
  }
  if (!request_body_.empty()) return static_cast<std::ptrdiff_t>(n);
  if (st_.request == request_state::ended) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!request_trailers_.empty()) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      const auto nv = to_nv(request_trailers_);
      nghttp2_submit_trailer(up_->ng(), up_id_, nv.data(), nv.size());
    }
    st_.request = request_state::sent_end;
  } else if (n == 0) {
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<std::ptrdiff_t>(n);
}

// ---- the response: head, body, end

void exchange::on_response_field(std::string_view name, std::string_view value) {
  if (st_.answered()) return;
  auto& list = st_.response != response_state::none ? response_trailers_ : response_;
  list.emplace_back(name, value);
}

void exchange::on_response_head(bool end_stream) {
  if (st_.answered()) return;
  if (st_.response != response_state::none) {  // trailers (nghttp2 checks they end the stream)
    st_.response_ended();
    if (rec_.active())
      rec_.on_trailers(trace::message_side::response, regular_fields(response_trailers_));
    resume_client();
    return;
  }
  const auto status_text = find_field(response_, ":status");
  int status = 0;
  for (char c : status_text) status = status * 10 + (c - '0');
  if (status >= 100 && status < 200) {  // interim responses are not passed on
    response_.clear();
    if (++interim_heads_ > max_interim_heads) {
      log()->debug("[C{}] h2 stream {}: more than {} interim responses; resetting the upstream",
                   ctx_.id, id_, max_interim_heads);
      reset_upstream(NGHTTP2_PROTOCOL_ERROR);
      on_upstream_closed(NGHTTP2_PROTOCOL_ERROR);
    }
    return;
  }
  st_.response_head(status, end_stream);
  replay_.reset();  // the upstream took the stream: no replay from here on
  if (rec_.active()) rec_.on_response_head({status, {}, "2", regular_fields(response_)});
  if (!client_open()) return;
  if (submit_response(response_, !end_stream) != 0) {
    nghttp2_submit_rst_stream(client_->client_session(), NGHTTP2_FLAG_NONE, id_,
                              NGHTTP2_INTERNAL_ERROR);
  }
  client_->client_kick();
}

int exchange::submit_response(const field_list& fields, bool with_body) {
  const auto nv = to_nv(fields);
  nghttp2_data_provider prd{};
  prd.source.ptr = this;
  prd.read_callback = read_response_cb;
  if (!with_body) st_.response = response_state::sent_end;
  return nghttp2_submit_response(client_->client_session(), id_, nv.data(), nv.size(),
                                 with_body ? &prd : nullptr);
}

void exchange::on_response_data(std::span<const std::uint8_t> data) {
  if (!st_.answered()) rec_.on_body(trace::message_side::response, as_chars(data));
  if (!client_open() || st_.answered()) {
    give_back_response(data.size());
    return;
  }
  response_body_.append(data);
  resume_client();
}

void exchange::on_response_end() {
  if (st_.answered()) return;
  st_.response_ended();
  resume_client();
}

void exchange::on_upstream_closed(std::uint32_t code) {
  if (st_.upstream != upstream_state::open) return;
  st_.upstream = upstream_state::closed;
  if (!client_open() || st_.answered()) return;
  if (st_.may_retry(code, replay_.has_value())) {
    log()->debug("[C{}] h2 stream {}: upstream refused the stream; retrying on another connection",
                 ctx_.id, id_);
    rewind_request();
    auto refused = std::move(up_);
    up_id_ = 0;
    asio::co_spawn(client_->executor(), retry(shared_from_this(), std::move(refused)),
                   asio::detached);
    return;
  }
  if (st_.response == response_state::none)
    log()->debug("[C{}] h2 stream {}: upstream stream closed before a response (code {})", ctx_.id,
                 id_, code);
  drop_request();
  conclude(st_.upstream_closed(),
           code == NGHTTP2_NO_ERROR ? std::uint32_t{NGHTTP2_INTERNAL_ERROR} : code);
}

std::ptrdiff_t exchange::pull_response(std::uint8_t* buf, std::size_t length,
                                       std::uint32_t* flags) {
  const auto n = response_body_.take(buf, length);
  if (!st_.answered()) give_back_response(n);
  if (!response_body_.empty()) return static_cast<std::ptrdiff_t>(n);
  if (st_.response == response_state::ended) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!response_trailers_.empty() && client_open()) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      const auto nv = to_nv(response_trailers_);
      nghttp2_submit_trailer(client_->client_session(), id_, nv.data(), nv.size());
    }
    st_.response = response_state::sent_end;
  } else if (n == 0) {
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<std::ptrdiff_t>(n);
}

// ---- the outcome: the proxy's own answer, or a reset

void exchange::conclude(exchange_outcome o, std::uint32_t code) {
  if (o.next || st_.decided() || !client_open()) return;
  st_.outcome = std::move(o);
  switch (st_.outcome.end) {
    case exchange_end::answer:
      answer();
      break;
    case exchange_end::reset:
      nghttp2_submit_rst_stream(client_->client_session(), NGHTTP2_FLAG_NONE, id_,
                                code == 0 ? std::uint32_t{NGHTTP2_INTERNAL_ERROR} : code);
      client_->client_kick();
      break;
    default:
      break;  // nothing to send
  }
}

void exchange::answer() {
  drop_request();
  if (st_.upstream == upstream_state::open) {
    reset_upstream(NGHTTP2_CANCEL);
    st_.upstream = upstream_state::closed;
  }
  response_trailers_.clear();
  if (st_.response != response_state::none) return;  // too late for an answer
  const std::string message = "devspaces-proxy: " + st_.outcome.reason;
  field_list out{&fields_};
  auto add = [&out](std::string_view name, std::string_view value) {
    out.emplace_back(name, value);
  };
  response_body_.clear();
  if (is_grpc(find_field(request_, "content-type"))) {
    // gRPC: a trailers-only response, UNAVAILABLE.
    add(":status", "200");
    add("content-type", "application/grpc");
    add("grpc-status", "14");
    add("grpc-message", message);
    st_.response_head(200, true);
  } else {
    const std::string body = message + "\n";
    response_body_.append({reinterpret_cast<const std::uint8_t*>(body.data()), body.size()});
    add(":status", std::to_string(st_.outcome.status));
    add("content-type", "text/plain; charset=utf-8");
    add("content-length", std::to_string(body.size()));
    st_.response_head(st_.outcome.status, true);
  }
  if (rec_.active()) {
    rec_.on_response_head({st_.status, {}, "2", regular_fields(out)});
    if (!response_body_.empty()) {
      rec_.on_body(trace::message_side::response, std::span<const char>(message));
      rec_.on_body(trace::message_side::response, std::span<const char>("\n", 1));
    }
  }
  submit_response(out, !response_body_.empty());
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

void exchange::finish() {
  const auto dur = clock::now() - start_;
  const char* error = st_.outcome.error;
  auto* metrics = ctx_.services ? ctx_.services->metrics : nullptr;
  if (metrics != nullptr) {
    const auto cls =
        error != nullptr && st_.status == 0 ? code_class::error : class_of_status(st_.status);
    metrics->http_requests(ctx_.dir, method_idx_, cls).Increment();
    metrics->http_duration(ctx_.dir).Observe(std::chrono::duration<double>(dur).count());
  }
  rec_.finish(std::chrono::duration_cast<std::chrono::microseconds>(dur), error);
}

}  // namespace devspaces::proxy::h2
