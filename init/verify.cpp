#include "init/verify.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace devspaces::init {

namespace {

// SO_ORIGINAL_DST (linux/netfilter_ipv4.h) and IP6T_SO_ORIGINAL_DST share the value 80; the
// kernel headers clash with net/if.h, so the constant is spelled out.
constexpr int so_original_dst = 80;

constexpr std::array<std::uint16_t, 5> candidate_ports{15002, 80, 8080, 443, 9};

struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

bool to_sockaddr(family f, const endpoint_text& ep, sockaddr_storage& sa, socklen_t& len) {
  std::memset(&sa, 0, sizeof sa);
  if (f == family::v4) {
    auto* in = reinterpret_cast<sockaddr_in*>(&sa);
    in->sin_family = AF_INET;
    in->sin_port = htons(ep.port);
    len = sizeof(sockaddr_in);
    return ::inet_pton(AF_INET, ep.address.c_str(), &in->sin_addr) == 1;
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&sa);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(ep.port);
  len = sizeof(sockaddr_in6);
  return ::inet_pton(AF_INET6, ep.address.c_str(), &in6->sin6_addr) == 1;
}

std::optional<endpoint_text> from_sockaddr(const sockaddr_storage& sa) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&sa);
    ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    return endpoint_text{buf, ntohs(in->sin_port)};
  }
  if (sa.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&sa);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    return endpoint_text{buf, ntohs(in6->sin6_port)};
  }
  return std::nullopt;
}

std::string show(family f, const endpoint_text& ep) {
  return f == family::v4 ? ep.address + ":" + std::to_string(ep.port)
                         : "[" + ep.address + "]:" + std::to_string(ep.port);
}

bool excluded(const config& c, family f, std::string_view addr) {
  for (const auto& n : c.exclude_outbound_cidrs)
    if (n.v6 == (f == family::v6) && cidr_contains(n, addr)) return true;
  return false;
}

/// The first host address of a network ("10.0.0.0/8" → "10.0.0.1").
std::string first_host(const cidr& net) {
  std::array<unsigned char, 16> b{};
  auto slash = net.text.find('/');
  auto addr = net.text.substr(0, slash);
  int af = net.v6 ? AF_INET6 : AF_INET;
  ::inet_pton(af, addr.c_str(), b.data());
  int bits = net.v6 ? 128 : 32;
  int prefix = std::stoi(net.text.substr(slash + 1));
  if (prefix < bits) b[static_cast<std::size_t>(bits / 8 - 1)] |= 1;
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(af, b.data(), buf, sizeof buf);
  return buf;
}

}  // namespace

bool cidr_contains(const cidr& net, std::string_view address) {
  std::array<unsigned char, 16> a{}, n{};
  int af = net.v6 ? AF_INET6 : AF_INET;
  auto slash = net.text.find('/');
  if (::inet_pton(af, std::string(address).c_str(), a.data()) != 1) return false;
  if (::inet_pton(af, net.text.substr(0, slash).c_str(), n.data()) != 1) return false;
  int prefix = std::stoi(net.text.substr(slash + 1));
  for (int i = 0; i < prefix; ++i) {
    auto byte = static_cast<std::size_t>(i / 8);
    unsigned mask = 0x80u >> (i % 8);
    if ((a[byte] & mask) != (n[byte] & mask)) return false;
  }
  return true;
}

std::optional<endpoint_text> outbound_probe_target(const config& c, family f) {
  const bool v6 = f == family::v6;
  std::vector<std::string> candidates;
  if (c.include_all_cidrs) {
    candidates.push_back(v6 ? "fd00:198:18:ffff::1" : "198.18.255.1");
  } else {
    for (const auto& n : c.include_outbound_cidrs)
      if (n.v6 == v6) candidates.push_back(first_host(n));
  }
  std::optional<std::string> addr;
  for (const auto& a : candidates)
    if (!excluded(c, f, a) && !(v6 ? a == "::1" : a.starts_with("127."))) {
      addr = a;
      break;
    }
  if (!addr) return std::nullopt;
  for (auto p : candidate_ports) {
    auto& ex = c.exclude_outbound_ports;
    if (std::find(ex.begin(), ex.end(), p) == ex.end()) return endpoint_text{*addr, p};
  }
  return std::nullopt;
}

std::optional<std::uint16_t> inbound_probe_port(const config& c) {
  auto is_excluded = [&](std::uint16_t p) {
    auto& ex = c.exclude_inbound_ports;
    return p == c.inbound_port || p == c.outbound_port || p == c.admin_port ||
           std::find(ex.begin(), ex.end(), p) != ex.end();
  };
  if (c.inbound_all) {
    for (auto p : candidate_ports)
      if (!is_excluded(p)) return p;
    return std::nullopt;
  }
  for (auto p : c.inbound_ports)
    if (!is_excluded(p)) return p;
  return std::nullopt;
}

