// ferry module --conda-root: a conda installation's envs, and the --user-dirs pattern that puts
// each user's own envs and package cache (on scratch) in front of the shared ones.
#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "module/module.hpp"
#include "util/util.hpp"

namespace ferry::module {
namespace {

namespace fs = std::filesystem;

bool name_char(char c, bool first) {
  return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (!first && c >= '0' && c <= '9');
}

}  // namespace

std::vector<CondaRoot::Part> parse_user_dirs(const std::string& pattern) {
  auto bad = [&](const std::string& why) {
    return Error(fmt::format("--user-dirs '{}': {}", pattern, why), Error::Kind::usage);
  };
  if (pattern.empty() || (pattern.front() != '/' && pattern.front() != '$'))
    throw bad("must be an absolute path or start with a variable, e.g. '$SCRATCH/conda'");
  std::vector<CondaRoot::Part> parts;
  auto literal = [&](char c) {
    if (parts.empty() || parts.back().variable) parts.push_back({"", false});
    parts.back().text += c;
  };
  for (std::size_t i = 0; i < pattern.size();) {
    char c = pattern[i];
    if (c == ':' || c == ',')
      throw bad("':' and ',' separate conda's lists and cannot be in a directory");
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) throw bad("control characters");
    if (c != '$') {
      literal(c);
      ++i;
      continue;
    }
    bool braced = i + 1 < pattern.size() && pattern[i + 1] == '{';
    std::size_t start = i + (braced ? 2 : 1), end = start;
    while (end < pattern.size() && name_char(pattern[end], end == start)) ++end;
    if (end == start || (braced && (end >= pattern.size() || pattern[end] != '}')))
      throw bad("'$' must start a variable: $NAME or ${NAME}");
    parts.push_back({pattern.substr(start, end - start), true});
    i = end + (braced ? 1 : 0);
  }
  while (!parts.empty() && !parts.back().variable && parts.back().text.size() > 1 &&
         parts.back().text.back() == '/')
    parts.back().text.pop_back();
  return parts;
}

std::vector<std::string> conda_root_envs(const std::string& root_arg) {
  std::string root = util::absolute_path(root_arg);
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    throw Error(fmt::format("{}: not a conda root (not a directory)", root));
  if (!fs::is_directory(root + "/conda-meta", ec) || !fs::is_directory(root + "/bin", ec))
    throw Error(fmt::format("{}: not a conda root (no conda-meta/ or no bin/)", root));
  bool conda_pkg = false;
  for (const auto& ent : fs::directory_iterator(root + "/conda-meta", ec)) {
    std::string f = ent.path().filename().string();
    // conda-<version>-<build>.json (not conda-build-..., conda-libmamba-solver-...)
    if (f.starts_with("conda-") && f.size() > 6 && f[6] >= '0' && f[6] <= '9') conda_pkg = true;
  }
  if (!conda_pkg && !fs::is_directory(root + "/condabin", ec) &&
      !fs::is_directory(root + "/envs", ec))
    throw Error(fmt::format(
        "{}: not a conda root (no conda package in conda-meta/, no condabin/, no envs/)", root));
  std::vector<std::string> envs;
  for (const auto& ent : fs::directory_iterator(root + "/envs", ec)) {
    std::string name = ent.path().filename().string();
    if (name.empty() || name.front() == '.') continue;  // conda's own .conda_envs_dir_test
    if (fs::is_directory(ent.path() / "conda-meta", ec)) envs.push_back(ent.path().string());
  }
  std::sort(envs.begin(), envs.end());
  return envs;
}

}  // namespace ferry::module
