#include "proxy/trace/exchange_recorder.hpp"

#include "proxy/trace/hub.hpp"

namespace devspaces::proxy::trace {

namespace {

void copy_fields(header_list& out, std::span<const field_view> fields) {
  out.reserve(out.size() + fields.size());
  for (const auto& [name, value] : fields) out.emplace_back(name, value);
}

}  // namespace

bool exchange_recorder::wanted() const {
  return sink_ != nullptr && sink_->wanted();
}

void exchange_recorder::begin(const exchange_identity& who) {
  if (rec_ || sink_ == nullptr || !sink_->wanted()) return;
  rec_ = std::make_unique<record>();
  auto& r = *rec_;
  r.id = next_id();
  r.ts = std::chrono::system_clock::now();
  r.outbound = who.outbound;
  r.pod = who.pod;
  r.space = who.space;
  r.client = who.client;
  r.original_dst = who.original_dst;
}

void exchange_recorder::on_protocol(std::string_view protocol,
                                    std::optional<std::int32_t> stream_id) {
  if (!rec_) return;
  rec_->protocol = protocol;
  rec_->stream_id = stream_id;
}

void exchange_recorder::on_request_line(std::string_view method, std::string_view target,
                                        std::string_view version) {
  if (!rec_) return;
  rec_->request.method = method;
  rec_->request.target = target;
  rec_->request.version = version;
}

void exchange_recorder::on_request_head(const request_view& head) {
  if (!rec_) return;
  on_request_line(head.method, head.target, head.version);
  rec_->request.host = head.authority;
  copy_fields(rec_->request.headers, head.fields);
}

void exchange_recorder::on_route(const std::optional<std::string>& route_as,
                                 routing::route_source source, routing::route_decision decision,
                                 std::optional<field_view> added,
                                 std::optional<std::string> trace_id) {
  if (!rec_) return;
  if (added) rec_->request.headers.emplace_back(added->first, added->second);
  rec_->trace_id = std::move(trace_id);
  rec_->route_as = route_as;
  rec_->route_as_source = source;
  rec_->route = std::move(decision);
}

void exchange_recorder::on_upstream(std::string_view endpoint) {
  if (rec_) rec_->upstream = endpoint;
}

void exchange_recorder::on_response_head(const response_view& head) {
  if (!rec_) return;
  auto& r = rec_->response.emplace();
  r.status = head.status;
  r.reason = head.reason;
  r.version = head.version;
  copy_fields(r.headers, head.fields);
}

void exchange_recorder::on_body(message_side side, std::span<const char> bytes) {
  if (!rec_) return;
  if (side == message_side::request) {
    rec_->request.body.append(bytes, body_limit_);
  } else if (rec_->response) {
    rec_->response->body.append(bytes, body_limit_);
  }
}

void exchange_recorder::on_trailers(message_side side, std::span<const field_view> fields) {
  if (!rec_) return;
  if (side == message_side::request) {
    copy_fields(rec_->request.headers, fields);
  } else if (rec_->response) {
    copy_fields(rec_->response->trailers, fields);
  }
}

void exchange_recorder::finish(std::chrono::microseconds duration, const char* error) {
  if (!rec_) return;
  rec_->duration = duration;
  if (error != nullptr) rec_->error = error;
  sink_->push(std::move(*rec_));
  rec_.reset();
}

}  // namespace devspaces::proxy::trace
