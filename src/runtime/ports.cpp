// Per-job ports: derived from the job, tried before use, with a fallback when taken.
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "runtime/runtime.hpp"

namespace ferry::runtime {

namespace {
std::string count_of(unsigned n) { return n == 3 ? "three" : std::to_string(n); }
}  // namespace

unsigned choose_ports(const std::string& key, unsigned low, unsigned high,
                      const std::function<bool(unsigned)>& is_free, PortBlock block) {
  if (high < low + block.size - 1 || high > 65535 || low == 0)
    throw Error(fmt::format("--ports {}-{}: need at least {} ports in 1-65535", low, high,
                            count_of(block.size)),
                Error::Kind::usage);
  const unsigned slots = (high - low + 1) / block.size;
  const unsigned first = static_cast<unsigned>(util::xxh3(key) % slots);
  // Every slot once, starting from the key's: a small range is searched whole, a large one
  // stops after a bounded number of tries (each costs a connect or a bind per probed port).
  const unsigned tries = std::min(slots, 200u);
  for (unsigned i = 0; i < tries; ++i) {
    unsigned port = low + ((first + i) % slots) * block.size;
    bool free = true;
    for (unsigned p = port; free && p < port + block.probed; ++p) free = is_free(p);
    if (free) return port;
  }
  throw Error(fmt::format("--ports {}-{}: no {} free ports (tried {} places)", low, high,
                          count_of(block.size), tries));
}

bool port_is_free(const std::string& host, unsigned port) {
  if (host.empty()) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  if (::getaddrinfo(host.c_str(), service.c_str(), &hints, &res) != 0) return true;
  bool refused = true;
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    // A host that drops the packets must not hold ferry up: connect gives up after a second.
    timeval limit{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    refused = ::connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno == ECONNREFUSED;
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return refused;
}

std::pair<unsigned, unsigned> parse_port_range(const std::string& text) {
  auto dash = text.find('-');
  std::optional<unsigned> low, high;
  if (dash != std::string::npos) {
    low = util::parse_decimal(text.substr(0, dash), 65535);
    high = util::parse_decimal(text.substr(dash + 1), 65535);
  }
  if (!low || !high || *low > *high)
    throw Error(fmt::format("--ports {}: expected LO-HI (30000-39999)", text), Error::Kind::usage);
  return {low.value(), high.value()};
}

}  // namespace ferry::runtime
