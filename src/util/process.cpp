// The one process spawner: helpers whose output ferry reads, children it talks to, programs it
// starts or becomes. Every child is tied to ferry's life.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <optional>

#include <fmt/format.h>

#include "util/util.hpp"

namespace ferry::util {

std::string command_line(const std::vector<std::string>& argv) {
  std::string line;
  for (const std::string& word : argv) {
    // Appended in two steps: GCC 12 at -O3 warns (-Wrestrict, falsely) on "x" + std::string&&.
    if (!line.empty()) line += ' ';
    line += shell_word(word);
  }
  return line;
}

int exit_status(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 255;  // stopped or continued: waitpid reports those only when asked
}

std::string CommandOutput::last_error_line() const {
  std::string s = err.empty() ? out : err;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  std::size_t nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

namespace {

// A close-on-exec pipe; subject names the command in the error.
struct Pipe {
  UniqueFd read, write;
};
Pipe make_pipe(const std::string& subject) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno(subject, "cannot create a pipe", errno);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

struct SpawnOptions {
  int in_fd = -1;                                 // -1: /dev/null
  int out_fd = -1, err_fd = -1;                   // -1: ferry's own
  const std::vector<std::string>* env = nullptr;  // nullptr: ferry's environment
  bool own_group = false;                         // the child leads a new process group
  int* exec_errno = nullptr;                      // set to exec's errno when it failed, else 0
};

// The program a child with environment env runs: a bare name is looked up on that environment's
// PATH (the env's bin first, say), which execvpe would not do (it searches ferry's). Not found
// there, or no PATH in env: the name, for execvpe's own search.
std::string program_for(const std::string& name, const std::vector<std::string>* env) {
  if (!env) return name;
  for (const std::string& var : *env)
    if (var.starts_with("PATH=")) {
      std::string found = find_on_path(name, std::string_view(var).substr(5));
      return found.empty() ? name : found;
    }
  return name;
}

// fork + exec with the child tied to ferry's life (PR_SET_PDEATHSIG: a ferry killed mid-way must
// not leave a helper writing into a temporary tree that the next run sweeps, nor ranks running).
pid_t spawn_tied(const std::vector<std::string>& argv, const SpawnOptions& o) {
  // Everything the child needs is built before fork: ferry may have threads, and the child may
  // only make async-signal-safe calls.
  std::vector<char*> args, vars;
  const std::string program = program_for(argv[0], o.env);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  if (o.env) {
    for (const auto& v : *o.env) vars.push_back(const_cast<char*>(v.c_str()));
    vars.push_back(nullptr);
  }
  // exec's failure comes back through a close-on-exec pipe: a successful exec closes it empty.
  std::optional<Pipe> report;
  if (o.exec_errno) report = make_pipe(argv[0]);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw_errno(argv[0], "cannot run", errno);
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    if (o.own_group) ::setpgid(0, 0);
    // ferry ignores SIGPIPE for its own writes; the child gets the default back.
    ::signal(SIGPIPE, SIG_DFL);
    int in_fd = o.in_fd < 0 ? ::open("/dev/null", O_RDONLY | O_CLOEXEC) : o.in_fd;
    if (in_fd >= 0) ::dup2(in_fd, 0);
    if (o.out_fd >= 0) ::dup2(o.out_fd, 1);
    if (o.err_fd >= 0) ::dup2(o.err_fd, 2);
    if (o.env)
      ::execvpe(program.c_str(), args.data(), vars.data());
    else
      ::execvp(args[0], args.data());
    if (report) {
      int e = errno;
      [[maybe_unused]] ssize_t n = ::write(report->write.get(), &e, sizeof e);
    }
    ::_exit(127);
  }
  if (o.own_group) ::setpgid(pid, pid);  // also here: kill_group may come before the child runs
  if (report) {
    report->write = UniqueFd();
    int e = 0;
    ssize_t n;
    while ((n = ::read(report->read.get(), &e, sizeof e)) < 0 && errno == EINTR) {
    }
    *o.exec_errno = n == static_cast<ssize_t>(sizeof e) ? e : 0;
  }
  return pid;
}

}  // namespace

CommandOutput run_command(const std::vector<std::string>& argv, double timeout_seconds,
                          const std::vector<std::string>* env) {
  if (argv.empty()) throw Error("no command to run");
  Pipe out = make_pipe(argv[0]), err = make_pipe(argv[0]);
  SpawnOptions spawn;
  spawn.env = env;
  spawn.out_fd = out.write.get();
  spawn.err_fd = err.write.get();
  pid_t pid = spawn_tied(argv, spawn);
  out.write = UniqueFd();
  err.write = UniqueFd();
  // Both pipes are drained together so a chatty stderr cannot block the child.
  CommandOutput result;
  pollfd fds[2] = {{out.read.get(), POLLIN, 0}, {err.read.get(), POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_count = 2;
  char buffer[4096];
  Stopwatch clock;
  while (open_count > 0) {
    int wait_ms = -1;
    if (timeout_seconds >= 0) {
      double left = timeout_seconds - clock.seconds();
      if (left <= 0) {
        ::kill(pid, SIGKILL);
        result.timed_out = true;
        break;
      }
      wait_ms = static_cast<int>(left * 1000) + 1;
    }
    if (::poll(fds, 2, wait_ms) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  int status = 0;
  pid_t reaped;
  while ((reaped = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
  }
  // Lost (SIGCHLD ignored by our parent): not a success.
  result.status = reaped < 0 ? 255 : exit_status(status);
  if (result.status == 127 && result.out.empty() && result.err.empty())
    throw Error(fmt::format("`{}`: cannot run {} (not found or not executable)", command_line(argv),
                            argv[0]));
  return result;
}

std::string output_of(const std::vector<std::string>& argv) {
  CommandOutput r = run_command(argv);
  if (r.status != 0) {
    std::string why = r.last_error_line();
    throw Error(fmt::format("`{}` failed (exit status {}){}{}", command_line(argv), r.status,
                            why.empty() ? "" : ": ", why));
  }
  return r.out;
}

Subprocess::Subprocess(const std::vector<std::string>& argv, const SubprocessOptions& options) {
  if (argv.empty()) throw Error("no command to run");
  Pipe in = make_pipe(argv[0]), out = make_pipe(argv[0]);
  std::optional<Pipe> err;
  if (options.keep_stderr) err = make_pipe(argv[0]);
  UniqueFd log;
  if (!options.log_path.empty()) {
    log = UniqueFd(::open(options.log_path.c_str(),
                          O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!log) throw_errno(options.log_path, "cannot open for the log of " + argv[0], errno);
  }
  SpawnOptions spawn;
  spawn.in_fd = options.inherit_stdin ? STDIN_FILENO : in.read.get();
  spawn.out_fd = out.write.get();
  if (err) spawn.err_fd = err->write.get();
  if (log) spawn.err_fd = log.get();
  if (log && options.log_stdout) spawn.out_fd = log.get();
  if (options.inherit_stdout) spawn.out_fd = STDOUT_FILENO;
  spawn.env = options.env;
  spawn.own_group = options.own_group;
  m_pid = spawn_tied(argv, spawn);
  // A child that stops reading must not kill ferry with SIGPIPE: write() reports it instead. Set
  // once the child runs, so that a spawn that fails changes nothing.
  ::signal(SIGPIPE, SIG_IGN);
  m_own_group = options.own_group;
  m_in = std::move(in.write);
  m_out = std::move(out.read);
  if (err) m_err = std::move(err->read);
}

Subprocess::~Subprocess() {
  if (m_pid > 0 && m_status < 0) {
    kill_group(SIGKILL);
    wait();
  }
}

bool Subprocess::write(std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(m_in.get(), text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void Subprocess::close_stdin() { m_in = UniqueFd(); }

std::optional<std::string> Subprocess::read_line(double seconds) {
  m_timed_out = false;
  Stopwatch clock;
  while (true) {
    std::size_t nl = m_buffer.find('\n');
    if (nl != std::string::npos) {
      std::string line = m_buffer.substr(0, nl);
      m_buffer.erase(0, nl + 1);
      return line;
    }
    if (m_eof) {
      if (m_buffer.empty()) return std::nullopt;
      std::string line;
      line.swap(m_buffer);
      return line;
    }
    double left = seconds - clock.seconds();
    pollfd p[2] = {{m_out.get(), POLLIN, 0}, {m_err.get(), POLLIN, 0}};  // fd -1: ignored
    int rc = ::poll(p, 2, left <= 0 ? 0 : static_cast<int>(left * 1000) + 1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc > 0 && p[1].revents) drain_stderr(0);
    if (rc <= 0 || !p[0].revents) {
      if (left <= 0) {
        m_timed_out = true;
        return std::nullopt;
      }
      continue;
    }
    char buffer[4096];
    ssize_t n = ::read(m_out.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      m_eof = true;
    else
      m_buffer.append(buffer, static_cast<std::size_t>(n));
  }
}

void Subprocess::kill(int signal) {
  if (m_pid > 0 && m_status < 0) ::kill(m_pid, signal);
}

void Subprocess::kill_group(int signal) {
  if (m_pid > 0 && m_own_group)
    ::kill(-m_pid, signal);
  else
    kill(signal);
}

int Subprocess::stop_group(double seconds) {
  kill_group(SIGTERM);
  wait_for(seconds);
  kill_group(SIGKILL);
  return wait();
}

// Passes what the child wrote to stderr on to ferry's and keeps its tail; waits up to wait_ms for
// something to arrive.
void Subprocess::drain_stderr(int wait_ms) {
  if (!m_err) {
    if (wait_ms > 0) ::usleep(static_cast<useconds_t>(wait_ms) * 1000);
    return;
  }
  pollfd p{m_err.get(), POLLIN, 0};
  if (::poll(&p, 1, wait_ms) <= 0) return;
  char buffer[4096];
  ssize_t n = ::read(m_err.get(), buffer, sizeof buffer);
  if (n < 0 && errno == EINTR) return;
  if (n <= 0) {
    m_err = UniqueFd();
    return;
  }
  for (ssize_t done = 0, w; done < n; done += w)
    if ((w = ::write(2, buffer + done, static_cast<std::size_t>(n - done))) <= 0) break;
  m_err_tail.append(buffer, static_cast<std::size_t>(n));
  constexpr std::size_t k_tail = 8192;  // enough for the last line of a launcher's complaint
  if (m_err_tail.size() > 2 * k_tail) m_err_tail.erase(0, m_err_tail.size() - k_tail);
}

std::string Subprocess::last_error_line() {
  while (m_err) {  // what is already there, without waiting
    pollfd p{m_err.get(), POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) break;
    drain_stderr(0);
  }
  CommandOutput tail;
  tail.err = m_err_tail;
  return tail.err.empty() ? std::string() : tail.last_error_line();
}

int Subprocess::wait() {
  if (m_status >= 0) return m_status;
  if (m_err) {  // a child blocked on a full stderr pipe would never end
    while (!wait_for(3600)) {
    }
    return m_status;
  }
  int status = 0;
  pid_t reaped;
  while ((reaped = ::waitpid(m_pid, &status, 0)) < 0 && errno == EINTR) {
  }
  m_status = reaped < 0 ? 255 : exit_status(status);
  return m_status;
}

std::optional<int> Subprocess::wait_for(double seconds) {
  if (m_status >= 0) return m_status;
  Stopwatch clock;
  while (true) {
    int status = 0;
    pid_t reaped = ::waitpid(m_pid, &status, WNOHANG);
    if (reaped == m_pid) {
      m_status = exit_status(status);
      return m_status;
    }
    if (reaped < 0 && errno != EINTR) {
      m_status = 255;
      return m_status;
    }
    if (clock.seconds() >= seconds) return std::nullopt;
    drain_stderr(20);
  }
}

std::string find_on_path(const std::string& name, std::string_view path) {
  if (name.empty()) return "";
  if (name.find('/') != std::string::npos) return name;
  for (std::string_view part : split(path, ':')) {
    if (part.empty()) continue;
    std::string candidate = std::string(part) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

bool on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  return !find_on_path(name, path ? path : "").empty();
}

pid_t spawn_child(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                  bool own_group) {
  if (argv.empty()) throw Error("no command to run");
  int exec_errno = 0;
  SpawnOptions spawn;
  spawn.env = &env;
  spawn.own_group = own_group;
  spawn.exec_errno = &exec_errno;
  pid_t pid = spawn_tied(argv, spawn);
  if (exec_errno != 0) {
    ::waitpid(pid, nullptr, 0);
    throw_errno(argv[0], "cannot run", exec_errno);
  }
  return pid;
}

namespace {

std::vector<char*> pointers(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

volatile sig_atomic_t g_forward_signal = 0;
void remember_signal(int sig) { g_forward_signal = sig; }

// While run_children waits: SIGINT and SIGTERM are remembered for it to pass on, and whatever
// handled them before (remove_temps_on_signal's, or the default) is back however it ends.
class RememberStopSignals {
 public:
  RememberStopSignals() {
    struct sigaction sa {};
    sa.sa_handler = remember_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &m_int);
    ::sigaction(SIGTERM, &sa, &m_term);
  }
  ~RememberStopSignals() {
    ::sigaction(SIGINT, &m_int, nullptr);
    ::sigaction(SIGTERM, &m_term, nullptr);
  }
  RememberStopSignals(const RememberStopSignals&) = delete;
  RememberStopSignals& operator=(const RememberStopSignals&) = delete;

 private:
  struct sigaction m_int {
  }, m_term{};
};

}  // namespace

void exec_command(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  if (argv.empty()) throw Error("no command to run", Error::Kind::usage);
  std::vector<char*> args = pointers(argv), vars = pointers(env);
  default_stop_signals_before_exec();
  ::execvpe(program_for(argv[0], &env).c_str(), args.data(), vars.data());
  throw_errno(argv[0], "cannot run", errno);
}

int run_children(const std::vector<ChildSpec>& children) {
  RememberStopSignals remember;
  // Each child in a process group of its own, so that stopping it stops what it started too (a
  // shell's sleep outlived its shell); not when ferry reads a terminal, where a child outside the
  // foreground group could not read it.
  const bool groups = !::isatty(STDIN_FILENO);
  auto signal_child = [groups](pid_t p, int sig) { ::kill(groups ? -p : p, sig); };
  std::vector<pid_t> pids;
  for (const ChildSpec& child : children) {
    try {
      pids.push_back(spawn_child(child.argv, child.env, groups));
    } catch (const Error&) {
      for (pid_t p : pids) signal_child(p, SIGTERM);
      for (pid_t p : pids) ::waitpid(p, nullptr, 0);
      throw;
    }
  }
  int result = 0;
  std::size_t running = pids.size();
  while (running > 0) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno != EINTR) break;
      if (g_forward_signal) {
        for (pid_t p : pids)
          if (p > 0) signal_child(p, g_forward_signal);
        g_forward_signal = 0;
      }
      continue;
    }
    auto it = std::find(pids.begin(), pids.end(), pid);
    if (it == pids.end()) continue;
    *it = -1;
    --running;
    int code = exit_status(status);
    if (code != 0 && result == 0) {
      result = code;
      for (pid_t p : pids)
        if (p > 0) signal_child(p, SIGTERM);
    }
  }
  return result;
}

}  // namespace ferry::util
