// This node's GPUs without vendor tools (launch research note §4): PCI display devices from sysfs,
// each vendor's own tree for detail and order (NVIDIA /proc, AMD KFD topology, Intel DRM tiles),
// whether the device node opens (cgroup device limits), then the visibility variables.
//
// Numbering. Gpu::index is the vendor runtime's number for the GPU on an unrestricted node
// (nvidia-smi's PCI order, the KFD node order, Level Zero's PCI order). The runtimes skip devices
// whose node they cannot open, so inside a cgroup they number only the usable GPUs, and Slurm
// with ConstrainDevices sets CUDA_VISIBLE_DEVICES=0,1 for "the first two I may use". The
// visibility variables are therefore read against the usable GPUs, and GpuDevice::selector is what
// selects the device in this process's numbering (equal to index when every GPU is usable).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "job/job.hpp"
#include "job/sysfs.hpp"

namespace ferry::job {
namespace {

constexpr unsigned k_vendor_nvidia = 0x10de;
constexpr unsigned k_vendor_amd = 0x1002;
constexpr unsigned k_vendor_intel = 0x8086;

// Intel's discrete data-centre GPUs by PCI device id (launch note §4.1). An Intel display device
// that is not listed is kept only when it sits off bus 0: integrated GPUs are always the root
// complex's device 00:02.0, discrete cards are behind a root port. That fallback is a heuristic;
// add ids here as machines arrive.
struct IntelFamily {
  unsigned first;
  unsigned last;
  std::string_view model;
};
constexpr std::array<IntelFamily, 1> k_intel_discrete = {{
    {0x0bd0, 0x0bdb, "Intel Data Center GPU Max (Ponte Vecchio)"},
}};

struct PciDevice {
  std::string address;  // "0000:07:00.0"
  std::string dir;      // its sysfs directory
  unsigned vendor = 0;
  unsigned device = 0;
  unsigned class_code = 0;
  std::string driver;  // the bound driver's name; empty when none
  int numa_node = -1;
  std::vector<unsigned> local_cpus;
};

// A GPU as found, with the device node that the runtime opens ("dev/nvidia0"; empty: unknown)
// and, when it cannot be used, why.
struct Found {
  Gpu gpu;
  std::string device_node;
  std::string unusable_reason;
};

std::string hex(unsigned value, int width) { return fmt::format("0x{:0{}x}", value, width); }

std::string count_gpus(std::size_t n) { return n == 1 ? "1 GPU" : fmt::format("{} GPUs", n); }

// A PCI id as sysfs writes it: "0x10de".
unsigned read_hex(const std::string& file) {
  std::optional<std::string> text = sysfs::read(file);
  if (!text) throw Error(fmt::format("{}: missing", file));
  std::string_view digits = *text;
  if (digits.starts_with("0x") || digits.starts_with("0X")) digits.remove_prefix(2);
  std::optional<std::uint64_t> value = util::parse_hex64(digits);
  if (!value || *value > 0xffffffffU)
    throw Error(fmt::format("{}: not a hexadecimal number: '{}'", file, *text));
  return static_cast<unsigned>(*value);
}

// Signed, unlike util's parsers for counts: numa_node reads -1 where the platform does not say.
std::optional<long long> parse_integer(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (*end != '\0' || errno != 0) return std::nullopt;
  return value;
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Names "<prefix><number>" in dir, by number ("gt0", "tile1", "renderD128").
std::vector<unsigned> numbered_entries(const std::string& dir, std::string_view prefix) {
  std::vector<unsigned> numbers;
  for (const std::string& name : list_dir(dir)) {
    if (!name.starts_with(prefix)) continue;
    std::optional<unsigned> n =
        util::parse_decimal(std::string_view(name).substr(prefix.size()), UINT_MAX);
    if (n) numbers.push_back(*n);
  }
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

// Every PCI display controller (class 0x03xxxx: VGA 0x0300, 3D 0x0302, display 0x0380), by address.
std::vector<PciDevice> display_devices(const std::string& root, std::vector<std::string>& notes) {
  std::string devices = sysfs::path(root, "sys/bus/pci/devices");
  std::vector<PciDevice> found;
  if (!sysfs::exists(devices)) notes.push_back(devices + " is missing: no PCI devices to look at");
  for (const std::string& address : list_dir(devices)) {
    PciDevice pci;
    pci.address = address;
    pci.dir = devices + "/" + address;
    pci.class_code = read_hex(pci.dir + "/class");
    if ((pci.class_code >> 16) != 0x03) continue;
    pci.vendor = read_hex(pci.dir + "/vendor");
    pci.device = read_hex(pci.dir + "/device");
    std::error_code ec;
    std::filesystem::path driver = std::filesystem::read_symlink(pci.dir + "/driver", ec);
    if (!ec) pci.driver = driver.filename().string();
    if (std::optional<std::string> numa = sysfs::read(pci.dir + "/numa_node"))
      pci.numa_node = static_cast<int>(parse_integer(*numa).value_or(-1));
    if (std::optional<std::string> cpus = sysfs::read(pci.dir + "/local_cpulist"))
      pci.local_cpus = parse_cpu_list(*cpus, pci.dir + "/local_cpulist");
    found.push_back(std::move(pci));
  }
  // PCI order. The bus, device and function are fixed-width hex and sort as text; the domain
  // can be wider than four digits (Intel VMD's 10000), so it is compared as a number.
  auto key = [](const std::string& address) {
    std::size_t colon = std::min(address.find(':'), address.size());
    return std::make_pair(util::parse_hex64(address.substr(0, colon)).value_or(0),
                          address.substr(colon));
  };
  std::stable_sort(found.begin(), found.end(), [&](const PciDevice& a, const PciDevice& b) {
    return key(a.address) < key(b.address);
  });
  return found;
}

Gpu gpu_from_pci(GpuVendor vendor, const PciDevice& pci) {
  Gpu gpu;
  gpu.vendor = vendor;
  gpu.pci_address = pci.address;
  gpu.numa_node = pci.numa_node;
  gpu.local_cpus = pci.local_cpus;
  return gpu;
}

// A renderD<minor> entry under the PCI device's drm directory.
std::string render_node_of(const PciDevice& pci) {
  std::vector<unsigned> minors = numbered_entries(pci.dir + "/drm", "renderD");
  return minors.empty() ? "" : fmt::format("dev/dri/renderD{}", minors.front());
}

std::string wrong_driver(const PciDevice& pci, std::initializer_list<std::string_view> expected) {
  for (std::string_view name : expected)
    if (pci.driver == name) return "";
  std::vector<std::string> names(expected.begin(), expected.end());
  std::string want = util::join(names, " or ");
  return pci.driver.empty() ? fmt::format("no driver is bound (expected {})", want)
                            : fmt::format("bound to {}, not {}", pci.driver, want);
}

std::vector<Found> nvidia_gpus(const std::vector<PciDevice>& pcis, const DiscoverOptions& options,
                               std::vector<std::string>& notes) {
  std::vector<Found> found;
  unsigned from_proc = 0;
  for (const PciDevice& pci : pcis) {
    if (pci.vendor != k_vendor_nvidia) continue;
    Found f{gpu_from_pci(GpuVendor::nvidia, pci), "", wrong_driver(pci, {"nvidia"})};
    std::string info_path =
        sysfs::path(options.sysfs_root, "proc/driver/nvidia/gpus/" + pci.address + "/information");
    if (sysfs::exists(info_path)) {
      // "Model: \t\t NVIDIA A100-SXM4-40GB" lines.
      std::map<std::string, std::string> info =
          util::key_value_lines(util::read_file(info_path), ':');
      f.gpu.model = info["Model"];
      f.gpu.uuid = info["GPU UUID"];
      if (std::optional<unsigned> minor = util::parse_decimal(info["Device Minor"], INT_MAX))
        f.device_node = fmt::format("dev/nvidia{}", *minor);
      ++from_proc;
    }
    found.push_back(std::move(f));
  }
  if (found.empty()) return found;
  notes.push_back(fmt::format(
      "NVIDIA: {} in PCI order (nvidia-smi's; CUDA agrees with CUDA_DEVICE_ORDER=PCI_BUS_ID), "
      "{} described by /proc/driver/nvidia",
      count_gpus(found.size()), from_proc));

  // NVML only on this machine: a recorded tree says nothing about the library that is loaded.
  if (sysfs::is_real_root(options.sysfs_root) && options.use_nvml) {
    std::vector<std::string> addresses;
    for (const Found& f : found) addresses.push_back(f.gpu.pci_address);
    std::map<std::string, sysfs::NvmlGpu> nvml = sysfs::query_nvml(addresses, notes);
    for (Found& f : found) {
      auto it = nvml.find(f.gpu.pci_address);
      if (it == nvml.end()) continue;
      if (f.gpu.model.empty()) f.gpu.model = it->second.model;
      if (f.gpu.uuid.empty()) f.gpu.uuid = it->second.uuid;
      if (f.gpu.numa_node < 0) f.gpu.numa_node = it->second.numa_node;
      if (f.device_node.empty() && it->second.minor >= 0)
        f.device_node = fmt::format("dev/nvidia{}", it->second.minor);
    }
  }
  return found;
}

// gfx_target_version 90010 -> "gfx90a" (major, minor and stepping; the last two in hex).
std::string gfx_target(unsigned long long version) {
  if (version == 0) return "";
  return fmt::format("gfx{}{:x}{:x}", version / 10000, (version / 100) % 100, version % 100);
}

// A KFD node's properties file: "%s %llu" lines ("location_id 49408"). The number is read as
// ROCr's sscanf reads "%llu" (strtoull's rule: what follows the digits is ignored), not by util's
// strict parser.
std::map<std::string, unsigned long long> kfd_properties(const std::string& file) {
  std::map<std::string, unsigned long long> props;
  std::string text = util::read_file(file);
  for (std::string_view line : util::split_lines(text)) {
    std::size_t space = line.find(' ');
    if (space != std::string_view::npos)
      props[std::string(line.substr(0, space))] =
          std::strtoull(std::string(util::trim(line.substr(space + 1))).c_str(), nullptr, 10);
  }
  return props;
}

// AMD: the KFD topology, as ROCr reads it (libhsakmt/src/topology.c). A node whose gpu_id is 0
// is a CPU; the GPUs, in node order, are ROCr's devices 0, 1, ...
std::vector<Found> amd_gpus(const std::vector<PciDevice>& pcis, const std::string& root,
                            std::vector<std::string>& notes) {
  std::map<std::string, const PciDevice*> amd_pci;
  for (const PciDevice& pci : pcis)
    if (pci.vendor == k_vendor_amd) amd_pci[pci.address] = &pci;
  std::vector<Found> found;
  std::string nodes = sysfs::path(root, "sys/devices/virtual/kfd/kfd/topology/nodes");
  std::vector<unsigned> node_numbers = numbered_entries(nodes, "");
  for (unsigned node : node_numbers) {
    std::string dir = fmt::format("{}/{}", nodes, node);
    std::optional<std::string> gpu_id;
    try {
      gpu_id = sysfs::read(dir + "/gpu_id");
    } catch (const Error&) {
      continue;  // ROCr too takes an unreadable gpu_id (EPERM) as "not supported"
    }
    if (!gpu_id || *gpu_id == "0") continue;
    std::map<std::string, unsigned long long> props = kfd_properties(dir + "/properties");
    unsigned long long location = props["location_id"];
    std::string address = fmt::format("{:04x}:{:02x}:{:02x}.{:x}", props["domain"], location >> 8,
                                      (location >> 3) & 0x1f, location & 7);
    Found f;
    auto it = amd_pci.find(address);
    if (it != amd_pci.end()) {
      f.gpu = gpu_from_pci(GpuVendor::amd, *it->second);
      amd_pci.erase(it);
    } else {
      f.gpu.vendor = GpuVendor::amd;
      f.gpu.pci_address = address;
      notes.push_back(
          fmt::format("AMD: KFD node {} is at {}, which sysfs does not list: NUMA "
                      "node and local CPUs unknown",
                      node, address));
    }
    f.gpu.model = gfx_target(props["gfx_target_version"]);
    if (props["unique_id"] != 0) f.gpu.uuid = fmt::format("GPU-{:016X}", props["unique_id"]);
    unsigned long long minor = props["drm_render_minor"];
    if (minor != 0)
      f.device_node = fmt::format("dev/dri/renderD{}", minor);
    else
      f.unusable_reason = "KFD gives it no render node";
    found.push_back(std::move(f));
  }
  if (!found.empty()) {
    notes.push_back(
        fmt::format("AMD: {} in KFD topology order (ROCr's)", count_gpus(found.size())));
    for (const auto& [address, pci] : amd_pci)
      notes.push_back(fmt::format("AMD: {} is not in the KFD topology: left out", address));
    return found;
  }
  // No KFD topology (amdgpu without KFD, or /sys/devices/virtual not visible): PCI order.
  for (const auto& [address, pci] : amd_pci) {
    Found f{gpu_from_pci(GpuVendor::amd, *pci), render_node_of(*pci),
            wrong_driver(*pci, {"amdgpu"})};
    found.push_back(std::move(f));
  }
  if (!found.empty())
    notes.push_back(fmt::format("AMD: no KFD topology; {} in PCI order", count_gpus(found.size())));
  return found;
}

std::optional<std::string_view> intel_family(unsigned device) {
  for (const IntelFamily& family : k_intel_discrete)
    if (device >= family.first && device <= family.last) return family.model;
  return std::nullopt;
}

// Tiles: xe puts tile<k> under the PCI device, i915 puts gt/gt<k> under each DRM card.
unsigned intel_tiles(const PciDevice& pci) {
  std::vector<unsigned> tiles = numbered_entries(pci.dir, "tile");
  if (!tiles.empty()) return static_cast<unsigned>(tiles.size());
  for (unsigned card : numbered_entries(pci.dir + "/drm", "card")) {
    std::vector<unsigned> gts =
        numbered_entries(fmt::format("{}/drm/card{}/gt", pci.dir, card), "gt");
    if (!gts.empty()) return static_cast<unsigned>(gts.size());
  }
  return 1;
}

std::vector<Found> intel_gpus(const std::vector<PciDevice>& pcis, std::vector<std::string>& notes) {
  std::vector<Found> found;
  for (const PciDevice& pci : pcis) {
    if (pci.vendor != k_vendor_intel) continue;
    std::optional<std::string_view> family = intel_family(pci.device);
    std::size_t colon = pci.address.find(':');
    bool root_bus = colon != std::string::npos &&
                    std::string_view(pci.address).substr(colon).starts_with(":00:");
    if (!family && root_bus) {
      notes.push_back(fmt::format("Intel: {} (device {}) is an integrated GPU: left out",
                                  pci.address, hex(pci.device, 4)));
      continue;
    }
    if (!family)
      notes.push_back(
          fmt::format("Intel: {} (device {}) is not in ferry's table of discrete GPUs; "
                      "kept because it is off the root bus",
                      pci.address, hex(pci.device, 4)));
    Found f{gpu_from_pci(GpuVendor::intel, pci), render_node_of(pci),
            wrong_driver(pci, {"i915", "xe"})};
    f.gpu.model = std::string(family.value_or(""));
    f.gpu.tiles = intel_tiles(pci);
    found.push_back(std::move(f));
  }
  if (!found.empty())
    notes.push_back(
        fmt::format("Intel: {} in PCI order (Level Zero's with "
                    "ZE_ENABLE_PCI_ID_DEVICE_ORDER=1)",
                    count_gpus(found.size())));
  return found;
}

// "" when the runtime could open the device node; otherwise why not. On this machine: open(2),
// as ROCr and CUDA do (a cgroup device rule answers EPERM, a missing node ENOENT). In a recorded
// tree the node's presence stands for "opens".
std::string check_device_node(const std::string& root, const std::string& node) {
  std::string file = sysfs::path(root, node);
  if (!sysfs::is_real_root(root)) return sysfs::exists(file) ? "" : file + " is not in the tree";
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd >= 0) {
    ::close(fd);
    return "";
  }
  return fmt::format("{} cannot be opened ({})", file, std::strerror(errno));
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// The device whose UUID starts with token (case aside); nullopt when none or several do.
std::optional<unsigned> by_uuid_prefix(std::string_view token,
                                       const std::vector<const Gpu*>& devices) {
  std::optional<unsigned> match;
  std::string want = lower(std::string(token));
  for (unsigned i = 0; i < devices.size(); ++i) {
    if (devices[i]->uuid.empty() || !lower(devices[i]->uuid).starts_with(want)) continue;
    if (match) return std::nullopt;
    match = i;
  }
  return match;
}

// A list entry that numbers a device: decimal digits naming one of count devices. At most eight
// digits: a longer entry names no device, even when zero-padded.
std::optional<unsigned> device_number(std::string_view token, std::size_t count) {
  if (token.size() > 8 || count == 0) return std::nullopt;
  return util::parse_decimal(token, static_cast<unsigned>(count - 1));
}

// CUDA_VISIBLE_DEVICES (CUDA Programming Guide, "CUDA Environment Variables"): indices or GPU-UUID
// prefixes in list order; the first invalid entry ends the list. MIG-… entries name MIG instances,
// which ferry does not resolve: they end the list too, with a note. A repeated GPU is skipped.
std::vector<unsigned> cuda_selection(const std::string& variable, const std::string& value,
                                     const std::vector<const Gpu*>& devices,
                                     std::vector<std::string>& notes) {
  std::vector<unsigned> chosen;
  for (std::string_view raw : util::split(value, ',')) {
    std::string_view token = util::trim(raw);
    std::optional<unsigned> pick = device_number(token, devices.size());
    if (!pick && token.starts_with("GPU-")) pick = by_uuid_prefix(token, devices);
    if (!pick) {
      notes.push_back(fmt::format(
          "{}: '{}' {}; it and the rest of the list are ignored, as CUDA does", variable, token,
          token.starts_with("MIG-") ? "is a MIG instance, not resolved here" : "names no GPU"));
      break;
    }
    if (std::find(chosen.begin(), chosen.end(), *pick) != chosen.end()) continue;
    chosen.push_back(*pick);
  }
  return chosen;
}

// ROCR_VISIBLE_DEVICES, as ROCr's RvdFilter reads it (src/core/runtime/amd_filter_device.cpp):
// empty means no GPU; tokens are trimmed and upper-cased; "G…" is a unique GPU-<hex> prefix,
// anything else a strtol(…, 0) number (so "0x1" and "01" count, unlike CUDA's and HIP's decimal
// indices); a bad or repeated entry ends the list; at most as many entries as GPUs are read.
std::vector<unsigned> rocr_selection(const std::string& value,
                                     const std::vector<const Gpu*>& devices,
                                     std::vector<std::string>& notes) {
  std::vector<unsigned> chosen;
  std::vector<std::string_view> tokens = util::split(value, ',');
  if (!tokens.empty() && tokens.back().empty()) tokens.pop_back();  // getline drops a trailing ""
  for (std::size_t i = 0; i < tokens.size() && i < devices.size(); ++i) {
    std::string token(util::trim(tokens[i]));
    std::transform(token.begin(), token.end(), token.begin(),
                   [](unsigned char c) { return std::toupper(c); });
    std::optional<unsigned> pick;
    if (!token.empty() && token[0] == 'G') {
      if (token.size() >= 5 && token.size() <= 20) pick = by_uuid_prefix(token, devices);
    } else {
      char* end = nullptr;
      long index = std::strtol(token.c_str(), &end, 0);
      if (*end == '\0' && index >= 0 && static_cast<std::size_t>(index) < devices.size())
        pick = static_cast<unsigned>(index);
    }
    bool repeated = pick && std::find(chosen.begin(), chosen.end(), *pick) != chosen.end();
    if (!pick || repeated) {
      notes.push_back(
          fmt::format("ROCR_VISIBLE_DEVICES: '{}' {}; it and the rest of the list are "
                      "ignored, as ROCr does",
                      token, repeated ? "repeats a GPU" : "names no GPU"));
      break;
    }
    chosen.push_back(*pick);
  }
  return chosen;
}

// HIP_VISIBLE_DEVICES, or CUDA_VISIBLE_DEVICES when HIP's is empty or unset, as HIP (ROCclr's
// rocdevice.cpp) reads it, over the devices ROCr exposes: an empty value filters nothing; entries
// are exact decimal indices or contain "GPU-"; the first invalid entry ends the list; repeats are
// skipped.
std::vector<unsigned> hip_selection(const std::string& variable, const std::string& value,
                                    const std::vector<const Gpu*>& devices,
                                    std::vector<std::string>& notes) {
  std::vector<unsigned> chosen;
  for (std::string_view token : util::split(value, ',')) {
    std::optional<unsigned> pick;
    std::size_t gpu = token.find("GPU-");
    if (gpu != std::string_view::npos)
      pick = by_uuid_prefix(token.substr(gpu), devices);
    else if (token == "0" || !token.starts_with('0'))  // no leading zeros
      pick = device_number(token, devices.size());
    if (!pick) {
      notes.push_back(
          fmt::format("{}: '{}' names no GPU; it and the rest of the list are ignored, "
                      "as HIP does",
                      variable, token));
      break;
    }
    if (std::find(chosen.begin(), chosen.end(), *pick) == chosen.end()) chosen.push_back(*pick);
  }
  return chosen;
}

std::string joined(const std::vector<unsigned>& picks) {
  std::vector<std::string> numbers;
  for (unsigned p : picks) numbers.push_back(std::to_string(p));
  return util::join(numbers, ",");
}

// NVIDIA and AMD: the usable GPUs, filtered. usable[i] is the position in gpus of runtime device i.
void select_nvidia_amd(GpuInventory& inv, const std::vector<unsigned>& usable, const Environ& env) {
  std::vector<const Gpu*> devices;
  for (unsigned pos : usable) devices.push_back(&inv.gpus[pos]);
  std::vector<unsigned> picks(usable.size());
  for (unsigned i = 0; i < picks.size(); ++i) picks[i] = i;
  GpuVendor vendor = inv.gpus.front().vendor;

  if (vendor == GpuVendor::nvidia) {
    inv.visibility_variable = "CUDA_VISIBLE_DEVICES";
    if (std::optional<std::string> value = lookup(env, "CUDA_VISIBLE_DEVICES")) {
      picks = value->empty() ? std::vector<unsigned>()
                             : cuda_selection("CUDA_VISIBLE_DEVICES", *value, devices, inv.notes);
      inv.notes.push_back(
          fmt::format("CUDA_VISIBLE_DEVICES='{}' leaves devices [{}]", *value, joined(picks)));
    }
  } else {
    inv.visibility_variable = "ROCR_VISIBLE_DEVICES";
    if (std::optional<std::string> value = lookup(env, "ROCR_VISIBLE_DEVICES")) {
      picks = value->empty() ? std::vector<unsigned>() : rocr_selection(*value, devices, inv.notes);
      inv.notes.push_back(
          fmt::format("ROCR_VISIBLE_DEVICES='{}' leaves ROCr devices [{}]", *value, joined(picks)));
    }
    std::string hip_variable = "HIP_VISIBLE_DEVICES";
    std::string hip = lookup(env, hip_variable).value_or("");
    if (hip.empty()) {
      hip_variable = "CUDA_VISIBLE_DEVICES";
      hip = lookup(env, hip_variable).value_or("");
    }
    if (!hip.empty()) {
      std::vector<const Gpu*> exposed;
      for (unsigned p : picks) exposed.push_back(devices[p]);
      std::vector<unsigned> relative = hip_selection(hip_variable, hip, exposed, inv.notes);
      std::vector<unsigned> narrowed;
      for (unsigned r : relative) narrowed.push_back(picks[r]);
      picks = narrowed;
      inv.notes.push_back(
          fmt::format("{}='{}' counts within ROCr's devices and leaves [{}]; a launcher that sets "
                      "ROCR_VISIBLE_DEVICES per rank must unset it",
                      hip_variable, hip, joined(picks)));
    }
  }
  for (unsigned p : picks) {
    const Gpu& gpu = inv.gpus[usable[p]];
    // A UUID survives index remapping (MPS, cgroups); ROCr's numbers are its documented form.
    std::string selector =
        vendor == GpuVendor::nvidia && !gpu.uuid.empty() ? gpu.uuid : std::to_string(p);
    inv.visible.push_back(GpuDevice{usable[p], -1, selector});
  }
}

// Intel: ZE_FLAT_DEVICE_HIERARCHY and ZE_AFFINITY_MASK, as Level Zero's NEO driver reads them
// (shared/source/execution_environment/execution_environment.cpp):
//   FLAT (the default for PVC when unset or unrecognised) and COMBINED expose every tile as a
//   device: tile t of card c is device (tiles of cards before c) + t, and the selector is that
//   number. Mask entries are device numbers, taken in mask order; "X.Y" entries and numbers past
//   the end are skipped (not list-ending, unlike CUDA).
//   COMPOSITE exposes cards with their tiles as sub-devices: "X" selects card X whole (selector
//   "X", tile -1), "X.Y" tile Y of card X (selector "X.Y"); the result is in card order.
// An empty mask filters nothing. A card with one tile is a whole GPU (tile -1) in both modes.
void select_intel(GpuInventory& inv, const std::vector<unsigned>& usable, const Environ& env) {
  inv.visibility_variable = "ZE_AFFINITY_MASK";
  std::optional<std::string> mode = lookup(env, "ZE_FLAT_DEVICE_HIERARCHY");
  inv.hierarchy = mode && (*mode == "COMPOSITE" || *mode == "COMBINED") ? *mode : "FLAT";
  if (!mode)
    inv.notes.push_back(
        "ZE_FLAT_DEVICE_HIERARCHY is unset: Level Zero's default, FLAT (one device "
        "per tile)");
  else if (*mode != inv.hierarchy)
    inv.notes.push_back(
        fmt::format("ZE_FLAT_DEVICE_HIERARCHY='{}' is not FLAT, COMPOSITE or "
                    "COMBINED: Level Zero uses its default, FLAT",
                    *mode));
  std::string mask = lookup(env, "ZE_AFFINITY_MASK").value_or("");
  bool flat = inv.hierarchy != "COMPOSITE";

  if (flat) {
    std::vector<GpuDevice> devices;
    for (unsigned pos : usable) {
      unsigned tiles = inv.gpus[pos].tiles;
      for (unsigned t = 0; t < tiles; ++t)
        devices.push_back(
            GpuDevice{pos, tiles > 1 ? static_cast<int>(t) : -1, std::to_string(devices.size())});
    }
    if (mask.empty()) {
      inv.visible = devices;
      return;
    }
    std::set<std::size_t> seen;
    for (std::string_view raw : util::split(mask, ',')) {
      std::string_view entry = util::trim(raw);
      std::optional<unsigned> k = device_number(entry, devices.size());
      if (!k) {
        inv.notes.push_back(fmt::format("ZE_AFFINITY_MASK: '{}' names no {} device: skipped", entry,
                                        inv.hierarchy));
        continue;
      }
      if (seen.insert(*k).second) inv.visible.push_back(devices[*k]);
    }
    return;
  }

  // COMPOSITE: per card, the whole card or a set of tiles.
  std::vector<bool> whole(usable.size(), false);
  std::vector<std::set<unsigned>> tiles(usable.size());
  if (mask.empty()) whole.assign(usable.size(), true);
  for (std::string_view raw :
       mask.empty() ? std::vector<std::string_view>() : util::split(mask, ',')) {
    std::string_view entry = util::trim(raw);
    std::size_t dot = entry.find('.');
    std::optional<unsigned> card = device_number(entry.substr(0, dot), usable.size());
    std::optional<unsigned> tile;
    if (card && dot != std::string_view::npos)
      tile = device_number(entry.substr(dot + 1), inv.gpus[usable[*card]].tiles);
    if (!card || (dot != std::string_view::npos && !tile)) {
      inv.notes.push_back(
          fmt::format("ZE_AFFINITY_MASK: '{}' names no COMPOSITE device or tile: skipped", entry));
      continue;
    }
    if (tile)
      tiles[*card].insert(*tile);
    else
      whole[*card] = true;
  }
  for (unsigned c = 0; c < usable.size(); ++c) {
    if (whole[c] || (inv.gpus[usable[c]].tiles == 1 && !tiles[c].empty())) {
      inv.visible.push_back(GpuDevice{usable[c], -1, std::to_string(c)});
      continue;
    }
    for (unsigned t : tiles[c])
      inv.visible.push_back(GpuDevice{usable[c], static_cast<int>(t), fmt::format("{}.{}", c, t)});
  }
}

}  // namespace

std::string_view vendor_name(GpuVendor vendor) {
  switch (vendor) {
    case GpuVendor::nvidia: return "nvidia";
    case GpuVendor::amd: return "amd";
    case GpuVendor::intel: return "intel";
  }
  return "unknown";
}

GpuInventory discover_gpus(const Environ& env, const DiscoverOptions& options) {
  GpuInventory inv;
  std::vector<PciDevice> pcis = display_devices(options.sysfs_root, inv.notes);
  for (const PciDevice& pci : pcis)
    if (pci.vendor != k_vendor_nvidia && pci.vendor != k_vendor_amd && pci.vendor != k_vendor_intel)
      inv.notes.push_back(
          fmt::format("{}: display device of vendor {} (class {}): not a compute "
                      "GPU, left out",
                      pci.address, hex(pci.vendor, 4), hex(pci.class_code, 6)));

  // One vendor per node: its runtime and visibility variable. Mixed nodes are rare; the first of
  // NVIDIA, AMD, Intel with a GPU wins and the others are named in the notes.
  std::vector<Found> found;
  for (GpuVendor vendor : {GpuVendor::nvidia, GpuVendor::amd, GpuVendor::intel}) {
    std::vector<std::string> vendor_notes;
    std::vector<Found> these =
        vendor == GpuVendor::nvidia ? nvidia_gpus(pcis, options, vendor_notes)
        : vendor == GpuVendor::amd  ? amd_gpus(pcis, options.sysfs_root, vendor_notes)
                                    : intel_gpus(pcis, vendor_notes);
    if (!found.empty() && !these.empty()) {
      inv.notes.push_back(fmt::format("{} of {} ignored: this node's GPUs are {}",
                                      count_gpus(these.size()), vendor_name(vendor),
                                      vendor_name(found.front().gpu.vendor)));
      continue;
    }
    inv.notes.insert(inv.notes.end(), vendor_notes.begin(), vendor_notes.end());
    if (found.empty()) found = std::move(these);
  }
  if (found.empty()) {
    inv.notes.push_back("no GPUs found");
    return inv;
  }

  std::vector<unsigned> usable;  // positions in inv.gpus, in runtime order
  for (Found& f : found) {
    if (f.unusable_reason.empty() && !f.device_node.empty())
      f.unusable_reason = check_device_node(options.sysfs_root, f.device_node);
    else if (f.unusable_reason.empty())
      inv.notes.push_back(fmt::format("{}: device node unknown, not checked", f.gpu.pci_address));
    f.gpu.index = static_cast<unsigned>(inv.gpus.size());
    f.gpu.usable = f.unusable_reason.empty();
    if (f.gpu.usable)
      usable.push_back(f.gpu.index);
    else
      inv.notes.push_back(fmt::format("{}: not usable: {}", f.gpu.pci_address, f.unusable_reason));
    inv.gpus.push_back(std::move(f.gpu));
  }
  if (usable.size() != inv.gpus.size())
    inv.notes.push_back(fmt::format("{} of {} usable; visibility variables count the usable ones",
                                    usable.size(), count_gpus(inv.gpus.size())));

  if (inv.gpus.front().vendor == GpuVendor::intel)
    select_intel(inv, usable, env);
  else
    select_nvidia_amd(inv, usable, env);
  return inv;
}

}  // namespace ferry::job
