// Building beside the final place: the lock, the temporary sibling, the sweep of what dead runs
// left, the removal of live temporaries when ferry is told to stop, and the two ways to commit
// (StagedTree, AtomicFileSet).
#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "util/util.hpp"

namespace ferry::util {
namespace {

constexpr const char* k_marker = ".ferry-tmp";
constexpr std::string_view k_temp_infix = ".ferry-tmp-";

// The TempSiblings alive now, for the signal thread: their directory and what is built in it.
struct LiveTemp {
  std::string dir, entry;
};
std::mutex g_live_mutex;
std::vector<LiveTemp> g_live;

std::atomic<bool> g_signalled{false};
int g_signal_pipe[2] = {-1, -1};
const int k_stop_signals[] = {SIGINT, SIGTERM, SIGHUP};

// Async-signal-safe: wakes the thread; a second signal takes the default action at once.
void on_stop_signal(int sig) {
  int saved = errno;
  if (g_signalled.exchange(true)) {
    ::signal(sig, SIG_DFL);
    ::raise(sig);
  }
  unsigned char byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] ssize_t n = ::write(g_signal_pipe[1], &byte, 1);
  errno = saved;
}

// Removes dir; extraction threads may still be adding files under it, so a few tries.
void remove_until_gone(const std::string& dir) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 && errno == ENOENT) return;
  }
}

[[noreturn]] void signal_thread() {
  unsigned char byte = 0;
  while (::read(g_signal_pipe[0], &byte, 1) != 1) {
  }
  int sig = byte;
  {
    std::lock_guard lock(g_live_mutex);
    for (const LiveTemp& t : g_live) {
      // Take the tree away from its temporary name first: a rename into place racing with this
      // either wins (the result is complete and stays) or finds nothing to rename (and fails).
      std::string doomed = t.dir + "/.removing";
      ::rename((t.dir + "/" + t.entry).c_str(), doomed.c_str());
      remove_until_gone(t.dir);
    }
  }
  ::signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  ::raise(sig);
  ::_exit(128 + sig);
}

bool all_of_mkdtemp_suffix(std::string_view suffix) {
  return suffix.size() == 6 && std::all_of(suffix.begin(), suffix.end(), [](char c) {
           return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
         });
}

}  // namespace

void remove_temps_on_signal() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (::pipe2(g_signal_pipe, O_CLOEXEC) != 0) return;  // then signals keep their default action
    std::thread(signal_thread).detach();
    for (int sig : k_stop_signals) {
      struct sigaction old {};
      if (::sigaction(sig, nullptr, &old) != 0 || old.sa_handler != SIG_DFL)
        continue;  // ignored or taken
      struct sigaction sa {};
      sa.sa_handler = on_stop_signal;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = SA_RESTART;
      ::sigaction(sig, &sa, nullptr);
    }
  });
}

void default_stop_signals_before_exec() {
  // A program started by exec gets the default actions back, so a stop signal from now on ends
  // it (or this process) as it should; one that ferry's handler took just before would be lost
  // with the signal thread at exec: then this process ends here, by that signal.
  for (int sig : k_stop_signals) {
    struct sigaction now {};
    if (::sigaction(sig, nullptr, &now) == 0 && now.sa_handler == on_stop_signal)
      ::signal(sig, SIG_DFL);
  }
  ::signal(SIGPIPE, SIG_DFL);  // ignored for ferry's own pipes, not for the program
  await_signal_exit();
}

void await_signal_exit() {
  if (!g_signalled.load()) return;
  while (true) ::pause();  // the signal thread ends the process
}

