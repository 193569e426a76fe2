// Private to src/job: reading a sysfs tree under a root ("/" for this machine, a recorded tree in
// tests), and the optional NVML query that only the real root may make.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/util.hpp"

namespace ferry::job::sysfs {

inline bool is_real_root(const std::string& root) { return root.empty() || root == "/"; }

// <root>/<rel>; rel has no leading slash ("sys/bus/pci/devices").
inline std::string path(const std::string& root, std::string_view rel) {
  return (is_real_root(root) ? std::string("/") : root + "/") + std::string(rel);
}

inline bool exists(const std::string& file) {
  std::error_code ec;
  return std::filesystem::exists(file, ec);
}

// The file's content without surrounding blanks; nullopt when the file is absent.
inline std::optional<std::string> read(const std::string& file) {
  if (!exists(file)) return std::nullopt;
  return std::string(util::trim(util::read_file(file)));
}

// What NVML knows about one GPU; empty / -1 where it did not say.
struct NvmlGpu {
  std::string model;
  std::string uuid;
  int numa_node = -1;
  int minor = -1;
};

// Opens libnvidia-ml.so.1 with dlopen and asks about the GPUs at these PCI addresses (sysfs form).
// Never throws for a missing or failing library: it says why in notes and returns what it got.
std::map<std::string, NvmlGpu> query_nvml(const std::vector<std::string>& pci_addresses,
                                          std::vector<std::string>& notes);

}  // namespace ferry::job::sysfs
