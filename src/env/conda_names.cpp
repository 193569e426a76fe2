// conda's `-n NAME`: an environment found by its name, in the places conda itself looks, so that
// `ferry pack -n NAME` finds what `conda pack -n NAME` would.
#include <filesystem>

#include <fmt/format.h>

#include "env/env.hpp"

namespace ferry::env {
namespace {

std::optional<std::string> value_of(const std::map<std::string, std::string>& environ,
                                    const std::string& name) {
  auto it = environ.find(name);
  if (it == environ.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

bool is_conda_env(const std::filesystem::path& dir) {
  std::error_code ec;
  return std::filesystem::is_directory(dir / "conda-meta", ec);
}

// The root (base) installation: CONDA_ROOT; else the one CONDA_EXE belongs to (ROOT/bin/conda,
// ROOT/condabin/conda); else CONDA_PREFIX when it is the root (it holds envs/) or is inside
// ROOT/envs/. Empty when none of them says.
std::string conda_root(const std::map<std::string, std::string>& environ) {
  if (auto root = value_of(environ, "CONDA_ROOT")) return *root;
  if (auto exe = value_of(environ, "CONDA_EXE"))
    return std::filesystem::path(*exe).parent_path().parent_path().string();
  if (auto prefix = value_of(environ, "CONDA_PREFIX")) {
    std::filesystem::path p(*prefix);
    std::error_code ec;
    if (std::filesystem::is_directory(p / "envs", ec)) return p.string();
    if (p.parent_path().filename() == "envs") return p.parent_path().parent_path().string();
  }
  return "";
}

}  // namespace

std::vector<std::string> conda_envs_dirs(const std::map<std::string, std::string>& environ) {
  std::vector<std::string> dirs;
  // conda's envs_dirs: the variables' entries first (CONDA_ENVS_PATH is the older name), then
  // the root's envs/, then the user's own.
  for (const char* var : {"CONDA_ENVS_DIRS", "CONDA_ENVS_PATH"})
    if (auto list = value_of(environ, var))
      for (std::string_view d : util::split(*list, ':'))
        if (!d.empty()) dirs.emplace_back(d);
  if (std::string root = conda_root(environ); !root.empty()) dirs.push_back(root + "/envs");
  if (auto home = value_of(environ, "HOME")) dirs.push_back(*home + "/.conda/envs");
  return dirs;
}

std::string find_conda_env(const std::string& name,
                           const std::map<std::string, std::string>& environ) {
  if (name.empty() || name.find('/') != std::string::npos)
    throw Error(fmt::format("-n '{}': an environment's name, not a path (use -p PATH)", name),
                Error::Kind::usage);
  std::string root = conda_root(environ);
  if (name == "base" || name == "root") {
    if (root.empty() || !is_conda_env(root))
      throw Error(fmt::format("-n {}: no conda installation found (set CONDA_EXE or CONDA_ROOT, "
                              "or use -p PATH)",
                              name),
                  Error::Kind::usage);
    return root;
  }
  std::vector<std::string> dirs = conda_envs_dirs(environ);
  for (const auto& dir : dirs)
    if (std::filesystem::path p = std::filesystem::path(dir) / name; is_conda_env(p))
      return p.string();
  // Environments made with --prefix elsewhere are listed in ~/.conda/environments.txt.
  if (auto home = value_of(environ, "HOME")) {
    std::string listed;
    try {
      listed = util::read_file(*home + "/.conda/environments.txt");
    } catch (const std::exception&) {
    }
    for (std::string_view line : util::split_lines(listed)) {
      std::filesystem::path p(std::string(util::trim(line)));
      if (p.filename() == name && is_conda_env(p)) return p.string();
    }
    dirs.push_back(*home + "/.conda/environments.txt");
  }
  throw Error(fmt::format("-n {}: no conda environment of that name in {}", name,
                          dirs.empty() ? std::string("any envs directory (none is known)")
                                       : util::join(dirs, ", ")),
              Error::Kind::usage);
}

}  // namespace ferry::env
