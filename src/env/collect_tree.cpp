// venvs and install prefixes: every file, scanned for the prefix.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <memory>
#include <mutex>

#include <fmt/format.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_sort.h>
#include <tbb/task_group.h>

#include "env/collect.hpp"

namespace ferry::env {

Kind detect_kind(const std::string& prefix) {
  struct stat st {};
  if (::stat(prefix.c_str(), &st) != 0) util::throw_errno(prefix, "environment not found", errno);
  if (!S_ISDIR(st.st_mode)) throw Error(fmt::format("{}: not a directory", prefix));
  if (::access((prefix + "/conda-meta").c_str(), F_OK) == 0) return Kind::conda;
  if (::access((prefix + "/pyvenv.cfg").c_str(), F_OK) == 0) return Kind::venv;
  return Kind::prefix;
}

namespace {
// item's type, mode, times and identity from st; a symlink's target from read_link(buffer, size).
template <class ReadLink>
void fill_item(PackItem& item, const struct stat& st, ReadLink read_link) {
  item.mode = st.st_mode & 07777;
  item.device = st.st_dev;
  item.inode = st.st_ino;
  item.nlink = st.st_nlink;
  item.size = static_cast<std::uint64_t>(st.st_size);
  item.mtime_sec = st.st_mtim.tv_sec;
  item.mtime_nsec = static_cast<std::uint32_t>(st.st_mtim.tv_nsec);
  if (S_ISLNK(st.st_mode)) {
    item.type = format::EntryType::symlink;
    std::string target(4096, '\0');
    ssize_t n = read_link(target.data(), target.size());
    if (n < 0) util::throw_errno(item.source, "cannot read symlink", errno);
    target.resize(static_cast<std::size_t>(n));
    item.link = target;
  } else if (S_ISDIR(st.st_mode)) {
    item.type = format::EntryType::directory;
  } else if (S_ISREG(st.st_mode)) {
    item.type = format::EntryType::file;
  } else {
    throw Error(
        fmt::format("{}: not a regular file, directory or symlink; ferry does not pack "
                    "sockets, FIFOs or devices",
                    item.source));
  }
}
}  // namespace

bool stat_item(PackItem& item) {
  struct stat st {};
  if (::lstat(item.source.c_str(), &st) != 0) return false;
  fill_item(item, st, [&](char* buffer, std::size_t size) {
    return ::readlink(item.source.c_str(), buffer, size);
  });
  return true;
}

std::vector<char> stat_items(std::vector<PackItem>& items, unsigned jobs) {
  std::vector<char> found(items.size(), 0);
  JobArena arena(jobs ? jobs : util::default_jobs());
  arena.execute([&] {
    tbb::parallel_for(std::size_t{0}, items.size(),
                      [&](std::size_t i) { found[i] = stat_item(items[i]) ? 1 : 0; });
  });
  return found;
}

namespace {
// The walk lists each directory in a task of its own, and with_stat fills each entry's item from
// fstatat on the directory it was listed from: a file-heavy env has thousands of directories and
// tens of thousands of files, whose lstat calls, each walking the whole path, were most of a
// venv's collection time.
class TreeWalk {
 public:
  TreeWalk(const std::string& root, bool (*skip_top)(const std::string&), bool with_stat)
      : m_root(root), m_skip_top(skip_top), m_with_stat(with_stat) {}
  std::vector<PackItem> run() {
    m_tasks.run([this] { list(""); });
    m_tasks.wait();  // rethrows the first failure
    return std::move(m_out);
  }

 private:
  void list(const std::string& rel) {
    std::string dir = rel.empty() ? m_root : m_root + "/" + rel;
    DIR* d = ::opendir(dir.c_str());
    if (!d) util::throw_errno(dir, "cannot list", errno);
    std::unique_ptr<DIR, int (*)(DIR*)> closer(d, ::closedir);
    std::vector<PackItem> found;
    bool empty = true;
    while (dirent* ent = ::readdir(d)) {
      std::string name = ent->d_name;
      if (name == "." || name == "..") continue;
      if (rel.empty() && m_skip_top && m_skip_top(name)) continue;
      empty = false;
      std::string path = rel.empty() ? name : rel + "/" + name;
      struct stat st {};
      bool stated = false;
      if (m_with_stat || ent->d_type == DT_UNKNOWN)
        stated = ::fstatat(::dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
      bool is_dir = stated ? S_ISDIR(st.st_mode) : ent->d_type == DT_DIR;
      if (is_dir) {
        m_tasks.run([this, path = std::move(path)] { list(path); });
        continue;
      }
      if (m_with_stat && !stated) continue;  // vanished while walking
      PackItem& item = found.emplace_back();
      item.target = std::move(path);
      item.source = m_root + "/" + item.target;
      if (m_with_stat)
        fill_item(item, st, [&](char* buffer, std::size_t size) {
          return ::readlinkat(::dirfd(d), name.c_str(), buffer, size);
        });
    }
    if (empty && !rel.empty()) {  // an empty directory is an entry
      PackItem& item = found.emplace_back();
      item.target = rel;
      item.source = dir;
      struct stat st {};
      if (m_with_stat) {
        if (::fstat(::dirfd(d), &st) != 0) util::throw_errno(dir, "cannot stat", errno);
        fill_item(item, st, [](char*, std::size_t) { return ssize_t{-1}; });
      }
    }
    std::lock_guard<std::mutex> lock(m_mutex);
    m_out.insert(m_out.end(), std::make_move_iterator(found.begin()),
                 std::make_move_iterator(found.end()));
  }

  const std::string& m_root;
  bool (*m_skip_top)(const std::string&);
  bool m_with_stat;
  tbb::task_group m_tasks;
  std::mutex m_mutex;
  std::vector<PackItem> m_out;
};

std::vector<PackItem> walk_items(const std::string& root, bool (*skip_top)(const std::string&),
                                 bool with_stat) {
  std::vector<PackItem> items = TreeWalk(root, skip_top, with_stat).run();
  tbb::parallel_sort(items.begin(), items.end(),
                     [](const PackItem& a, const PackItem& b) { return a.target < b.target; });
  return items;
}
}  // namespace

std::vector<std::string> walk_tree(const std::string& root, bool (*skip_top)(const std::string&)) {
  std::vector<std::string> out;
  for (PackItem& item : walk_items(root, skip_top, false)) out.push_back(std::move(item.target));
  return out;
}

Collection collect_tree(const PackOptions& options, const std::string& prefix, Kind kind) {
  Collection c;
  c.kind = kind;
  c.prefix = prefix;
  c.python_version = python_version_of_tree(prefix);
  std::vector<PackItem> walked;
  JobArena arena(options.jobs ? options.jobs : util::default_jobs());
  arena.execute([&] { walked = walk_items(prefix, nullptr, true); });
  for (PackItem& item : walked) {
    if (item.type == format::EntryType::file) {
      item.detect = Detect::scan;
      item.placeholder = prefix;
    }
    c.items.push_back(std::move(item));
  }
  if (kind == Kind::venv) {
    PyvenvCfg cfg = read_pyvenv_cfg(prefix);
    if (auto home = cfg.find("home"); home != cfg.end() && !home->second.starts_with(prefix + "/"))
      c.warnings.push_back(fmt::format(
          "{}: venv is not self-contained: its base interpreter is in {} (pyvenv.cfg 'home'); "
          "the same Python must exist at that path wherever the archive is unpacked",
          prefix, home->second));
  }
  return c;
}

}  // namespace ferry::env
