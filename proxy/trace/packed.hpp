#pragma once

// The packed form of a trace record: what the data path writes while an exchange runs, and what
// the replay ring keeps until someone reads it.
//
// A record is built from events that arrive out of field order (request line, fields, route,
// response head, body chunks, end), and most records are never read. Filling a `record` in place
// touches dozens of separately allocated strings of a record that left the ring a thousand
// exchanges ago, each a cache miss. The packed form is one buffer written front to back: each
// event is appended as a tagged item, and a reader that wants the record unpacks it into a
// `record` (later items of the same kind replace earlier ones, as the recorder's calls do).
//
// Layout: items, each a one-byte `item` tag followed by its fields. Integers are in the host's
// byte order (the buffer never leaves the process); text is a 32-bit length and the bytes.

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include <boost/asio/ip/tcp.hpp>

#include "proxy/routing/decision.hpp"
#include "proxy/trace/record.hpp"

namespace devspaces::proxy::trace::packed {

/// The kinds of item, each with its fields in order.
enum class item : std::uint8_t {
  begin = 1,       ///< id (text), ts (i64, system_clock ticks), outbound (u8), pod, space (text)
  client,          ///< text
  original_dst,    ///< text
  upstream,        ///< text
  protocol,        ///< protocol (text), has stream id (u8), stream id (i32)
  request_line,    ///< method, target, version (text)
  host,            ///< text
  request_field,   ///< name, value (text)
  route,           ///< has route_as (u8), route_as (text), source (u8),
                   ///< has trace id (u8), trace id (text); an absent text is empty
  response_head,   ///< status (i32), reason, version (text): starts a new response
  response_field,  ///< name, value (text)
  trailer,         ///< name, value (text)
  request_body,    ///< the next bytes of the request's body prefix (text)
  response_body,   ///< the next bytes of the response's body prefix (text)
  end,             ///< duration (i64 µs), has error (u8), error (text: empty when none),
                   ///< request body: total (u64), omitted (u8); response body: the same
  // Endpoints as their socket address (text: the sockaddr's bytes), formatted when unpacked:
  // three per exchange, and formatting is most of what writing them would cost.
  client_address,        ///< the client endpoint's sockaddr
  original_dst_address,  ///< the original destination's sockaddr
  upstream_address,      ///< the upstream's sockaddr
};

/// An endpoint's socket address as the text of a *_address item.
inline std::string_view address_bytes(const boost::asio::ip::tcp::endpoint& ep) {
  return {reinterpret_cast<const char*>(ep.data()), ep.size()};
}

/// A growable byte buffer that keeps its storage when cleared (the packed record of a reused
/// ring entry).
class buffer {
 public:
  buffer() = default;
  buffer(const buffer&) = delete;
  buffer& operator=(const buffer&) = delete;

  /// `n` more bytes at the end, for the caller to write.
  char* extend(std::size_t n) {
    if (capacity_ - size_ < n) grow(n);
    char* p = data_.get() + size_;
    size_ += n;
    return p;
  }
  std::string_view view() const { return {data_.get(), size_}; }
  bool empty() const { return size_ == 0; }
  /// Bytes of storage held.
  std::size_t capacity() const { return capacity_; }
  /// Empty again, keeping the storage unless it is larger than `keep_at_most` bytes (one
  /// exchange with huge heads must not pin that much in a ring entry for good).
  void clear(std::size_t keep_at_most) {
    size_ = 0;
    if (capacity_ > keep_at_most) {
      data_.reset();
      capacity_ = 0;
    }
  }

 private:
  void grow(std::size_t n);

  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

/// Appends items to a packed record, each with one capacity check.
class writer {
 public:
  explicit writer(buffer& out) : out_(out) {}

  /// One item: its tag, then each value (text as length and bytes; integers and enums as their
  /// bytes). Text must be passed as std::string_view.
  template <class... Values>
  void put(item t, const Values&... values) {
    char* p = out_.extend(1 + (size_of(values) + ... + 0));
    *p++ = static_cast<char>(t);
    ((p = write(p, values)), ...);
  }
  /// One item per field, of kind `list` (request_field, response_field, trailer).
  template <class Fields>
  void fields(item list, const Fields& fields) {
    std::size_t n = 0;
    for (const auto& [name, value] : fields)
      n += 1 + 2 * sizeof(std::uint32_t) + name.size() + value.size();
    if (n == 0) return;
    char* p = out_.extend(n);
    for (const auto& [name, value] : fields) {
      *p++ = static_cast<char>(list);
      p = write(p, std::string_view(name));
      p = write(p, std::string_view(value));
    }
  }

 private:
  static std::size_t size_of(std::string_view s) { return sizeof(std::uint32_t) + s.size(); }
  template <class T>
  static constexpr std::size_t size_of(const T&) {
    static_assert(std::is_integral_v<T> || std::is_enum_v<T>, "text goes as std::string_view");
    return sizeof(T);
  }
  static char* write(char* p, std::string_view s) {
    const auto n = static_cast<std::uint32_t>(s.size());
    std::memcpy(p, &n, sizeof n);
    if (n != 0) std::memcpy(p + sizeof n, s.data(), n);  // an empty view's data may be null
    return p + sizeof n + n;
  }
  template <class T>
  static char* write(char* p, const T& v) {
    std::memcpy(p, &v, sizeof v);
    return p + sizeof v;
  }

  buffer& out_;
};

/// Rebuilds the record from its packed form into `r` (which should be new), with `route` as
/// its route decision. False when the buffer is cut or holds an unknown item; `r` then holds
/// what came before.
bool unpack(std::string_view packed, std::shared_ptr<const routing::route_decision> route,
            record& r);

}  // namespace devspaces::proxy::trace::packed
