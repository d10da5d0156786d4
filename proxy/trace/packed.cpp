#include "proxy/trace/packed.hpp"

#include <chrono>
#include <optional>
#include <utility>

#include <netinet/in.h>
#include <sys/socket.h>

#include "proxy/io/socket_util.hpp"

namespace devspaces::proxy::trace::packed {

namespace {

class reader {
 public:
  explicit reader(std::string_view in) : in_(in) {}

  bool done() const { return in_.empty(); }
  bool ok() const { return ok_; }

  template <class T>
  T number() {
    T v{};
    if (in_.size() < sizeof v) return fail<T>();
    std::memcpy(&v, in_.data(), sizeof v);
    in_.remove_prefix(sizeof v);
    return v;
  }
  std::uint8_t u8() { return number<std::uint8_t>(); }
  std::string_view text() {
    const auto n = number<std::uint32_t>();
    if (in_.size() < n) return fail<std::string_view>();
    const auto s = in_.substr(0, n);
    in_.remove_prefix(n);
    return s;
  }
  std::optional<std::string> optional_text() {
    const bool present = u8() != 0;
    const auto s = text();
    if (!present) return std::nullopt;
    return std::string(s);
  }

 private:
  template <class T>
  T fail() {
    ok_ = false;
    in_ = {};
    return T{};
  }

  std::string_view in_;
  bool ok_ = true;
};

// The text of an endpoint packed as its sockaddr; false when the bytes are no IPv4 or IPv6
// socket address.
bool endpoint_text(std::string_view bytes, address_text& out) {
  boost::asio::ip::tcp::endpoint ep;
  if (bytes.size() > ep.capacity() || bytes.size() < sizeof(sa_family_t)) return false;
  std::memcpy(ep.data(), bytes.data(), bytes.size());
  const auto family = ep.data()->sa_family;
  const std::size_t want = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  if ((family != AF_INET && family != AF_INET6) || bytes.size() != want) return false;
  ep.resize(bytes.size());
  out = io::format_endpoint(ep).view();
  return true;
}

void finish_body(body_capture& body, std::uint64_t total, bool omitted) {
  body.total_bytes = total;
  body.omitted = omitted;
  if (omitted) body.prefix.clear();
  body.truncated = total > body.prefix.size();
}

}  // namespace

void buffer::grow(std::size_t n) {
  std::size_t cap = capacity_ < 256 ? 256 : capacity_ * 2;
  while (cap - size_ < n) cap *= 2;
  auto bigger = std::make_unique_for_overwrite<char[]>(cap);
  if (size_ != 0) std::memcpy(bigger.get(), data_.get(), size_);
  data_ = std::move(bigger);
  capacity_ = cap;
}

bool unpack(std::string_view packed, std::shared_ptr<const routing::route_decision> route,
            record& r) {
  r.route = route ? std::move(route) : routing::no_decision();
  reader in(packed);
  while (!in.done()) {
    const auto kind = static_cast<item>(in.u8());
    switch (kind) {
      case item::begin:
        r.id = in.text();
        r.ts = std::chrono::system_clock::time_point(
            std::chrono::system_clock::duration(in.number<std::int64_t>()));
        r.outbound = in.u8() != 0;
        r.pod = in.text();
        r.space = in.text();
        break;
      case item::client:
        r.client = in.text();
        break;
      case item::original_dst:
        r.original_dst = in.text();
        break;
      case item::upstream:
        r.upstream = in.text();
        break;
      case item::client_address:
      case item::original_dst_address:
      case item::upstream_address: {
        auto& text = kind == item::client_address         ? r.client
                     : kind == item::original_dst_address ? r.original_dst
                                                          : r.upstream;
        if (!endpoint_text(in.text(), text)) return false;
        break;
      }
      case item::protocol: {
        r.protocol = in.text();
        const bool has_stream = in.u8() != 0;
        const auto stream = in.number<std::int32_t>();
        r.stream_id = has_stream ? std::optional<std::int32_t>(stream) : std::nullopt;
        break;
      }
      case item::request_line:
        r.request.method = in.text();
        r.request.target = in.text();
        r.request.version = in.text();
        break;
      case item::host:
        r.request.host = in.text();
        break;
      case item::request_field: {
        auto name = in.text();
        r.request.headers.emplace_back(name, in.text());
        break;
      }
      case item::route:
        r.route_as = in.optional_text();
        r.route_as_source = static_cast<routing::route_source>(in.u8());
        r.trace_id = in.optional_text();
        break;
      case item::response_head: {
        auto& resp = r.response.emplace();
        resp.status = in.number<std::int32_t>();
        resp.reason = in.text();
        resp.version = in.text();
        break;
      }
      case item::response_field:
      case item::trailer: {
        auto name = in.text();
        auto value = in.text();
        if (!r.response) break;  // no response head yet: nothing to add it to
        auto& list = kind == item::trailer ? r.response->trailers : r.response->headers;
        list.emplace_back(name, value);
        break;
      }
      case item::request_body:
        r.request.body.prefix.append(in.text());
        break;
      case item::response_body: {
        const auto bytes = in.text();
        if (r.response) r.response->body.prefix.append(bytes);
        break;
      }
      case item::end: {
        r.duration = std::chrono::microseconds(in.number<std::int64_t>());
        r.error = in.optional_text();
        const auto request_total = in.number<std::uint64_t>();
        const bool request_omitted = in.u8() != 0;
        const auto response_total = in.number<std::uint64_t>();
        const bool response_omitted = in.u8() != 0;
        finish_body(r.request.body, request_total, request_omitted);
        if (r.response) finish_body(r.response->body, response_total, response_omitted);
        break;
      }
      default:
        return false;
    }
  }
  return in.ok();
}

}  // namespace devspaces::proxy::trace::packed
