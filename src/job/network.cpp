// Which local interface and address reach another host: where a service must listen so that the
// job's other nodes can connect (gloo, a Dask scheduler, a Ray head).
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

#include "job/job.hpp"

namespace ferry::job {
namespace {

std::string numeric_host(const sockaddr* addr, socklen_t len) {
  char text[NI_MAXHOST];
  if (::getnameinfo(addr, len, text, sizeof text, nullptr, 0, NI_NUMERICHOST) != 0) return {};
  return text;
}

bool same_address(const sockaddr* a, const sockaddr_storage& b) {
  if (a->sa_family != b.ss_family) return false;
  if (a->sa_family == AF_INET)
    return reinterpret_cast<const sockaddr_in*>(a)->sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in*>(&b)->sin_addr.s_addr;
  return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(a)->sin6_addr,
                     &reinterpret_cast<const sockaddr_in6*>(&b)->sin6_addr, 16) == 0;
}

}  // namespace

Route route_towards(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  Route route;
  if (::getaddrinfo(host.c_str(), "9", &hints, &res) != 0) return route;
  int fd = ::socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  // A UDP connect sends nothing: it only asks the kernel which source address it would use.
  if (fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
    route.address = numeric_host(reinterpret_cast<sockaddr*>(&local), len);
    ifaddrs* ifs = nullptr;
    if (::getifaddrs(&ifs) == 0) {
      for (ifaddrs* i = ifs; i; i = i->ifa_next)
        if (i->ifa_addr && same_address(i->ifa_addr, local)) {
          route.interface = i->ifa_name;
          break;
        }
      ::freeifaddrs(ifs);
    }
  }
  if (fd >= 0) ::close(fd);
  ::freeaddrinfo(res);
  return route;
}

std::string interface_address(const std::string& interface) {
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) != 0) util::throw_errno("--interface " + interface, "cannot list", errno);
  std::string v4, v6;
  for (ifaddrs* i = ifs; i; i = i->ifa_next) {
    if (!i->ifa_addr || interface != i->ifa_name) continue;
    int family = i->ifa_addr->sa_family;
    socklen_t len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    if (family == AF_INET && v4.empty()) v4 = numeric_host(i->ifa_addr, len);
    if (family == AF_INET6 && v6.empty()) v6 = numeric_host(i->ifa_addr, len);
  }
  ::freeifaddrs(ifs);
  if (!v4.empty()) return v4;
  if (!v6.empty()) return v6;
  throw Error(fmt::format("--interface {}: no such interface with an address on {}", interface,
                          util::host_name()),
              Error::Kind::usage);
}

}  // namespace ferry::job
