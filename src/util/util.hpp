// ferry::util — the bottom layer: errors, files, hashing, paths, progress. Knows nothing of ferry.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

// The one error type. Its message is the complete one-line message for the user and names its
// subject (file, member, option). kind picks the exit code.
class Error : public std::runtime_error {
 public:
  enum class Kind { failure = 1, usage = 2 };
  explicit Error(const std::string& message, Kind kind = Kind::failure)
      : std::runtime_error(message), m_kind(kind) {}
  Kind kind() const { return m_kind; }

 private:
  Kind m_kind;
};

}  // namespace ferry

namespace ferry::util {

// Throws Error("<subject>: <what>: <strerror(errno)>").
[[noreturn]] void throw_errno(std::string_view subject, std::string_view what, int err);

// An owned file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : m_fd(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : m_fd(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const { return m_fd; }
  int release() {
    int fd = m_fd;
    m_fd = -1;
    return fd;
  }
  explicit operator bool() const { return m_fd >= 0; }

 private:
  int m_fd = -1;
};

// A read-only memory map of a whole file (empty files map to an empty view).
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  MappedFile(MappedFile&&) = delete;
  ~MappedFile();
  std::string_view bytes() const { return {static_cast<const char*>(m_data), m_size}; }

 private:
  void* m_data = nullptr;
  std::size_t m_size = 0;
};

// Memory for large transient buffers (archive bytes arriving, decoded frames, big members):
// anonymous pages that ask for transparent huge pages, so filling them costs one page fault per
// 2 MiB instead of one per 4 KiB. Uninitialised; pages are only committed as they are touched.
class PageBuffer {
 public:
  explicit PageBuffer(std::size_t size);  // throws std::bad_alloc when the size cannot be mapped
  PageBuffer(PageBuffer&&) = delete;
  ~PageBuffer();
  char* data() const { return m_data; }
  std::size_t size() const { return m_size; }

 private:
  char* m_data = nullptr;
  std::size_t m_size = 0;
};

// Opens rel (relative, '/'-separated, no "." or ".." parts) under the directory dir_fd without
// ever following a symlink or leaving dir_fd: openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), or,
// where the kernel lacks openat2 (before 5.6: RHEL 8's 4.18) or a seccomp filter refuses it
// (ENOSYS or EPERM, as some container runtimes answer), a walk that opens each directory part with
// O_DIRECTORY | O_NOFOLLOW and the last part with O_NOFOLLOW: just as safe, a few more system
// calls. flags always get O_NOFOLLOW | O_CLOEXEC. Returns the fd, or -1 with errno set (ELOOP or
// ENOTDIR for a symlink on the way, EXDEV for a name that would leave dir_fd).
int open_beneath(int dir_fd, const std::string& rel, int flags, mode_t mode = 0);

std::string read_file(const std::string& path);
// Writes text to a new hidden file beside path (".NAME.ferry-tmp-XXXXXX", which module engines and
// conda skip), with mode, synced; returns its path for a rename into place. Nothing is left on error.
std::string write_beside(const std::string& path, std::string_view text, mode_t mode);
// write_beside, then the rename: readers see the old file or the new one, never a part.
void write_file_atomically(const std::string& path, std::string_view text, mode_t mode);
// Writes all of data to fd (handles short writes); subject names the file in errors.
void write_all(int fd, std::string_view data, std::string_view subject);

// This process's umask, read without changing it (umask(2) cannot be read alone, and setting it
// back and forth races with threads creating files).
mode_t current_umask();

// A count as schedulers and launchers write it in the environment: decimal digits only (no sign,
// no blanks), at most max. nullopt for anything else.
std::optional<unsigned> parse_decimal(std::string_view text, unsigned max);

// xxh3-64 of data, and its 16-digit lowercase hex form.
std::uint64_t xxh3(std::string_view data);
std::string hex64(std::uint64_t value);

// Absolute, lexically normalised path without following symlinks (conda-pack uses abspath too).
std::string absolute_path(const std::string& path);
// fnmatch(3) without FNM_PATHNAME: '*' also matches '/', as conda-pack's --exclude does.
bool glob_match(const std::string& pattern, const std::string& path);
bool is_valid_utf8(std::string_view data);
std::string shell_quote(std::string_view value);
// The word as a shell reads it: quoted only when it has to be, so printed lines read as people
// write them.
std::string shell_word(std::string_view value);
std::string json_escape(std::string_view value);

