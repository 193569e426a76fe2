// Shared by the unit tests of every layer: a fresh private directory for one test (mkdtemp under
// the temporary directory, so tests running at once never meet), removed with all in it at the end.
#pragma once

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ferry-unit-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::filesystem::filesystem_error("mkdtemp", tmpl, {});
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& rel) const { return (path / rel).string(); }
  // The names in path/rel, sorted.
  std::vector<std::string> names(const std::string& rel = "") const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path / rel))
      out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};
