// What a modulefile needs to know about an environment: kind, Python version, packages,
// activate.d scripts. Read from the tree only: nothing in the environment is run.
#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "module/module.hpp"
#include "util/util.hpp"

namespace ferry::module {
namespace {

namespace fs = std::filesystem;

std::string trim(std::string s) {
  s.erase(0, s.find_first_not_of(" \t\r"));
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.pop_back();
  return s;
}

std::vector<Package> conda_packages(const std::string& prefix) {
  std::vector<Package> out;
  std::error_code ec;
  for (const auto& ent : fs::directory_iterator(prefix + "/conda-meta", ec)) {
    if (ent.path().extension() != ".json") continue;
    try {
      nlohmann::json j = nlohmann::json::parse(util::read_file(ent.path().string()));
      if (j.contains("name") && j.contains("version") && j["name"].is_string() &&
          j["version"].is_string())
        out.push_back({j["name"].get<std::string>(), j["version"].get<std::string>()});
    } catch (const std::exception&) {
      // A record conda itself could not read: not listed (the module still works).
    }
  }
  return out;
}

// Name and Version from a METADATA / PKG-INFO file (RFC 822 headers).
std::optional<Package> read_metadata(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  Package p;
  while (std::getline(in, line)) {
    if (trim(line).empty()) break;  // end of the headers
    if (line.rfind("Name:", 0) == 0) p.name = trim(line.substr(5));
    if (line.rfind("Version:", 0) == 0) p.version = trim(line.substr(8));
  }
  if (p.name.empty() || p.version.empty()) return std::nullopt;
  return p;
}

std::vector<Package> site_packages(const std::string& prefix) {
  std::vector<Package> out;
  std::error_code ec;
  for (const auto& lib : fs::directory_iterator(prefix + "/lib", ec)) {
    std::string py = lib.path().filename().string();
    if (py.rfind("python3", 0) != 0) continue;
    for (const auto& ent : fs::directory_iterator(lib.path() / "site-packages", ec)) {
      std::string ext = ent.path().extension().string();
      std::optional<Package> p;
      if (ext == ".dist-info") p = read_metadata((ent.path() / "METADATA").string());
      if (ext == ".egg-info")
        p = read_metadata(fs::is_directory(ent.path()) ? (ent.path() / "PKG-INFO").string()
                                                       : ent.path().string());
      if (p) out.push_back(*p);
    }
  }
  return out;
}

// pyvenv.cfg `version = 3.11.7` (or `version_info`), else lib/python3.X.
std::string python_version(const EnvInfo& info) {
  for (const Package& p : info.packages)
    if (p.name == "python") return p.version;
  if (info.kind == env::Kind::venv) {
    std::ifstream cfg(info.prefix + "/pyvenv.cfg");
    std::string line;
    while (std::getline(cfg, line)) {
      std::size_t eq = line.find('=');
      if (eq == std::string::npos) continue;
      std::string key = trim(line.substr(0, eq));
      if (key == "version" || key == "version_info") return trim(line.substr(eq + 1));
    }
  }
  std::error_code ec;
  std::string best;
  for (const auto& ent : fs::directory_iterator(info.prefix + "/lib", ec)) {
    std::string name = ent.path().filename().string();
    if (name.rfind("python3.", 0) == 0 && name.find_first_not_of("0123456789.", 6) == std::string::npos)
      best = name.substr(6);
  }
  return best;
}

}  // namespace

EnvInfo describe(const std::string& prefix_arg) {
  EnvInfo info;
  info.prefix = util::absolute_path(prefix_arg);
  while (info.prefix.size() > 1 && info.prefix.back() == '/') info.prefix.pop_back();
  info.kind = env::detect_kind(info.prefix);  // throws for a missing path or a file
  if (info.kind == env::Kind::prefix)
    throw Error(fmt::format("{}: not an environment (no conda-meta/ and no pyvenv.cfg)", info.prefix));
  if (!fs::is_directory(info.prefix + "/bin"))
    throw Error(fmt::format("{}: not an environment (no bin/ directory)", info.prefix));
  info.packages = info.kind == env::Kind::conda ? conda_packages(info.prefix) : site_packages(info.prefix);
  std::sort(info.packages.begin(), info.packages.end(),
            [](const Package& a, const Package& b) { return a.name < b.name; });
  info.python_version = python_version(info);
  std::error_code ec;
  for (const auto& ent : fs::directory_iterator(info.prefix + "/etc/conda/activate.d", ec))
    if (ent.path().extension() == ".sh" && ent.is_regular_file(ec))
      info.activate_scripts.push_back(ent.path().string());
  std::sort(info.activate_scripts.begin(), info.activate_scripts.end());
  try {
    std::string marker = info.prefix + "/.ferry/unpacked.json";
    if (fs::exists(marker, ec)) {
      nlohmann::json j = nlohmann::json::parse(util::read_file(marker));
      if (j.contains("archive") && j["archive"].is_string()) info.unpacked_from = j["archive"].get<std::string>();
    }
  } catch (const std::exception&) {
    // an unreadable marker only loses a line of help
  }
  return info;
}

std::vector<Package> key_packages(const EnvInfo& info) {
  static constexpr std::array<std::string_view, 24> k_key = {
      "python", "numpy",  "scipy",   "pandas",      "pytorch",      "torch",
      "torchvision", "tensorflow", "tensorflow-gpu", "jax", "jaxlib", "mpi4py",
      "h5py",   "scikit-learn", "matplotlib", "cupy", "horovod", "dask",
      "ray",    "transformers", "deepspeed", "numba", "cudatoolkit", "pip"};
  std::vector<Package> out;
  for (std::string_view key : k_key)
    for (const Package& p : info.packages)
      if (p.name == key) out.push_back(p);
  return out;
}

Naming default_naming(const EnvInfo& info, const std::string& family) {
  Naming n;
  n.name = fs::path(info.prefix).filename().string();
  n.family = family;
  const std::string& v = info.python_version;
  std::size_t dot = v.find('.');
  std::size_t dot2 = dot == std::string::npos ? dot : v.find('.', dot + 1);
  n.version = v.empty() ? "default" : v.substr(0, dot2);
  return n;
}

}  // namespace ferry::module
