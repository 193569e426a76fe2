// ferry::util — the bottom layer: errors, files, hashing, paths, progress. Knows nothing of ferry.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

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

// JSON forms, for --json and stage's report lines. A layer gives a result struct its form beside
// the struct, in its header (which includes <nlohmann/json.hpp>): FERRY_JSON_FIELDS(Type,
// fields...) writes each field under its own name, in the order listed. It is nlohmann's
// NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE for ordered_json, which Debian 12's nlohmann (3.11.2) writes
// for nlohmann::json only, whose keys come out sorted: the order listed is the order users see.
// A state enum's names are its NLOHMANN_JSON_SERIALIZE_ENUM table, the one list of them.
#define FERRY_JSON_FIELD(field) json[#field] = value.field;
#define FERRY_JSON_FIELDS(Type, ...)                                         \
  inline void to_json(nlohmann::ordered_json& json, const Type& value) {     \
    NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(FERRY_JSON_FIELD, __VA_ARGS__)) \
  }

namespace ferry::util {

// An enum value's name, from its NLOHMANN_JSON_SERIALIZE_ENUM table (for text output and report
// lines; --json takes the table directly), and the value a name names: none for a name not in the
// table, which nlohmann alone reads as the table's first value.
template <class Enum, class Json = nlohmann::json>
std::string name(Enum value) {
  return Json(value).template get<std::string>();
}
template <class Enum, class Json = nlohmann::json>
std::optional<Enum> from_name(std::string_view name) {
  Json json = std::string(name);
  Enum value = json.template get<Enum>();
  if (Json(value) != json) return std::nullopt;
  return value;
}

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
//
// A mapped file that another process truncates while it is read would kill ferry with SIGBUS. A
// handler turns such faults into zero pages instead and marks the map: readers then see bytes that
// fail their checksums, and callers report check_intact()'s one-line error rather than a crash.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  MappedFile(MappedFile&&) = delete;
  ~MappedFile();
  std::string_view bytes() const { return {static_cast<const char*>(m_data), m_size}; }
  // True once a read faulted because the file had become shorter than the map.
  bool shrank() const;
  // Throws Error("<path>: the file shrank while ferry was reading it ...") when shrank().
  void check_intact() const;

 private:
  std::string m_path;
  void* m_data = nullptr;
  std::size_t m_size = 0;
  int m_slot = -1;  // in the fault handler's table
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
// "" where this kernel (and any seccomp filter around ferry) lets openat2 work; else its answer
// (ENOSYS, EPERM...): open_beneath then takes the walk.
std::string openat2_answer();

std::string read_file(const std::string& path);
// One file through an AtomicFileSet: readers see the old file or the new one, never a part.
void write_file_atomically(const std::string& path, std::string_view text, mode_t mode);
// Writes all of data to fd (handles short writes); subject names the file in errors.
void write_all(int fd, std::string_view data, std::string_view subject);
// The same without the error: 0, or the errno of the write that failed (for callers that write
// many files and name one only when it fails).
int write_all_or_errno(int fd, std::string_view data);

// This process's umask, read without changing it (umask(2) cannot be read alone, and setting it
// back and forth races with threads creating files).
mode_t current_umask();

// Text: the one split, trim, join and number parser (src/util/string.cpp).
//
// The fields of text between separators, empty ones included ("a,,b" is three; "" is one empty
// field): callers that skip empty fields say so. Views into text, which must outlive them.
std::vector<std::string_view> split(std::string_view text, char separator);
// split on '\n' without the final empty field that a trailing newline makes ("" gives none).
std::vector<std::string_view> split_lines(std::string_view text);
// Without leading and trailing blanks (space, tab, CR, LF).
std::string_view trim(std::string_view text);
// "KEY<separator>VALUE" lines (pyvenv.cfg's "home = /x", /proc's "Model:  A100"): split at the
// first separator, both sides trimmed; lines without one are skipped, and a later key wins.
std::map<std::string, std::string> key_value_lines(std::string_view text, char separator);
std::string join(const std::vector<std::string>& parts, std::string_view separator);
// A count as schedulers and launchers write it in the environment: decimal digits only (no sign,
// no blanks), at most max. nullopt for anything else.
std::optional<unsigned> parse_decimal(std::string_view text, unsigned max);
// The same rule for numbers the user gives (options, files): a whole decimal number from min to
// max, else Error("<what>: '<text>' is not a whole number from <min> to <max>"), a usage error.
std::uint64_t parse_unsigned(std::string_view text, std::uint64_t min, std::uint64_t max,
                             std::string_view what);
// Hexadecimal digits only (either case, no "0x"), at most 16 of them: a hash or id as ferry writes
// it. nullopt for anything else.
std::optional<std::uint64_t> parse_hex64(std::string_view text);

// xxh3-64 of data, and its 16-digit lowercase hex form.
std::uint64_t xxh3(std::string_view data);
std::string hex64(std::uint64_t value);
// The same hash over data fed in pieces (files too large to hold).
class Xxh3Stream {
 public:
  Xxh3Stream();
  ~Xxh3Stream();
  Xxh3Stream(const Xxh3Stream&) = delete;
  Xxh3Stream& operator=(const Xxh3Stream&) = delete;
  void update(std::string_view piece);
  std::uint64_t digest() const;

