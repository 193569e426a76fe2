// This node's CPUs from sysfs: online CPUs, physical cores, this process's affinity and the NUMA
// map; and the cpulist grammar ("0-3,8,10-11") that sysfs, Slurm and the bind lists share.
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <optional>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "job/job.hpp"
#include "job/sysfs.hpp"

namespace ferry::job {
namespace {

// A list naming CPU 2^20 or beyond is a typo, not a machine (Linux's NR_CPUS tops out at 8192).
constexpr unsigned k_max_cpu = 1U << 20;

using sysfs::is_real_root;
using util::trim;

// Error messages quote the list; keep them on one line whatever the input holds.
std::string printable(std::string_view text) {
  std::string out;
  for (char c : text) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

// At most seven digits: a longer number is "not a CPU number", a shorter one past k_max_cpu "out
// of range".
std::optional<unsigned> parse_number(std::string_view s) { return util::parse_decimal(s, 9999999); }

// A cgroup's cpuset file: the process's own cgroup, else the nearest parent that has one (the
// controller's files exist only where it is enabled).
std::optional<std::vector<unsigned>> cpuset_of(const std::string& mount, std::string cgroup,
                                               const char* file) {
  while (true) {
    std::string path = mount + cgroup + (cgroup.ends_with('/') ? "" : "/") + file;
    if (auto text = sysfs::read(path); text && !text->empty()) return parse_cpu_list(*text, path);
    if (cgroup.empty() || cgroup == "/") return std::nullopt;
    cgroup = cgroup.substr(0, cgroup.rfind('/'));
  }
}

// A recorded tree carries the affinity as /proc/self/status does ("Cpus_allowed_list:\t0-1").
std::optional<std::vector<unsigned>> recorded_affinity(const std::string& root) {
  std::string path = sysfs::path(root, "proc/self/status");
  if (!sysfs::exists(path)) return std::nullopt;
  std::string status = util::read_file(path);
  constexpr std::string_view key = "Cpus_allowed_list:";
  for (std::string_view line : util::split_lines(status))
    if (line.starts_with(key))
      return parse_cpu_list(line.substr(key.size()), path + ": Cpus_allowed_list");
  return std::nullopt;
}

}  // namespace

std::vector<unsigned> parse_cpu_list(std::string_view list, std::string_view what) {
  auto fail = [&](std::string_view why) -> Error {
    return Error(fmt::format("{}: invalid CPU list '{}': {}", what, printable(trim(list)), why));
  };
  std::string_view text = trim(list);
  std::set<unsigned> cpus;
  if (text.empty()) return {};  // sysfs writes an empty line for a node without CPUs
  for (std::string_view item : util::split(text, ',')) {
    if (item.empty()) throw fail("empty entry");
    std::size_t dash = item.find('-');
    std::optional<unsigned> low = parse_number(item.substr(0, dash));
    std::optional<unsigned> high =
        dash == std::string_view::npos ? low : parse_number(item.substr(dash + 1));
    if (!low || !high)
      throw fail(fmt::format("'{}' is not a CPU number or range", printable(item)));
    if (*low > *high) throw fail(fmt::format("range '{}' runs backwards", item));
    if (*high >= k_max_cpu) throw fail(fmt::format("CPU {} is out of range", *high));
    for (unsigned cpu = *low; cpu <= *high; ++cpu) cpus.insert(cpu);
  }
  return {cpus.begin(), cpus.end()};
}

std::string format_cpu_list(const std::vector<unsigned>& cpus) {
  std::vector<unsigned> sorted = cpus;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::string out;
  for (std::size_t i = 0; i < sorted.size();) {
    std::size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j == i ? fmt::format("{}", sorted[i]) : fmt::format("{}-{}", sorted[i], sorted[j]);
    i = j + 1;
  }
  return out;
}

// sched_getaffinity with a set large enough for the kernel's CPU count (it refuses smaller ones).
std::vector<unsigned> process_affinity() {
  for (int count = 1024; count <= static_cast<int>(k_max_cpu); count *= 2) {
    cpu_set_t* set = CPU_ALLOC(count);
    std::size_t size = CPU_ALLOC_SIZE(count);
    CPU_ZERO_S(size, set);
    if (::sched_getaffinity(0, size, set) != 0) {
      int err = errno;
      CPU_FREE(set);
      if (err == EINVAL) continue;
      util::throw_errno("sched_getaffinity", "cannot read this process's CPU affinity", err);
    }
    std::vector<unsigned> cpus;
    for (int cpu = 0; cpu < count; ++cpu)
      if (CPU_ISSET_S(cpu, size, set)) cpus.push_back(static_cast<unsigned>(cpu));
    CPU_FREE(set);
    return cpus;
  }
  throw Error("sched_getaffinity: the kernel's CPU set is larger than ferry allows");
}

std::vector<unsigned> cgroup_cpuset() {
  std::string self;
  try {
    self = util::read_file("/proc/self/cgroup");
  } catch (const Error&) {
  }
  // "0::/path" is cgroup v2's line; "N:cpuset:/path" (or "N:cpu,cpuset:/path") v1's.
  for (std::string_view line : util::split_lines(self)) {
    auto first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string_view::npos || second == std::string_view::npos) continue;
    std::string_view controllers = line.substr(first + 1, second - first - 1);
    std::string cgroup(line.substr(second + 1));
    std::optional<std::vector<unsigned>> cpus;
    if (controllers.empty())
      cpus = cpuset_of("/sys/fs/cgroup", cgroup, "cpuset.cpus.effective");
    else
      for (std::string_view c : util::split(controllers, ','))
        if (c == "cpuset")
          cpus = cpuset_of("/sys/fs/cgroup/cpuset", cgroup, "cpuset.effective_cpus");
    if (cpus && !cpus->empty()) return *cpus;
  }
  std::string online = "/sys/devices/system/cpu/online";
  return parse_cpu_list(util::read_file(online), online);
}

CpuInventory discover_cpus(const DiscoverOptions& options) {
  const std::string& root = options.sysfs_root;
  CpuInventory inv;
  std::string online_path = sysfs::path(root, "sys/devices/system/cpu/online");
  std::vector<unsigned> online = parse_cpu_list(util::read_file(online_path), online_path);
  inv.logical = static_cast<unsigned>(online.size());

  // A core is a distinct (package, core id) pair; a CPU without topology files counts as its own.
  // Cores are numbered in order of their first CPU, so core_of groups SMT siblings.
  std::map<std::pair<std::string, std::string>, unsigned> cores;
  for (unsigned cpu : online) {
    std::string topology =
        sysfs::path(root, fmt::format("sys/devices/system/cpu/cpu{}/topology", cpu));
    std::optional<std::string> package = sysfs::read(topology + "/physical_package_id");
    std::optional<std::string> core = sysfs::read(topology + "/core_id");
    auto key = package && core ? std::make_pair(*package, *core)
                               : std::make_pair(std::string("cpu"), std::to_string(cpu));
    auto [it, fresh] = cores.emplace(key, static_cast<unsigned>(cores.size()));
    inv.core_of[cpu] = it->second;
  }
  inv.cores = static_cast<unsigned>(cores.size());

  // The real root asks the kernel, which applies the cgroup cpuset; a recorded tree carries its
  // proc/self/status, or else the process may use every online CPU.
  if (is_real_root(root))
    inv.allowed = process_affinity();
  else
    inv.allowed = recorded_affinity(root).value_or(online);

  // Memory-only nodes (HBM, CXL) have an empty cpulist and are left out: they hold no CPUs. A
  // kernel built without NUMA has no node directory: then everything is node 0.
  std::string node_dir = sysfs::path(root, "sys/devices/system/node");
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(node_dir, ec)) {
    std::string name = entry.path().filename().string();
    if (!name.starts_with("node")) continue;
    std::optional<unsigned> node = parse_number(std::string_view(name).substr(4));
    if (!node) continue;
    std::string path = entry.path().string() + "/cpulist";
    std::vector<unsigned> cpus = parse_cpu_list(util::read_file(path), path);
    if (!cpus.empty()) inv.numa_cpus[static_cast<int>(*node)] = std::move(cpus);
  }
  if (inv.numa_cpus.empty()) inv.numa_cpus[0] = online;
  return inv;
}

}  // namespace ferry::job
