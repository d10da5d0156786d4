#include "proxy/trace/exchange_recorder.hpp"

#include "proxy/io/socket_util.hpp"
#include "proxy/trace/hub.hpp"

namespace devspaces::proxy::trace {

namespace {

void copy_fields(header_list& out, std::span<const field_view> fields) {
  out.reserve(out.size() + fields.size());
  for (const auto& [name, value] : fields) out.emplace_back(name, value);
}

// An endpoint and its text, formatted again only when the endpoint changes.
class endpoint_text {
 public:
  std::string_view of(const boost::asio::ip::tcp::endpoint& ep) {
    if (!set_ || ep != ep_) {
      ep_ = ep;
      text_ = io::format_endpoint(ep).view();
      set_ = true;
    }
    return text_.view();
  }

 private:
  boost::asio::ip::tcp::endpoint ep_;
  address_text text_;
  bool set_ = false;
};

}  // namespace

struct exchange_recorder::endpoint_texts {
  endpoint_text client;
  endpoint_text original_dst;
  endpoint_text upstream;
};

exchange_recorder::exchange_recorder(hub* sink, std::size_t body_limit)
    : sink_(sink), body_limit_(body_limit) {}
exchange_recorder::exchange_recorder(exchange_recorder&&) noexcept = default;
exchange_recorder& exchange_recorder::operator=(exchange_recorder&&) noexcept = default;
exchange_recorder::~exchange_recorder() = default;

void exchange_recorder::idle() {
  texts_.reset();
}

record& exchange_recorder::rec() {
  return entry_->fill();
}

exchange_recorder::endpoint_texts& exchange_recorder::texts() {
  if (!texts_) texts_ = std::make_unique<endpoint_texts>();
  return *texts_;
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
  r.pod = who.pod;
  r.space = who.space;
  r.client = who.client;
  r.original_dst = who.original_dst;
}

void exchange_recorder::begin(const exchange_endpoints& who) {
  if (entry_ || !wanted()) return;
  auto& t = texts();
  begin(exchange_identity{who.outbound, who.pod, who.space, t.client.of(who.client),
                          t.original_dst.of(who.original_dst)});
}

void exchange_recorder::on_protocol(std::string_view protocol,
                                    std::optional<std::int32_t> stream_id) {
  if (!entry_) return;
  rec().protocol = protocol;
  rec().stream_id = stream_id;
}

void exchange_recorder::on_request_line(std::string_view method, std::string_view target,
                                        std::string_view version) {
  if (!entry_) return;
  auto& q = rec().request;
  q.method = method;
  q.target = target;
  q.version = version;
}

void exchange_recorder::on_request_head(const request_view& head) {
  if (!entry_) return;
  on_request_line(head.method, head.target, head.version);
  auto& q = rec().request;
  q.host = head.authority;
  copy_fields(q.headers, head.fields);
}

void exchange_recorder::on_route(const std::optional<std::string>& route_as,
                                 routing::route_source source,
                                 std::shared_ptr<const routing::route_decision> decision,
                                 std::optional<field_view> added,
                                 std::optional<std::string> trace_id) {
  if (!entry_) return;
  auto& r = rec();
  if (added) r.request.headers.emplace_back(added->first, added->second);
  r.trace_id = std::move(trace_id);
  r.route_as = route_as;
  r.route_as_source = source;
  r.route = std::move(decision);
}

void exchange_recorder::on_upstream(std::string_view endpoint) {
  if (entry_) rec().upstream = endpoint;
}

void exchange_recorder::on_upstream(const boost::asio::ip::tcp::endpoint& endpoint) {
  if (entry_) rec().upstream = texts().upstream.of(endpoint);
}

void exchange_recorder::on_response_head(const response_view& head) {
  if (!entry_) return;
  auto& r = entry_->open_response();
  r.status = head.status;
  r.reason = head.reason;
  r.version = head.version;
  copy_fields(r.headers, head.fields);
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
  auto& r = rec();
  if (side == message_side::request) {
    copy_fields(r.request.headers, fields);
  } else if (r.response) {
    copy_fields(r.response->trailers, fields);
  }
}

void exchange_recorder::finish(std::chrono::microseconds duration, const char* error) {
  if (!entry_) return;
  auto& r = rec();
  r.duration = duration;
  if (error != nullptr) r.error = error;
  sink_->push(std::move(entry_));
  entry_.reset();
}

}  // namespace devspaces::proxy::trace