 private:
  void* m_state;
};

// Absolute and normalised as the kernel resolves it, while keeping the symlinks the user named
// (conda-pack's abspath keeps them too: an env at /home/u/env stays there, not at the mount behind
// /home): "." and repeated slashes go; ".." steps up from where the kernel is at that point, so
// the part before it is resolved first (realpath) when it exists. W/link/../x is thus the x beside
// link's target, as open(2) sees it, not W/x. Throws Error when the part before ".." exists but
// cannot be resolved (the kernel could not either).
std::string absolute_path(const std::string& path);
// absolute_path(path) split for building it beside itself (SiblingLock, TempSibling): refuses
// the root and a path whose last part is "." or ".." (it names no entry of its parent).
struct SiblingPath {
  std::string path, parent, name;
};
SiblingPath sibling_path(const std::string& path);
// fnmatch(3) without FNM_PATHNAME: '*' also matches '/', as conda-pack's --exclude does.
bool glob_match(const std::string& pattern, const std::string& path);
bool is_valid_utf8(std::string_view data);
// A name from an untrusted source as it may be printed in a one-line message: control characters
// (newline, ESC, ...), DEL, backslash and bytes that are not UTF-8 are written as C escapes
// (\n, \x1b, \\, \xff), so a name can neither split the line nor drive the terminal.
std::string printable(std::string_view name);
std::string shell_quote(std::string_view value);
// The word as a shell reads it: quoted only when it has to be, so printed lines read as people
// write them.
std::string shell_word(std::string_view value);
// Appends value to out as a JSON string, quoted and escaped (", \\ and the bytes below 0x20); the
// caller has checked it is UTF-8. For writers of large JSON documents, without a tree.
void append_json_string(std::string& out, std::string_view value);

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

// Where a library reports how far a long step has got. The library never draws: it takes a
// ProgressSink* (null: nobody listens, it stays silent), and the CLI decides what the user sees
// (cli/progress_bar.hpp: a bar on a terminal). A step calls begin once, advance as work is done
// (from any thread; the amounts add up to total), and finish at its end.
class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  virtual void begin(std::string_view label, std::uint64_t total) = 0;
  virtual void advance(std::uint64_t amount) = 0;
  virtual void finish() = 0;
};

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
// env: its whole environment (KEY=VALUE); nullptr: ferry's.
CommandOutput run_command(const std::vector<std::string>& argv, double timeout_seconds = -1,
                          const std::vector<std::string>* env = nullptr);
// run_command for a helper that must succeed: its stdout, else Error("`LINE` failed (exit status
// N): <its last error line>").
std::string output_of(const std::vector<std::string>& argv);
// Whether an executable `name` is in a directory of $PATH (a scheduler's client, say).
bool on_path(const std::string& name);
// `name` found in the directories of `path` (a child's PATH, which execvpe does not search: it
// searches ferry's): the first executable one, name itself when it holds a '/', else "".
std::string find_on_path(const std::string& name, std::string_view path);

// argv as one line, to show or to paste into a shell: each word as shell_word writes it.
std::string command_line(const std::vector<std::string>& argv);
// How a child ended, from waitpid's status: its exit status, or 128 + the signal that ended it,
// as a shell reports it.
int exit_status(int wait_status);

// How a Subprocess starts.
struct SubprocessOptions {
  // The child leads a process group of its own, so that kill_group() also stops what it started
  // (an mpiexec's srun and proxies). Ctrl-C on a terminal then reaches ferry only: pass it on.
  bool own_group = false;
  // Its stderr still goes to ferry's, through a pipe that keeps the last line for error messages.
  bool keep_stderr = false;
  // Its stderr appended to this file instead (a service's log; created 0600 when missing), and
  // with log_stdout its stdout too (read_line then has nothing to read).
  std::string log_path;
  bool log_stdout = false;
  // Its stdin is ferry's own instead of a pipe from write() (a wrapper passing its input on), and
  // its stdout ferry's instead of a pipe to read_line() (a user's program beside a service).
  bool inherit_stdin = false, inherit_stdout = false;
  // Its whole environment (KEY=VALUE); nullptr: ferry's.
  const std::vector<std::string>* env = nullptr;
};

