// What a modulefile needs to know about an environment: kind, Python version, packages,
// activate.d scripts. Read from the tree only: nothing in the environment is run.
#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "module/module.hpp"
#include "util/util.hpp"

namespace ferry::module {
namespace {

namespace fs = std::filesystem;

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
    std::string_view header = line;
    if (util::trim(header).empty()) break;  // end of the headers
    if (header.starts_with("Name:")) p.name = util::trim(header.substr(5));
    if (header.starts_with("Version:")) p.version = util::trim(header.substr(8));
  }
  if (p.name.empty() || p.version.empty()) return std::nullopt;
  return p;
}

std::vector<Package> site_packages(const std::string& prefix) {
  std::vector<Package> out;
  std::error_code ec;
  for (const auto& lib : fs::directory_iterator(prefix + "/lib", ec)) {
    std::string py = lib.path().filename().string();
    if (!py.starts_with("python3")) continue;
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

// A conda env's python package, else pyvenv.cfg's version, else lib/python3.X.
std::string python_version(const EnvInfo& info) {
  for (const Package& p : info.packages)
    if (p.name == "python") return p.version;
  if (info.kind == env::Kind::venv)
    if (std::string v = env::pyvenv_python_version(env::read_pyvenv_cfg(info.prefix)); !v.empty())
      return v;
  return env::python_version_of_tree(info.prefix);
}

// The variables a shell script assigns at the start of a command (`NAME=`, `export NAME=`,
// `export A=1 B=2`), except those whose new value refers to their old one ($NAME, ${NAME...}):
// those are list edits (prepend/append) that the engines already reverse. Read, never run.
void scan_assignments(const std::string& script, std::set<std::string>& out,
                      std::set<std::string>& lists) {
  static const std::regex k_assign(
      R"((?:^|[\s;&|(!{])(?:export\s+|declare\s+-x\s+|readonly\s+)?([A-Za-z_][A-Za-z0-9_]*)=)");
  std::ifstream in(script);
  std::string line;
  while (std::getline(in, line)) {
    std::string code = line.substr(0, line.find('#') == 0 ? 0 : line.size());
    for (auto it = std::sregex_iterator(code.begin(), code.end(), k_assign);
         it != std::sregex_iterator(); ++it) {
      std::string name = (*it)[1].str();
      std::string rest = code.substr(static_cast<std::size_t>(it->position(0) + it->length(0)));
      bool self =
          rest.find("$" + name) != std::string::npos || rest.find("${" + name) != std::string::npos;
      (self ? lists : out).insert(name);
    }
  }
}

}  // namespace

EnvInfo describe(const std::string& prefix_arg) {
  EnvInfo info;
  info.prefix = util::absolute_path(prefix_arg);
  while (info.prefix.size() > 1 && info.prefix.back() == '/') info.prefix.pop_back();
  info.kind = env::detect_kind(info.prefix);  // throws for a missing path or a file
  if (info.kind == env::Kind::prefix)
    throw Error(
        fmt::format("{}: not an environment (no conda-meta/ and no pyvenv.cfg)", info.prefix));
  if (!fs::is_directory(info.prefix + "/bin"))
    throw Error(fmt::format("{}: not an environment (no bin/ directory)", info.prefix));
  info.packages =
      info.kind == env::Kind::conda ? conda_packages(info.prefix) : site_packages(info.prefix);
  std::sort(info.packages.begin(), info.packages.end(),
            [](const Package& a, const Package& b) { return a.name < b.name; });
  info.python_version = python_version(info);
  std::error_code ec;
  for (const auto& ent : fs::directory_iterator(info.prefix + "/etc/conda/activate.d", ec))
    if (ent.path().extension() == ".sh" && ent.is_regular_file(ec))
      info.activate_scripts.push_back(ent.path().string());
  std::sort(info.activate_scripts.begin(), info.activate_scripts.end());
  std::set<std::string> vars, lists;
  for (const std::string& script : info.activate_scripts) scan_assignments(script, vars, lists);
  // What activation itself sets, and the engines' and shells' own, are not the scripts' to keep.
  auto own = [](const std::string& v) {
    for (const char* o :
         {"PATH", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "VIRTUAL_ENV", "PYTHONHOME", "PS1", "PWD",
          "OLDPWD", "SHLVL", "_", "IFS", "LOADEDMODULES", "_LMFILES_", "MODULEPATH"})
      if (v == o) return true;
    return v.starts_with("__LMOD_") || v.starts_with("__MODULES_") ||
           v.starts_with("_ModuleTable") || v.starts_with("__FERRY_");
  };
  for (const std::string& v : vars)
    if (!own(v)) info.script_vars.push_back(v);
  for (const std::string& v : lists)
    if (!own(v) && !vars.count(v)) info.script_list_vars.push_back(v);
  if (info.kind == env::Kind::conda) {
    std::string state = info.prefix + "/conda-meta/state";
    if (fs::exists(state, ec)) {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(util::read_file(state));
      } catch (const std::exception& e) {
        throw Error(fmt::format("{}: not valid JSON: {}", state, e.what()));
      }
      if (j.contains("env_vars") && j["env_vars"].is_object())
        for (const auto& [k, v] : j["env_vars"].items()) {
          // PATH and activation's own variables stay ferry's (a module cannot set them whole and
          // still give the user's back).
          if (own(k) || !std::regex_match(k, std::regex("[A-Za-z_][A-Za-z0-9_]*")))
            throw Error(fmt::format("{}: env_vars: cannot set '{}' from a module", state, k));
          info.env_vars.emplace_back(k, v.is_string() ? v.get<std::string>() : v.dump());
        }
    }
  }
  try {
    std::string marker = info.prefix + "/.ferry/unpacked.json";
    if (fs::exists(marker, ec)) {
      nlohmann::json j = nlohmann::json::parse(util::read_file(marker));
      if (j.contains("archive") && j["archive"].is_string())
        info.unpacked_from = j["archive"].get<std::string>();
    }
  } catch (const std::exception&) {
    // an unreadable marker only loses a line of help
  }
  return info;
}

std::vector<Package> key_packages(const EnvInfo& info) {
  static constexpr std::array<std::string_view, 24> k_key = {
      "python",      "numpy",        "scipy",          "pandas", "pytorch",     "torch",
      "torchvision", "tensorflow",   "tensorflow-gpu", "jax",    "jaxlib",      "mpi4py",
      "h5py",        "scikit-learn", "matplotlib",     "cupy",   "horovod",     "dask",
      "ray",         "transformers", "deepspeed",      "numba",  "cudatoolkit", "pip"};
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
  n.version = v.empty() ? "default" : env::python_major_minor(v);
  return n;
}

}  // namespace ferry::module
