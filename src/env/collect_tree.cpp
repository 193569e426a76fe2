// venvs and install prefixes: every file, scanned for the prefix.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>
#include <tbb/parallel_for.h>

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

bool stat_item(PackItem& item) {
  struct stat st {};
  if (::lstat(item.source.c_str(), &st) != 0) return false;
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
    ssize_t n = ::readlink(item.source.c_str(), target.data(), target.size());
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
void walk(const std::string& root, const std::string& rel, std::vector<std::string>& out,
          bool (*skip_top)(const std::string&)) {
  std::string dir = rel.empty() ? root : root + "/" + rel;
  DIR* d = ::opendir(dir.c_str());
  if (!d) util::throw_errno(dir, "cannot list", errno);
  std::vector<std::pair<std::string, bool>> entries;  // name, is a real directory
  while (dirent* ent = ::readdir(d)) {
    std::string name = ent->d_name;
    if (name == "." || name == "..") continue;
    if (rel.empty() && skip_top && skip_top(name)) continue;
    bool is_dir = ent->d_type == DT_DIR;
    if (ent->d_type == DT_UNKNOWN) {
      struct stat st {};
      is_dir = ::lstat((dir + "/" + name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    }
    entries.emplace_back(std::move(name), is_dir);
  }
  ::closedir(d);
  if (entries.empty() && !rel.empty()) out.push_back(rel);  // an empty directory is an entry
  for (auto& [name, is_dir] : entries) {
    std::string path = rel.empty() ? name : rel + "/" + name;
    if (is_dir)
      walk(root, path, out, skip_top);
    else
      out.push_back(path);
  }
}
}  // namespace

std::vector<std::string> walk_tree(const std::string& root, bool (*skip_top)(const std::string&)) {
  std::vector<std::string> out;
  walk(root, "", out, skip_top);
  std::sort(out.begin(), out.end());
  return out;
}

Collection collect_tree(const PackOptions& options, const std::string& prefix, Kind kind) {
  Collection c;
  c.kind = kind;
  c.prefix = prefix;
  c.python_version = python_version_of_tree(prefix);
  std::vector<PackItem> walked;
  for (const std::string& rel : walk_tree(prefix, nullptr)) {
    PackItem& item = walked.emplace_back();
    item.target = rel;
    item.source = prefix + "/" + rel;
  }
  std::vector<char> found = stat_items(walked, options.jobs);
  for (std::size_t i = 0; i < walked.size(); ++i) {
    if (!found[i]) continue;  // vanished while walking
    PackItem& item = walked[i];
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
