// NVIDIA's management library, loaded with dlopen when it is installed, so that ferry neither
// links against it nor needs it: it names the model and UUID when /proc/driver/nvidia is hidden
// (some containers), the NUMA node where sysfs says -1, and the device minor for the cgroup check.
#include <dlfcn.h>

#include <array>
#include <cstring>

#include <fmt/format.h>

#include "job/sysfs.hpp"

namespace ferry::job::sysfs {
namespace {

// From nvml.h: nvmlReturn_t is an int enum (0 = NVML_SUCCESS), nvmlDevice_t an opaque pointer.
using NvmlReturn = int;
using NvmlDevice = void*;
constexpr NvmlReturn k_nvml_success = 0;
constexpr unsigned k_name_size = 96;  // NVML_DEVICE_NAME_V2_BUFFER_SIZE
constexpr unsigned k_uuid_size = 96;  // NVML_DEVICE_UUID_V2_BUFFER_SIZE

using InitFn = NvmlReturn (*)();
using ErrorStringFn = const char* (*)(NvmlReturn);
using HandleByBusIdFn = NvmlReturn (*)(const char*, NvmlDevice*);
using StringFn = NvmlReturn (*)(NvmlDevice, char*, unsigned);
using UnsignedFn = NvmlReturn (*)(NvmlDevice, unsigned*);

template <typename Fn>
Fn symbol(void* library, const char* name) {
  void* address = ::dlsym(library, name);
  Fn fn = nullptr;
  static_assert(sizeof(fn) == sizeof(address));
  std::memcpy(&fn, &address, sizeof(fn));  // POSIX guarantees data and code pointers convert
  return fn;
}

}  // namespace

std::map<std::string, NvmlGpu> query_nvml(const std::vector<std::string>& pci_addresses,
                                          std::vector<std::string>& notes) {
  std::map<std::string, NvmlGpu> found;
  // The versioned soname: the unversioned one ships only with the development package. The
  // library stays loaded: unloading it under some driver versions leaves exit handlers dangling.
  void* library = ::dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    notes.push_back("NVML: libnvidia-ml.so.1 is not installed; sysfs and /proc only");
    return found;
  }
  auto init = symbol<InitFn>(library, "nvmlInit_v2");
  if (!init) init = symbol<InitFn>(library, "nvmlInit");
  auto shutdown = symbol<InitFn>(library, "nvmlShutdown");
  auto error_string = symbol<ErrorStringFn>(library, "nvmlErrorString");
  auto by_bus_id = symbol<HandleByBusIdFn>(library, "nvmlDeviceGetHandleByPciBusId_v2");
  if (!by_bus_id) by_bus_id = symbol<HandleByBusIdFn>(library, "nvmlDeviceGetHandleByPciBusId");
  auto get_name = symbol<StringFn>(library, "nvmlDeviceGetName");
  auto get_uuid = symbol<StringFn>(library, "nvmlDeviceGetUUID");
  auto get_minor = symbol<UnsignedFn>(library, "nvmlDeviceGetMinorNumber");
  auto get_numa = symbol<UnsignedFn>(library, "nvmlDeviceGetNumaNodeId");  // newer drivers only
  if (!init || !shutdown || !by_bus_id) {
    notes.push_back("NVML: libnvidia-ml.so.1 lacks nvmlInit or nvmlDeviceGetHandleByPciBusId");
    return found;
  }
  auto describe = [&](NvmlReturn rc) {
    return error_string ? std::string(error_string(rc)) : fmt::format("error {}", rc);
  };
  if (NvmlReturn rc = init(); rc != k_nvml_success) {
    notes.push_back(fmt::format("NVML: nvmlInit failed: {}", describe(rc)));
    return found;
  }
  for (const std::string& address : pci_addresses) {
    NvmlDevice device = nullptr;
    if (NvmlReturn rc = by_bus_id(address.c_str(), &device); rc != k_nvml_success) {
      notes.push_back(fmt::format("NVML: {}: {}", address, describe(rc)));
      continue;
    }
    NvmlGpu gpu;
    std::array<char, k_name_size> name{};
    if (get_name && get_name(device, name.data(), k_name_size) == k_nvml_success)
      gpu.model = name.data();
    std::array<char, k_uuid_size> uuid{};
    if (get_uuid && get_uuid(device, uuid.data(), k_uuid_size) == k_nvml_success)
      gpu.uuid = uuid.data();
    unsigned value = 0;
    if (get_minor && get_minor(device, &value) == k_nvml_success)
      gpu.minor = static_cast<int>(value);
    if (get_numa && get_numa(device, &value) == k_nvml_success)
      gpu.numa_node = static_cast<int>(value);
    found[address] = gpu;
  }
  shutdown();
  notes.push_back(fmt::format("NVML: described {} of {} GPUs", found.size(), pci_addresses.size()));
  return found;
}

}  // namespace ferry::job::sysfs
