// Running a helper program and collecting what it prints.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "util/util.hpp"

namespace ferry::util {

std::string CommandOutput::last_error_line() const {
  std::string s = err.empty() ? out : err;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  std::size_t nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

namespace {

// fork + exec with the child tied to ferry's life (PR_SET_PDEATHSIG: a ferry killed mid-way must
// not leave a helper writing into a temporary tree that the next run sweeps). in_fd -1: stdin from
// /dev/null; out_fd/err_fd -1: ferry's own.
// A close-on-exec pipe; subject names the command in the error.
struct Pipe {
  UniqueFd read, write;
};
Pipe make_pipe(const std::string& subject) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno(subject, "cannot create a pipe", errno);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

pid_t spawn_tied(const std::vector<std::string>& argv, int in_fd, int out_fd, int err_fd) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw_errno(argv[0], "cannot run", errno);
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    // ferry ignores SIGPIPE for its own writes; the child gets the default back.
    ::signal(SIGPIPE, SIG_DFL);
    if (in_fd < 0) in_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in_fd >= 0) ::dup2(in_fd, 0);
    if (out_fd >= 0) ::dup2(out_fd, 1);
    if (err_fd >= 0) ::dup2(err_fd, 2);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

}  // namespace

CommandOutput run_command(const std::vector<std::string>& argv, double timeout_seconds) {
  if (argv.empty()) throw Error("no command to run");
  Pipe out = make_pipe(argv[0]), err = make_pipe(argv[0]);
  pid_t pid = spawn_tied(argv, -1, out.write.get(), err.write.get());
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
  if (reaped < 0) result.status = 255;  // lost (SIGCHLD ignored by our parent): not a success
  else result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (result.status == 127 && result.out.empty() && result.err.empty()) {
    std::string line;
    for (const auto& a : argv) line += (line.empty() ? "" : " ") + a;
    throw Error(fmt::format("`{}`: cannot run {} (not found or not executable)", line, argv[0]));
  }
  return result;
}



Subprocess::Subprocess(const std::vector<std::string>& argv) {
  if (argv.empty()) throw Error("no command to run");
  Pipe in = make_pipe(argv[0]), out = make_pipe(argv[0]);
  // A child that stops reading must not kill ferry with SIGPIPE: write() reports it instead.
  ::signal(SIGPIPE, SIG_IGN);
  m_pid = spawn_tied(argv, in.read.get(), out.write.get(), -1);
  m_in = std::move(in.write);
  m_out = std::move(out.read);
}

Subprocess::~Subprocess() {
  if (m_pid > 0 && m_status < 0) {
    ::kill(m_pid, SIGKILL);
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
    pollfd p{m_out.get(), POLLIN, 0};
    int rc = ::poll(&p, 1, left <= 0 ? 0 : static_cast<int>(left * 1000) + 1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) {
      if (left <= 0) {
        m_timed_out = true;
        return std::nullopt;
      }
      continue;
    }
    char buffer[4096];
    ssize_t n = ::read(m_out.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) m_eof = true;
    else m_buffer.append(buffer, static_cast<std::size_t>(n));
  }
}

void Subprocess::kill(int signal) {
  if (m_pid > 0 && m_status < 0) ::kill(m_pid, signal);
}

int Subprocess::wait() {
  if (m_status >= 0) return m_status;
  int status = 0;
  pid_t reaped;
  while ((reaped = ::waitpid(m_pid, &status, 0)) < 0 && errno == EINTR) {
  }
  m_status = reaped < 0 ? 255 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return m_status;
}

std::optional<int> Subprocess::wait_for(double seconds) {
  if (m_status >= 0) return m_status;
  Stopwatch clock;
  while (true) {
    int status = 0;
    pid_t reaped = ::waitpid(m_pid, &status, WNOHANG);
    if (reaped == m_pid) {
      m_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return m_status;
    }
    if (reaped < 0 && errno != EINTR) {
      m_status = 255;
      return m_status;
    }
    if (clock.seconds() >= seconds) return std::nullopt;
    ::usleep(20000);
  }
}

}  // namespace ferry::util
