// Where ferry runs, in one call: the allocation, this node's CPUs and GPUs, the machine it is.
// What every verb that starts processes on the job's nodes begins with.
#include <netdb.h>

#include "job/job.hpp"

namespace ferry::job {
namespace {

std::string fqdn_of(const std::string& host) {
  addrinfo hints{};
  hints.ai_flags = AI_CANONNAME;
  addrinfo* res = nullptr;
  std::string out = host;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) == 0) {
    if (res->ai_canonname) out = res->ai_canonname;
    ::freeaddrinfo(res);
  }
  return out;
}

}  // namespace

Site discover_site(const SiteOptions& o) {
  Site s;
  s.env = current_environ();
  s.hostname = o.hostname.empty() ? util::host_name() : o.hostname;
  s.fqdn = o.hostname.empty() ? fqdn_of(s.hostname) : o.hostname;
  s.allocation = discover_allocation(s.env, {s.hostname.substr(0, s.hostname.find('.')), nullptr});
  DiscoverOptions d;
  d.sysfs_root = o.sysfs_root;
  s.cpus = discover_cpus(d);
  s.gpus = discover_gpus(s.env, d);
  s.machines = load_machines(s.env);
  s.machine = o.machine.empty() ? &recognise_machine(s.machines, s.env, s.hostname, s.fqdn,
                                                     s.allocation.scheduler)
                                : &find_machine(s.machines, o.machine);
  return s;
}

}  // namespace ferry::job
