// Shared by the job layer's unit tests: the recorded sysfs trees of tests/fixtures/sysfs
// (written by make_trees.py) and private copies of them that a test may change.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

inline std::string recorded_tree(const std::string& machine) {
  return std::string(FERRY_FIXTURES) + "/sysfs/" + machine;
}

// A private copy of a recorded tree; removed at the end of the test.
class TreeCopy {
 public:
  explicit TreeCopy(const std::string& machine) {
    m_root = std::filesystem::temp_directory_path() /
             ("ferry-tree-" + machine + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(m_root);
    std::filesystem::copy(
        recorded_tree(machine), m_root,
        std::filesystem::copy_options::recursive | std::filesystem::copy_options::copy_symlinks);
  }
  ~TreeCopy() { std::filesystem::remove_all(m_root); }
  TreeCopy(const TreeCopy&) = delete;
  TreeCopy& operator=(const TreeCopy&) = delete;
  std::string root() const { return m_root.string(); }
  std::string path(const std::string& rel) const { return (m_root / rel).string(); }
  void remove(const std::string& rel) const { std::filesystem::remove(m_root / rel); }

 private:
  std::filesystem::path m_root;
};
