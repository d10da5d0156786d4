#include "init/loopback.hpp"

#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace devspaces::init {

namespace {

// The kernel's struct in6_ifreq (linux/ipv6.h clashes with the libc headers).
struct in6_ifreq_compat {
  in6_addr addr;
  std::uint32_t prefixlen;
  int ifindex;
};

bool change(unsigned long request, std::string& error) {
  int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket(AF_INET6): ") + std::strerror(errno);
    return false;
  }
  in6_ifreq_compat req{};
  req.addr.s6_addr[15] = 6;
  req.prefixlen = 128;
  req.ifindex = static_cast<int>(::if_nametoindex("lo"));
  bool ok = req.ifindex > 0 && ::ioctl(fd, request, &req) == 0;
  if (!ok)
    error = std::string(request == SIOCSIFADDR ? "adding" : "removing") +
            " ::6/128 on lo: " + std::strerror(errno) +
            (errno == EPERM ? " (needs NET_ADMIN)" : "");
  ::close(fd);
  return ok;
}

}  // namespace

bool has_passthrough_v6(std::string_view text) {
  std::size_t start = 0;
  while (start < text.size()) {
    auto nl = text.find('\n', start);
    auto line = text.substr(start, nl == std::string_view::npos ? text.size() - start : nl - start);
    start = nl == std::string_view::npos ? text.size() : nl + 1;
    std::vector<std::string_view> fields;
    std::size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && line[i] == ' ') ++i;
      auto j = line.find(' ', i);
      if (j == std::string_view::npos) j = line.size();
      if (j > i) fields.push_back(line.substr(i, j - i));
      i = j;
    }
    if (fields.size() >= 6 && fields[0] == "00000000000000000000000000000006" && fields[5] == "lo")
      return true;
  }
  return false;
}

bool add_passthrough_v6(std::string& error) {
  return change(SIOCSIFADDR, error);
}

bool remove_passthrough_v6(std::string& error) {
  return change(SIOCDIFADDR, error);
}

}  // namespace devspaces::init
