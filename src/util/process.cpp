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

CommandOutput run_command(const std::vector<std::string>& argv) {
  if (argv.empty()) throw Error("no command to run");
  int out_fds[2], err_fds[2];
  if (::pipe2(out_fds, O_CLOEXEC) != 0) throw_errno(argv[0], "cannot create a pipe", errno);
  UniqueFd out_read(out_fds[0]), out_write(out_fds[1]);
  if (::pipe2(err_fds, O_CLOEXEC) != 0) throw_errno(argv[0], "cannot create a pipe", errno);
  UniqueFd err_read(err_fds[0]), err_write(err_fds[1]);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw_errno(argv[0], "cannot run", errno);
  if (pid == 0) {
    // The helper dies with ferry: a ferry killed mid-way must not leave it writing into a
    // temporary tree that the next run sweeps.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out_fds[1], 1);
    ::dup2(err_fds[1], 2);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  out_write = UniqueFd();
  err_write = UniqueFd();
  // Both pipes are drained together so a chatty stderr cannot block the child.
  CommandOutput result;
  pollfd fds[2] = {{out_read.get(), POLLIN, 0}, {err_read.get(), POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_count = 2;
  char buffer[4096];
  while (open_count > 0) {
    if (::poll(fds, 2, -1) < 0) {
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
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (result.status == 127 && result.out.empty() && result.err.empty()) {
    std::string line;
    for (const auto& a : argv) line += (line.empty() ? "" : " ") + a;
    throw Error(fmt::format("`{}`: cannot run {} (not found or not executable)", line, argv[0]));
  }
  return result;
}

}  // namespace ferry::util
