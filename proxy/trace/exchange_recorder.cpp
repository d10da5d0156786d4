#include "proxy/trace/exchange_recorder.hpp"

#include "proxy/io/socket_util.hpp"
#include "proxy/trace/hub.hpp"

namespace devspaces::proxy::trace {

exchange_recorder::exchange_recorder(hub* sink, std::size_t body_limit)
    : sink_(sink), body_limit_(body_limit) {}
exchange_recorder::exchange_recorder(exchange_recorder&&) noexcept = default;
exchange_recorder& exchange_recorder::operator=(exchange_recorder&&) noexcept = default;
exchange_recorder::~exchange_recorder() = default;

record& exchange_recorder::rec() {
  return entry_->fill();
}

bool exchange_recorder::wanted() const {
  return sink_ != nullptr && sink_->wanted();
}

void exchange_recorder::begin(const exchange_identity& who) {
  if (entry_ || sink_ == nullptr || !sink_->wanted()) return;
  entry_ = sink_->open();
  auto& r = rec();
  r.id = next_id();
  r.ts = std::chrono::system_clock::now();
  r.outbound = who.outbound;
  set_text(r.pod, who.pod);
  set_text(r.space, who.space);
  r.client = who.client;
  r.original_dst = who.original_dst;
}

void exchange_recorder::begin(const exchange_endpoints& who) {
  if (entry_ || !wanted()) return;
  // Formatted straight into the record: cheaper than keeping the text per connection.
  begin(exchange_identity{who.outbound, who.pod, who.space, {}, {}});
  auto& r = rec();
  r.client = io::format_endpoint(who.client).view();
  r.original_dst = io::format_endpoint(who.original_dst).view();
}

void exchange_recorder::on_protocol(std::string_view protocol,
                                    std::optional<std::int32_t> stream_id) {
  if (!entry_) return;
  set_text(rec().protocol, protocol);
  rec().stream_id = stream_id;
}

void exchange_recorder::on_request_line(std::string_view method, std::string_view target,
                                        std::string_view version) {
  if (!entry_) return;
  auto& q = rec().request;
  set_text(q.method, method);
  set_text(q.target, target);
  set_text(q.version, version);
}

void exchange_recorder::on_request_head(const request_view& head) {
  if (!entry_) return;
  on_request_line(head.method, head.target, head.version);
  auto& q = rec().request;
  set_text(q.host, head.authority);
  entry_->add_request_fields(head.fields);
}

void exchange_recorder::on_route(const std::optional<std::string>& route_as,
                                 routing::route_source source,
                                 std::shared_ptr<const routing::route_decision> decision,
                                 std::optional<field_view> added,
                                 std::optional<std::string> trace_id) {
  if (!entry_) return;
  auto& r = rec();
  if (added) entry_->add_request_fields(std::span<const field_view>(&*added, 1));
  r.trace_id = std::move(trace_id);
  r.route_as = route_as;
  r.route_as_source = source;
  r.route = std::move(decision);
}

void exchange_recorder::on_upstream(std::string_view endpoint) {
  if (entry_) rec().upstream = endpoint;
}

void exchange_recorder::on_upstream(const boost::asio::ip::tcp::endpoint& endpoint) {
  if (entry_) rec().upstream = io::format_endpoint(endpoint).view();
}

void exchange_recorder::on_response_head(const response_view& head) {
  if (!entry_) return;
  auto& r = entry_->open_response();
  r.status = head.status;
  set_text(r.reason, head.reason);
  set_text(r.version, head.version);
  entry_->add_response_fields(head.fields);
}

void exchange_recorder::on_body(message_side side, std::span<const char> bytes) {
  if (!entry_) return;
  auto& r = rec();
  if (side == message_side::request) {
    r.request.body.append(bytes, body_limit_);
  } else if (r.response) {
    r.response->body.append(bytes, body_limit_);
  }
}

void exchange_recorder::on_trailers(message_side side, std::span<const field_view> fields) {
  if (!entry_) return;
  if (side == message_side::request) {
    entry_->add_request_fields(fields);
  } else if (rec().response) {
    entry_->add_trailers(fields);
  }
}

void exchange_recorder::finish(std::chrono::microseconds duration, const char* error) {
  if (!entry_) return;
  auto& r = rec();
  r.duration = duration;
  if (error != nullptr) r.error = error;
  entry_->seal();
  sink_->push(std::move(entry_));
  entry_.reset();
}

}  // namespace devspaces::proxy::trace