// A child process ferry talks to: its stdin and stdout are pipes (stderr is ferry's). Killed if
// ferry dies. Not copyable; the destructor kills and reaps a child still running (its group too).
class Subprocess {
 public:
  explicit Subprocess(const std::vector<std::string>& argv, const SubprocessOptions& options = {});
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
  // The child's whole process group (own_group), even after the child itself has ended.
  void kill_group(int signal);
  // Stops the child and all it started (srun cancels its step, mpiexec its proxies): SIGTERM to
  // its group, up to `seconds` for the child to end, then SIGKILL to whatever of the group is
  // left. Returns the child's exit status.
  int stop_group(double seconds);
  pid_t pid() const { return m_pid; }
  // Its stdout pipe, to poll several children at once (then read_line(0) the ready ones).
  int stdout_fd() const { return m_out.get(); }
  int wait();  // exit status, or 128 + signal
  // Waits at most `seconds`; nullopt when the child is still running then.
  std::optional<int> wait_for(double seconds);
  // With keep_stderr: the last non-empty line it wrote to stderr so far.
  std::string last_error_line();

 private:
  void drain_stderr(int wait_ms);
  pid_t m_pid = -1;
  UniqueFd m_in, m_out, m_err;
  std::string m_buffer, m_err_tail;
  bool m_eof = false, m_timed_out = false, m_own_group = false;
  int m_status = -1;
};

// Starts argv tied to ferry's life: it gets SIGKILL when ferry dies, even by kill -9. env: its
// whole environment (KEY=VALUE); a bare program name is looked up on env's PATH first (the
// child's, as a shell would), then on ferry's. stdin, stdout and stderr are ferry's. With
// own_group it leads a new process group (kill(-pid, ...) then reaches what it starts). Throws
// Error when it cannot be run (not found, not executable).
pid_t spawn_child(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                  bool own_group = false);

// Replaces this process with argv (a bare name looked up on env's PATH, then ferry's) under env
// (KEY=VALUE): its exit status and signals are then the program's. Throws Error when it cannot
// be run.
[[noreturn]] void exec_command(const std::vector<std::string>& argv,
                               const std::vector<std::string>& env);

// A program for run_children: argv and its whole environment (KEY=VALUE).
struct ChildSpec {
  std::vector<std::string> argv, env;
};
// Starts each (spawn_child) and waits for all; once one fails, the others get SIGTERM. SIGINT and
// SIGTERM that reach ferry meanwhile are passed on to them; ferry's own handlers are back when it
// returns or throws. Returns the first failure's exit_status, or 0. Throws Error when one cannot
// be started, once those already started are stopped and reaped.
int run_children(const std::vector<ChildSpec>& children);

// Building a tree next to its final place, for all-or-nothing results: hold a SiblingLock on
// PARENT/.NAME.ferry-lock, sweep what killed runs left, build in a TempSibling, rename it into
// place. StagedTree does the four; AtomicFileSet writes small files in TempSiblings without a lock.
//
// An exclusive flock held for the object's lifetime: ranks on one node that build the same thing
// wait for the first. Where the file system has no flock (some Lustre mounts) there is no lock;
// the final rename is still atomic. The lock file is never reached through a symlink (PARENT may
// be a group-shared directory where anyone can plant one) and must be a regular file: anything
// else there is refused with one line and left alone. Opened read-only where it is not writable
// (another user's lock file): flock needs no more.
class SiblingLock {
 public:
  SiblingLock(const std::string& parent, const std::string& name);

 private:
  UniqueFd m_fd;
};

// A private directory PARENT/.NAME.ferry-tmp-XXXXXX (mkdtemp: 0700) holding the marker file
// .ferry-tmp, which says ferry made it, and the thing being built: path() is DIR/tree, a directory
// made with the mode mkdir gives (Kind::directory), or DIR/file, a name for the caller to create
// (Kind::file). The caller renames path() into place; the destructor removes DIR with whatever
// is left in it (the old tree after a RENAME_EXCHANGE). A run killed with -9 leaves DIR for
// sweep_temp_siblings; SIGINT, SIGTERM or SIGHUP remove it before the process ends with that
// signal (see remove_temps_on_signal).
class TempSibling {
 public:
  enum class Kind { directory, file };
  TempSibling(const std::string& parent, const std::string& name, Kind kind = Kind::directory);
  ~TempSibling();
  TempSibling(const TempSibling&) = delete;
  TempSibling& operator=(const TempSibling&) = delete;
  const std::string& path() const { return m_path; }
  // The tree was renamed into place: nothing of it is left to remove but DIR itself.
  void release() { m_path.clear(); }

 private:
  void discard();
  std::string m_dir, m_path;
};

