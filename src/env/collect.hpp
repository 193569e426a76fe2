// Private to env: the list of things to pack, as the collectors for each kind produce it.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <tbb/global_control.h>
#include <tbb/info.h>
#include <tbb/task_arena.h>

#include "env/env.hpp"

namespace ferry::env {

// How pass 1 decides a file's relocation record.
enum class Detect : std::uint8_t {
  none,   // archived verbatim, never relocated
  known,  // record given by the package (conda paths.json / has_prefix)
  scan,   // search for the prefix: UTF-8 text -> text record, ELF -> binary record
};

struct PackItem {
  std::string target;  // member path
  std::string source;  // absolute path to read
  format::EntryType type = format::EntryType::file;
  std::uint32_t mode = 0644;
  std::int64_t mtime_sec = 0;
  std::uint32_t mtime_nsec = 0;
  std::string link;
  Detect detect = Detect::none;
  format::RelocMode reloc = format::RelocMode::none;
  std::string placeholder;
  bool rewrite_conda_meta = false;
  std::uint64_t device = 0, inode = 0, nlink = 1;  // to store hardlinked files once
  std::uint64_t size = 0;                          // lstat's, when collected
};

struct Collection {
  Kind kind = Kind::prefix;
  std::string prefix;
  std::string python_version;
  std::vector<PackItem> items;  // sorted by target
  std::vector<std::string> warnings;
};

// Fills type/mode/mtime/link of item from lstat(source); false when source does not exist.
bool stat_item(PackItem& item);
// stat_item of every item on `jobs` threads (0: every core): an env's tens of thousands of lstat
// calls, each walking its whole path, are most of collecting it. found[i]: stat_item's answer.
std::vector<char> stat_items(std::vector<PackItem>& items, unsigned jobs);
// Walks a tree (not following symlinks): files, symlinks and empty directories, relative paths.
// skip_top names top-level entries to leave out.
std::vector<std::string> walk_tree(const std::string& root, bool (*skip_top)(const std::string&));
Collection collect_conda(const PackOptions& options, const std::string& prefix);
Collection collect_tree(const PackOptions& options, const std::string& prefix, Kind kind);

// A task arena of `jobs` threads. TBB caps its workers at the core count and warns when an arena
// asks for more; -j above the core count is legitimate (writers wait on slow file systems), so the
// cap is lifted for the arena's lifetime.
class JobArena {
 public:
  explicit JobArena(unsigned jobs)
      : m_limit(tbb::global_control::max_allowed_parallelism,
                std::max<std::size_t>(jobs,
                                      static_cast<std::size_t>(tbb::info::default_concurrency()))),
        m_arena(static_cast<int>(jobs)) {}
  template <class F>
  void execute(F&& f) {
    m_arena.execute(std::forward<F>(f));
  }

 private:
  tbb::global_control m_limit;
  tbb::task_arena m_arena;
};

}  // namespace ferry::env