std::optional<std::string> pod_address(family f) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return std::nullopt;
  std::optional<std::string> out;
  for (ifaddrs* i = list; i && !out; i = i->ifa_next) {
    if (!i->ifa_addr || (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP)) continue;
    char buf[INET6_ADDRSTRLEN] = {};
    if (f == family::v4 && i->ifa_addr->sa_family == AF_INET) {
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
      out = buf;
    } else if (f == family::v6 && i->ifa_addr->sa_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<sockaddr_in6*>(i->ifa_addr);
      if (IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr)) continue;
      ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
      out = buf;
    }
  }
  ::freeifaddrs(list);
  return out;
}

probe_outcome probe_redirect(family f, const endpoint_text& listen, const endpoint_text& target,
                             std::uint32_t fs_uid, std::uint32_t fs_gid,
                             std::chrono::milliseconds timeout) {
  using status = probe_outcome::status;
  const int af = f == family::v4 ? AF_INET : AF_INET6;
  sockaddr_storage lsa{}, tsa{};
  socklen_t llen = 0, tlen = 0;
  if (!to_sockaddr(f, listen, lsa, llen) || !to_sockaddr(f, target, tsa, tlen))
    return {status::failed, "bad test address"};

  fd_guard l{::socket(af, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
  int one = 1;
  ::setsockopt(l.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (f == family::v6) ::setsockopt(l.fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (l.fd < 0 || ::bind(l.fd, reinterpret_cast<sockaddr*>(&lsa), llen) != 0 ||
      ::listen(l.fd, 4) != 0) {
    std::string why = std::strerror(errno);
    return {status::failed, "cannot listen on " + show(f, listen) + ": " + why +
                                (errno == EADDRINUSE ? " (is the proxy already running? verify "
                                                       "before it starts)"
                                                     : "")};
  }

  // -m owner matches the file-system ids the socket was created under.
  auto old_uid = static_cast<uid_t>(::setfsuid(fs_uid));
  auto old_gid = static_cast<gid_t>(::setfsgid(fs_gid));
  // setfsuid reports the previous value only; asking again tells whether the change took.
  const bool ids_taken = static_cast<std::uint32_t>(::setfsuid(fs_uid)) == fs_uid &&
                         static_cast<std::uint32_t>(::setfsgid(fs_gid)) == fs_gid;
  fd_guard s{::socket(af, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
  ::setfsgid(old_gid);
  ::setfsuid(old_uid);
  if (!ids_taken)
    return {status::skipped, "cannot open a socket as uid/gid " + std::to_string(fs_uid) + "/" +
                                 std::to_string(fs_gid) + " here (user namespace without that id)"};
  if (s.fd < 0) return {status::failed, std::string("socket: ") + std::strerror(errno)};
  if (::connect(s.fd, reinterpret_cast<sockaddr*>(&tsa), tlen) != 0 && errno != EINPROGRESS) {
    if (errno == ENETUNREACH || errno == EHOSTUNREACH)
      return {status::skipped, "no route to " + target.address + " (nothing can leave that way)"};
    return {status::failed, "connect to " + show(f, target) + " failed: " + std::strerror(errno)};
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return {status::failed, "no redirected connection reached " + show(f, listen) + " within " +
                                  std::to_string(timeout.count()) + "ms (connecting to " +
                                  show(f, target) + ")"};
    pollfd fds[2] = {{l.fd, POLLIN, 0}, {s.fd, POLLOUT, 0}};
    if (::poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR)
      return {status::failed, std::string("poll: ") + std::strerror(errno)};
    if (fds[0].revents & POLLIN) break;
    if (fds[1].revents & (POLLERR | POLLHUP)) {
      int err = 0;
      socklen_t elen = sizeof err;
      ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &elen);
      if (err == ENETUNREACH || err == EHOSTUNREACH)
        return {status::skipped, "no route to " + target.address + " (nothing can leave that way)"};
      return {status::failed, "connection to " + show(f, target) + " was not redirected to " +
                                  show(f, listen) + ": " + std::strerror(err)};
    }
  }
  fd_guard a{::accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC)};
  if (a.fd < 0) return {status::failed, std::string("accept: ") + std::strerror(errno)};
  sockaddr_storage orig{};
  socklen_t olen = sizeof orig;
  int rc = f == family::v4 ? ::getsockopt(a.fd, SOL_IP, so_original_dst, &orig, &olen)
                           : ::getsockopt(a.fd, SOL_IPV6, so_original_dst, &orig, &olen);
  if (rc != 0)
    return {status::failed, std::string("the accepted connection has no original destination (") +
                                std::strerror(errno) + "): it was not redirected"};
  auto got = from_sockaddr(orig);
  if (!got || got->address != target.address || got->port != target.port)
    return {status::failed, "original destination " + (got ? show(f, *got) : "?") + ", expected " +
                                show(f, target)};
  return {status::ok, show(f, target) + " redirected to " + show(f, listen) +
                          ", original destination reported correctly"};
}

}  // namespace devspaces::init
