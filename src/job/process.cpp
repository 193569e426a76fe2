// Running a helper command (flux getattr, scontrol) and reading what it prints.
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>

#include <fmt/format.h>

#include "job/job.hpp"

extern char** environ;

namespace ferry::job {

std::string run_command(const std::vector<std::string>& argv) {
  util::CommandOutput r = util::run_command(argv);
  if (r.status != 0) {
    std::string line;
    for (const auto& a : argv) line += (line.empty() ? "" : " ") + a;
    std::string why = r.last_error_line();
    throw Error(fmt::format("`{}` failed (exit status {}){}{}", line, r.status,
                            why.empty() ? "" : ": ", why));
  }
  return r.out;
}

}  // namespace ferry::job

namespace ferry::job {
namespace {

std::vector<std::string> flatten(const Environ& env) {
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

volatile sig_atomic_t g_forward_signal = 0;
void remember_signal(int sig) { g_forward_signal = sig; }

}  // namespace

void exec_command(const std::vector<std::string>& argv, const Environ& env) {
  if (argv.empty()) throw Error("no command to run", Error::Kind::usage);
  std::vector<std::string> args = argv, vars = flatten(env);
  auto arg_ptrs = pointers(args), env_ptrs = pointers(vars);
  ::execvpe(args[0].c_str(), arg_ptrs.data(), env_ptrs.data());
  util::throw_errno(args[0], "cannot run", errno);
}

int run_processes(const std::vector<std::pair<std::vector<std::string>, Environ>>& processes) {
  struct sigaction sa {
  }, old_int{}, old_term{};
  sa.sa_handler = remember_signal;
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  std::vector<pid_t> pids;
  for (const auto& [argv, env] : processes) {
    // Tied to ferry's life: ranks must not outlive a ferry that was killed (even by kill -9).
    try {
      pids.push_back(util::spawn_child(argv, flatten(env)));
    } catch (const Error&) {
      for (pid_t p : pids) ::kill(p, SIGTERM);
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
          if (p > 0) ::kill(p, g_forward_signal);
        g_forward_signal = 0;
      }
      continue;
    }
    auto it = std::find(pids.begin(), pids.end(), pid);
    if (it == pids.end()) continue;
    *it = -1;
    --running;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code != 0 && result == 0) {
      result = code;
      for (pid_t p : pids)
        if (p > 0) ::kill(p, SIGTERM);
    }
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  return result;
}

}  // namespace ferry::job
