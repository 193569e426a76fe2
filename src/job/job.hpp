// ferry::job — where a job runs and how to start its ranks: host lists, the allocation (scheduler,
// hosts, slots), this node's CPUs and GPUs, the machine it is (from a data file), the launch line,
// and each rank's torch.distributed variables. Built on util alone.
//
// Two layers are kept apart, as the launch research note insists:
//   allocation layer — which job, which hosts, what hardware (runs in the batch script);
//   rank layer       — which rank am I (runs inside each process the launcher starts).
// Nothing here reads the process environment or the file system behind the caller's back: the
// environment comes in as an Environ and the hardware from a sysfs root, so tests can record both.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/util.hpp"

namespace ferry::job {

using Environ = std::map<std::string, std::string>;

// The calling process's environment.
Environ current_environ();
// env[name] when set (an empty value counts as set), otherwise nullopt.
std::optional<std::string> lookup(const Environ& env, const std::string& name);

// ---------------------------------------------------------------------------------------------
// Host lists, with Slurm's grammar (src/common/hostlist.c, dims == 1)

// Expands "tux[0-5,12],login1 gpu-[1-3]x rack[1-2]-node[01-02]" in order, duplicates kept, as
// `scontrol show hostnames` does. Separators are comma, space, tab and newline outside brackets;
// zero padding takes the width of the range's low end; several bracket groups multiply out in
// Slurm's order. Throws Error (naming the expression) on malformed input. Expressions with '{'
// (Slurm's controller-side syntax) are refused: pass them to scontrol.
std::vector<std::string> expand_hostlist(std::string_view expr);

// An expression that expands back to exactly `hosts` (same order, same duplicates), as
// `scontrol show hostlist` writes it:
// consecutive hosts sharing a prefix, numeric width and suffix merge into one bracket group.
std::string compress_hostlist(const std::vector<std::string>& hosts);

// Expands Slurm's compressed count lists: "2(x3),1" -> {2, 2, 2, 1} (SLURM_TASKS_PER_NODE,
// SLURM_JOB_CPUS_PER_NODE). `what` names the variable in errors.
std::vector<unsigned> expand_count_list(std::string_view list, std::string_view what);

// ---------------------------------------------------------------------------------------------
// This node's hardware, from sysfs (root "/" normally; a recorded tree in tests)

enum class GpuVendor { nvidia, amd, intel };
std::string_view vendor_name(GpuVendor vendor);  // "nvidia", "amd", "intel"

struct Gpu {
  GpuVendor vendor = GpuVendor::nvidia;
  unsigned index = 0;        // the vendor runtime's number before any visibility variable
  std::string pci_address;   // sysfs form: "0000:07:00.0"
  std::string model;         // when known (NVIDIA /proc, NVML, KFD properties)
  std::string uuid;          // when known ("GPU-…")
  int numa_node = -1;        // -1: unknown
  std::vector<unsigned> local_cpus;  // the PCI device's local_cpulist
  unsigned tiles = 1;        // Intel: tiles (sub-devices) per card
  bool usable = true;        // false when its device node cannot be opened (cgroup)
};

// What a rank binds to: a whole GPU, or one tile when Intel's hierarchy is FLAT.
struct GpuDevice {
  unsigned gpu = 0;          // index into GpuInventory::gpus
  int tile = -1;             // Intel FLAT / "dev.sub": the tile; -1: the whole GPU
  std::string selector;      // value for the visibility variable: "3", "1.0", "GPU-<uuid>"
};

struct GpuInventory {
  std::vector<Gpu> gpus;              // every GPU found, in the vendor runtime's order
  std::vector<GpuDevice> visible;     // what the job may use, after the visibility variables
  std::string visibility_variable;    // CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES, ZE_AFFINITY_MASK
  std::string hierarchy;              // Intel: FLAT or COMPOSITE (the one in effect); else empty
  std::vector<std::string> notes;     // how the list was found, what was filtered, and why
};

struct CpuInventory {
  unsigned logical = 0;                 // online logical CPUs
  unsigned cores = 0;                   // physical cores (distinct package/core ids)
  std::vector<unsigned> allowed;        // this process's affinity (cgroup cpuset), sorted
  std::map<int, std::vector<unsigned>> numa_cpus;  // NUMA node -> CPUs
};

struct DiscoverOptions {
  std::string sysfs_root = "/";  // prefix for /sys, /proc/driver, /dev checks
  bool use_nvml = true;          // dlopen libnvidia-ml.so.1 when present (ignored with a root)
};

GpuInventory discover_gpus(const Environ& env, const DiscoverOptions& options);
CpuInventory discover_cpus(const DiscoverOptions& options);

// Parses "0-3,8,10-11" (sysfs cpulist, Slurm's cpu lists). Throws Error naming `what`.
std::vector<unsigned> parse_cpu_list(std::string_view list, std::string_view what);
// The inverse: ascending runs as "0-3,8,10-11".
std::string format_cpu_list(const std::vector<unsigned>& cpus);

}  // namespace ferry::job