// Removes a tree without following symlinks; a missing path is fine.
void remove_tree(const std::string& path);

// Wall-clock seconds since construction.
class Stopwatch {
 public:
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count();
  }

 private:
  std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();
};

// A progress bar on stderr when stderr is a terminal; silent otherwise (logs stay clean).
// Thread-safe: workers call advance(), a redraw happens at most every 100 ms.
class Progress {
 public:
  Progress(std::string label, std::uint64_t total, bool enabled);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  void advance(std::uint64_t amount);
  void finish();

 private:
  void draw(bool final);
  std::string m_label;
  std::uint64_t m_total;
  bool m_enabled;
  std::atomic<std::uint64_t> m_done{0};
  std::atomic<std::int64_t> m_last_draw_ms{0};
  std::mutex m_draw_mutex;
  Stopwatch m_clock;
  bool m_finished = false;
};
bool stderr_is_terminal();

// Default parallelism: every core this process may run on.
unsigned default_jobs();


// What a helper program printed, and how it ended.
struct CommandOutput {
  int status = 0;  // exit status, or 128 + signal
  bool timed_out = false;
  std::string out, err;
  std::string last_error_line() const;  // the last non-empty line of err (else of out)
};

// Runs argv (PATH searched, no shell, stdin from /dev/null) and collects stdout and stderr. The
// child is killed if ferry dies, or once timeout_seconds have passed (negative: no limit; status
// then 128 + SIGKILL and timed_out set). Throws Error only when it cannot be started.
CommandOutput run_command(const std::vector<std::string>& argv, double timeout_seconds = -1);

// A child process ferry talks to: its stdin and stdout are pipes (stderr is ferry's). Killed if
// ferry dies. Not copyable; the destructor kills and reaps a child still running.
class Subprocess {
 public:
  explicit Subprocess(const std::vector<std::string>& argv);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  // Sends text to the child's stdin; false when it no longer reads.
  bool write(std::string_view text);
  void close_stdin();
  // The next line of stdout without its newline; nullopt at EOF or when `seconds` pass first
  // (timed_out() tells which). What is already there is read even when no time is left.
  std::optional<std::string> read_line(double seconds);
  bool timed_out() const { return m_timed_out; }
  void kill(int signal);
  int wait();  // exit status, or 128 + signal
  // Waits at most `seconds`; nullopt when the child is still running then.
  std::optional<int> wait_for(double seconds);

 private:
  pid_t m_pid = -1;
  UniqueFd m_in, m_out;
  std::string m_buffer;
  bool m_eof = false, m_timed_out = false;
  int m_status = -1;
};


// Building a tree next to its final place, for all-or-nothing results: hold a SiblingLock on
// PARENT/.NAME.ferry-lock, sweep what killed runs left, build in a TempSibling, rename it into place.
//
// An exclusive flock held for the object's lifetime: ranks on one node that build the same thing
// wait for the first. Where the file system has no flock (some Lustre mounts) there is no lock;
// the final rename is still atomic.
class SiblingLock {
 public:
  SiblingLock(const std::string& parent, const std::string& name);

 private:
  UniqueFd m_fd;
};

// PARENT/.NAME.ferry-tmp-XXXXXX with the mode mkdir would give (not mkdtemp's 0700), removed
// unless released; a run killed with -9 leaves it for sweep_temp_siblings.
class TempSibling {
 public:
  TempSibling(const std::string& parent, const std::string& name);
  ~TempSibling();
  TempSibling(const TempSibling&) = delete;
  TempSibling& operator=(const TempSibling&) = delete;
  const std::string& path() const { return m_path; }
  void release() { m_path.clear(); }

 private:
  std::string m_path;
};

// This machine's host name, and the path of the running program (/proc/self/exe; "ferry" when
// unknown): what a launch line or a node-side step must name.
std::string host_name();
std::string self_executable();

// Removes the TempSiblings of PARENT/NAME left by runs that died. Call it holding the SiblingLock.
void sweep_temp_siblings(const std::string& parent, const std::string& name);

}  // namespace ferry::util
