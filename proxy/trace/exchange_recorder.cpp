#include "proxy/trace/exchange_recorder.hpp"

#include "proxy/trace/access_log.hpp"
#include "proxy/trace/hub.hpp"
#include "proxy/trace/packed.hpp"

namespace devspaces::proxy::trace {

using packed::item;
using packed::writer;

exchange_recorder::exchange_recorder(hub* sink, std::size_t body_limit)
    : sink_(sink), body_limit_(body_limit) {}
exchange_recorder::exchange_recorder(exchange_recorder&&) noexcept = default;
exchange_recorder& exchange_recorder::operator=(exchange_recorder&&) noexcept = default;
exchange_recorder::~exchange_recorder() = default;

packed::buffer& exchange_recorder::out() {
  return entry_->packed();
}

bool exchange_recorder::wanted() const {
  return sink_ != nullptr && sink_->wanted();
}

void exchange_recorder::start(bool outbound, std::string_view pod, std::string_view space) {
  entry_ = sink_->open();
  request_body_ = {};
  response_body_ = {};
  response_open_ = false;
  const auto id = next_id();
  const std::int64_t ts = std::chrono::system_clock::now().time_since_epoch().count();
  writer(out()).put(item::begin, std::string_view(id), ts, std::uint8_t{outbound}, pod, space);
}

void exchange_recorder::begin(const exchange_identity& who) {
  if (entry_ || sink_ == nullptr || !sink_->wanted()) return;
  start(who.outbound, who.pod, who.space);
  writer w(out());
  if (!who.client.empty()) w.put(item::client, who.client);
  if (!who.original_dst.empty()) w.put(item::original_dst, who.original_dst);
}

void exchange_recorder::begin(const exchange_endpoints& who) {
  if (entry_ || !wanted()) return;
  start(who.outbound, who.pod, who.space);
  writer w(out());
  w.put(item::client_address, packed::address_bytes(who.client));
  w.put(item::original_dst_address, packed::address_bytes(who.original_dst));
}

void exchange_recorder::on_protocol(std::string_view protocol,
                                    std::optional<std::int32_t> stream_id) {
  if (!entry_) return;
  writer(out()).put(item::protocol, protocol, std::uint8_t{stream_id.has_value()},
                    std::int32_t{stream_id.value_or(0)});
}

void exchange_recorder::on_request_line(std::string_view method, std::string_view target,
                                        std::string_view version) {
  if (!entry_) return;
  writer(out()).put(item::request_line, method, target, version);
}

void exchange_recorder::note_fields(body_state& body, std::span<const field_view> fields) {
  // The first Content-Type of the message decides, as apply_body_policy does for a whole record.
  if (body.typed) return;
  for (const auto& [name, value] : fields) {
    if (!is_content_type(name)) continue;
    body.typed = true;
    body.omit = omitted_type(value, sink_->options().omit_body_types);
    return;
  }
}

void exchange_recorder::on_request_head(const request_view& head) {
  if (!entry_) return;
  on_request_line(head.method, head.target, head.version);
  writer w(out());
  w.put(item::host, head.authority);
  w.fields(item::request_field, head.fields);
  note_fields(request_body_, head.fields);
}

void exchange_recorder::on_route(const std::optional<std::string>& route_as,
                                 routing::route_source source,
                                 std::shared_ptr<const routing::route_decision> decision,
                                 std::optional<field_view> added,
                                 std::optional<std::string> trace_id) {
  if (!entry_) return;
  writer w(out());
  if (added) {
    const std::span<const field_view> one(&*added, 1);
    w.fields(item::request_field, one);
    note_fields(request_body_, one);
  }
  w.put(item::route, std::uint8_t{route_as.has_value()},
        route_as ? std::string_view(*route_as) : std::string_view(),
        static_cast<std::uint8_t>(source), std::uint8_t{trace_id.has_value()},
        trace_id ? std::string_view(*trace_id) : std::string_view());
  entry_->set_route(std::move(decision));
}

void exchange_recorder::on_upstream(std::string_view endpoint) {
  if (!entry_) return;
  writer(out()).put(item::upstream, endpoint);
}

void exchange_recorder::on_upstream(const boost::asio::ip::tcp::endpoint& endpoint) {
  if (entry_) writer(out()).put(item::upstream_address, packed::address_bytes(endpoint));
}

void exchange_recorder::on_response_head(const response_view& head) {
  if (!entry_) return;
  response_open_ = true;
  response_body_ = {};
  writer w(out());
  w.put(item::response_head, std::int32_t{head.status}, head.reason, head.version);
  w.fields(item::response_field, head.fields);
  note_fields(response_body_, head.fields);
}

void exchange_recorder::on_body(message_side side, std::span<const char> bytes) {
  if (!entry_) return;
  const bool request = side == message_side::request;
  if (!request && !response_open_) return;
  auto& body = request ? request_body_ : response_body_;
  body.total += bytes.size();
  if (body.omit || body.kept >= body_limit_ || bytes.empty()) return;
  const std::size_t room = body_limit_ - body.kept;
  const std::size_t n = bytes.size() < room ? bytes.size() : room;
  body.kept += n;
  writer(out()).put(request ? item::request_body : item::response_body,
                    std::string_view(bytes.data(), n));
}

void exchange_recorder::on_trailers(message_side side, std::span<const field_view> fields) {
  if (!entry_) return;
  writer w(out());
  if (side == message_side::request) {
    w.fields(item::request_field, fields);
    note_fields(request_body_, fields);
  } else if (response_open_) {
    w.fields(item::trailer, fields);
  }
}

void exchange_recorder::finish(std::chrono::microseconds duration, const char* error) {
  if (!entry_) return;
  // The policy marks a body omitted only when it withheld bytes (there were some to keep).
  const auto omitted = [this](const body_state& b) {
    return std::uint8_t{b.omit && b.total > 0 && body_limit_ > 0};
  };
  writer(out()).put(item::end, std::int64_t{duration.count()}, std::uint8_t{error != nullptr},
                    error != nullptr ? std::string_view(error) : std::string_view(),
                    std::uint64_t{request_body_.total}, omitted(request_body_),
                    std::uint64_t{response_body_.total}, omitted(response_body_));
  sink_->push(std::move(entry_));
  entry_.reset();
}

}  // namespace devspaces::proxy::trace