// Removes the TempSiblings of PARENT/NAME left by runs that died: directories (never through a
// symlink) whose name is exactly .NAME.ferry-tmp- and mkdtemp's six characters and which hold
// the marker. A user's own file or directory of a similar name is never touched. Call it holding
// the SiblingLock.
void sweep_temp_siblings(const std::string& parent, const std::string& name);

// The whole of building beside: a StagedTree holds the SiblingLock of where.path for its lifetime
// and, once it has it, sweeps what killed runs left there. stage() makes the TempSibling to build
// in; commit() puts the result in place. Destroyed without a commit, it leaves nothing.
class StagedTree {
 public:
  // Waits for the lock while another process holds it. The parent must exist.
  explicit StagedTree(const SiblingPath& where);
  StagedTree(const StagedTree&) = delete;
  StagedTree& operator=(const StagedTree&) = delete;
  // Makes the temporary sibling (once) and returns its path(): a directory, or with Kind::file a
  // name for the caller to create.
  const std::string& stage(TempSibling::Kind kind = TempSibling::Kind::directory);
  bool staged() const { return m_temp != nullptr; }
  const std::string& path() const;
  // Renames what was built onto where.path, where there is nothing, an empty directory or (for a
  // file) a file: Error("<path>: cannot rename into place: ..."). With replace, swaps it with the
  // tree there (renameat2 RENAME_EXCHANGE: readers see one or the other, whole), and the old one
  // is removed with the temporary: Error("<path>: cannot replace: ...").
  void commit(bool replace = false);
  // Removes what was staged (the destructor does too); the lock stays held.
  void discard() { m_temp.reset(); }

 private:
  SiblingPath m_where;
  SiblingLock m_lock;
  std::unique_ptr<TempSibling> m_temp;
};

// Several files replaced together, each whole (the module writer's transaction): add() writes a
// file beside its place, in a TempSibling, and commit() renames them all in, in the order added.
// Before the commit nothing of the set is visible. When it is destroyed without a full commit,
// every temporary it still holds is removed, and so is every directory make_directories made that
// is empty again; a rename that fails part-way leaves the files renamed before it, each whole.
class AtomicFileSet {
 public:
  AtomicFileSet() = default;
  ~AtomicFileSet();
  AtomicFileSet(const AtomicFileSet&) = delete;
  AtomicFileSet& operator=(const AtomicFileSet&) = delete;
  // mkdir -p dir (0755 before the umask), remembering what it made. Errors name the part:
  // "<part>: not a directory", "<part>: cannot create <what>: ...".
  void make_directories(const std::string& dir, std::string_view what = "directory");
  // text with mode (the umask does not apply), synced, beside path; its directory must exist.
  void add(const std::string& path, std::string_view text, mode_t mode);
  // A symlink to target, beside path.
  void add_symlink(const std::string& path, const std::string& target);
  // Renames each into place: Error("<path>: cannot rename into place: ...") at the first that
  // fails.
  void commit();

 private:
  struct Entry {
    std::string path, target;  // as given, and as sibling_path resolved it
    std::unique_ptr<TempSibling> temp;
  };
  TempSibling& temp_beside(const std::string& path);
  std::vector<Entry> m_entries;
  std::vector<std::string> m_made_dirs;
  bool m_committed = false;
};

// From the first TempSibling on, SIGINT, SIGTERM and SIGHUP (those not ignored when ferry started,
// so nohup still works) remove every live TempSibling and then end the process with that signal's
// default action (exit status 128 + signal, as a shell expects). The handler only wakes a thread
// that does the removal; a second signal ends the process at once. Nothing of the signal mask
// changes, so every program ferry starts or execs gets the dispositions it would have had.
void remove_temps_on_signal();
// For main() before it returns: when such a signal arrived, waits for its thread to end the
// process (an error caused by the removal is then not printed, and the exit status is the
// signal's); otherwise returns at once.
void await_signal_exit();
// For exec: ferry's stop-signal handlers (and its ignored SIGPIPE) back to the defaults, and if a
// stop signal already came, the end of this process by it (await_signal_exit) instead of the
// exec, which would have swallowed it (a rank told to stop as it starts would run on).
void default_stop_signals_before_exec();

// This machine's host name, and the path of the running program (/proc/self/exe; "ferry" when
// unknown): what a launch line or a node-side step must name.
std::string host_name();
std::string self_executable();
// The name of the user this process runs as (the password database's, else the uid's digits):
// whose jobs to look for, with no $USER to trust (env -i, a cron job).
std::string user_name();
// The largest resident set this process has had so far, in bytes (getrusage's ru_maxrss): what
// a node's report says it took of the node's memory.
std::uint64_t peak_resident_bytes();
// A host name's first label ("node1" of "node1.cluster"): how schedulers name nodes.
std::string short_host_name(std::string_view host);

}  // namespace ferry::util