SiblingLock::SiblingLock(const std::string& parent, const std::string& name) {
  std::string path = fmt::format("{}/.{}.ferry-lock", parent, name);
  // O_NONBLOCK: a FIFO planted there must not hang the open; flock still waits.
  int flags = O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
  m_fd = UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | flags, 0644));
  if (!m_fd && errno == EACCES) m_fd = UniqueFd(::open(path.c_str(), O_RDONLY | flags));
  if (!m_fd && errno == ELOOP)
    throw Error(
        fmt::format("{}: is a symlink, where ferry keeps its lock file: not following it "
                    "(remove it if nobody should have put it there)",
                    path));
  if (!m_fd && errno != EISDIR) throw_errno(path, "cannot create lock file", errno);
  struct stat st {};
  if (!m_fd || ::fstat(m_fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    throw Error(
        fmt::format("{}: is not a regular file, where ferry keeps its lock file: leaving it "
                    "alone (remove it if nobody should have put it there)",
                    path));
  while (::flock(m_fd.get(), LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    if (errno == ENOLCK || errno == EOPNOTSUPP || errno == ENOSYS) break;
    throw_errno(path, "cannot lock", errno);
  }
}

TempSibling::TempSibling(const std::string& parent, const std::string& name, Kind kind) {
  remove_temps_on_signal();
  std::string templ = fmt::format("{}/.{}{}XXXXXX", parent, name, k_temp_infix);
  if (!::mkdtemp(templ.data())) throw_errno(parent, "cannot create a temporary directory", errno);
  std::string entry = kind == Kind::directory ? "tree" : "file";
  {
    std::lock_guard lock(g_live_mutex);
    g_live.push_back({templ, entry});
  }
  m_dir = templ;
  m_path = m_dir + "/" + entry;
  try {
    std::string marker = m_dir + "/" + k_marker;
    UniqueFd fd(::open(marker.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) throw_errno(marker, "cannot create", errno);
    write_all(fd.get(), "made by ferry: removed by the next run beside it\n", marker);
    // mkdir applies the umask (and a default ACL): the tree gets the mode a new directory would.
    if (kind == Kind::directory && ::mkdir(m_path.c_str(), 0777) != 0)
      throw_errno(m_path, "cannot create a temporary directory", errno);
  } catch (...) {
    discard();
    throw;
  }
}

TempSibling::~TempSibling() { discard(); }

void TempSibling::discard() {
  if (m_dir.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(m_dir, ec);
  std::lock_guard lock(g_live_mutex);
  std::erase_if(g_live, [&](const LiveTemp& t) { return t.dir == m_dir; });
  m_dir.clear();
}

void sweep_temp_siblings(const std::string& parent, const std::string& name) {
  std::string prefix = "." + name + std::string(k_temp_infix);
  UniqueFd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return;
  std::error_code ec;
  for (const auto& ent : std::filesystem::directory_iterator(parent, ec)) {
    std::string entry = ent.path().filename().string();
    if (!entry.starts_with(prefix) ||
        !all_of_mkdtemp_suffix(std::string_view(entry).substr(prefix.size())))
      continue;
    // A directory (never a symlink to one) that holds ferry's marker as a regular file.
    UniqueFd temp(
        ::openat(dir.get(), entry.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st {};
    if (!temp || ::fstatat(temp.get(), k_marker, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode))
      continue;
    std::error_code remove_ec;
    std::filesystem::remove_all(ent.path(), remove_ec);
  }
}

SiblingPath sibling_path(const std::string& path) {
  std::string_view given = path;
  while (given.size() > 1 && given.back() == '/') given.remove_suffix(1);
  std::size_t slash = given.rfind('/');
  std::string_view last = slash == std::string_view::npos ? given : given.substr(slash + 1);
  if (last == "." || last == "..")
    throw Error(
        fmt::format("{}: ends in '{}', which names no entry of its own: give the directory's "
                    "own name",
                    path, last),
        Error::Kind::usage);
  SiblingPath out;
  out.path = absolute_path(path);
  if (out.path == "/") throw Error("/: refusing to replace the root directory", Error::Kind::usage);
  std::size_t cut = out.path.rfind('/');
  out.parent = cut == 0 ? "/" : out.path.substr(0, cut);
  out.name = out.path.substr(cut + 1);
  return out;
}

StagedTree::StagedTree(const SiblingPath& where)
    : m_where(where), m_lock(where.parent, where.name) {
  // We hold the lock: a temporary left here belongs to a run that died (swept even when the
  // result turns out to be there already).
  sweep_temp_siblings(where.parent, where.name);
}

const std::string& StagedTree::stage(TempSibling::Kind kind) {
  if (m_temp) throw Error(fmt::format("{}: staged twice", m_where.path));
  m_temp = std::make_unique<TempSibling>(m_where.parent, m_where.name, kind);
  return m_temp->path();
}

const std::string& StagedTree::path() const {
  static const std::string none;
  return m_temp ? m_temp->path() : none;
}

void StagedTree::commit(bool replace) {
  if (!m_temp) throw Error(fmt::format("{}: nothing staged to commit", m_where.path));
  const char* from = m_temp->path().c_str();
  const char* to = m_where.path.c_str();
  if (replace) {
    if (::syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, RENAME_EXCHANGE) != 0)
      throw_errno(m_where.path, "cannot replace", errno);
  } else {
    if (::rename(from, to) != 0) throw_errno(m_where.path, "cannot rename into place", errno);
    m_temp->release();
  }
  m_temp.reset();  // after an exchange, with the old tree in it
}

AtomicFileSet::~AtomicFileSet() {
  if (m_committed) return;
  m_entries.clear();  // each TempSibling removes itself
  for (auto it = m_made_dirs.rbegin(); it != m_made_dirs.rend(); ++it) ::rmdir(it->c_str());
}

void AtomicFileSet::make_directories(const std::string& dir, std::string_view what) {
  std::vector<std::string> missing;
  for (std::filesystem::path q = dir; !q.empty() && q != q.root_path(); q = q.parent_path()) {
    struct stat st {};
    if (::stat(q.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) throw Error(fmt::format("{}: not a directory", q.string()));
      break;
    }
    missing.push_back(q.string());
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0755) == 0)
      m_made_dirs.push_back(*it);
    else if (errno != EEXIST)
      throw_errno(*it, fmt::format("cannot create {}", what), errno);
  }
}

TempSibling& AtomicFileSet::temp_beside(const std::string& path) {
  SiblingPath where = sibling_path(path);
  auto temp = std::make_unique<TempSibling>(where.parent, where.name, TempSibling::Kind::file);
  m_entries.push_back({path, std::move(where.path), std::move(temp)});
  return *m_entries.back().temp;
}

void AtomicFileSet::add(const std::string& path, std::string_view text, mode_t mode) {
  const std::string& temp = temp_beside(path).path();
  try {
    UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) throw_errno(temp, "cannot create", errno);
    write_all(fd.get(), text, temp);
    if (::fchmod(fd.get(), mode) != 0) throw_errno(temp, "cannot chmod", errno);
    if (::fsync(fd.get()) != 0) throw_errno(temp, "cannot sync", errno);
  } catch (...) {
    m_entries.pop_back();
    throw;
  }
}

void AtomicFileSet::add_symlink(const std::string& path, const std::string& target) {
  const std::string& temp = temp_beside(path).path();
  if (::symlink(target.c_str(), temp.c_str()) != 0) {
    int err = errno;
    m_entries.pop_back();
    throw_errno(path, "cannot create the symlink", err);
  }
}

void AtomicFileSet::commit() {
  for (Entry& e : m_entries) {
    if (::rename(e.temp->path().c_str(), e.target.c_str()) != 0)
      throw_errno(e.path, "cannot rename into place", errno);
    e.temp->release();
    e.temp.reset();
  }
  m_entries.clear();
  m_committed = true;
}

void write_file_atomically(const std::string& path, std::string_view text, mode_t mode) {
  AtomicFileSet file;
  file.add(path, text, mode);
  file.commit();
}

}  // namespace ferry::util
