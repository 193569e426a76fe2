// What ferry's services share (see service.hpp).
#include "runtime/service.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>

#include <fmt/format.h>

#include "util/util.hpp"

namespace ferry::runtime {
namespace {

std::atomic<int> g_stop{0};
void note_stop(int signal) { g_stop = signal; }
constexpr int k_stop_signals[3] = {SIGINT, SIGTERM, SIGHUP};

// The names in dir, sorted; none when it cannot be read.
std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    for (dirent* e; (e = ::readdir(d));)
      if (std::string_view(e->d_name) != "." && std::string_view(e->d_name) != "..")
        names.emplace_back(e->d_name);
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string state_file(const std::string& dir) { return dir + "/cluster.json"; }

}  // namespace

StopSignals::StopSignals() {
  g_stop = 0;
  struct sigaction sa {};
  sa.sa_handler = note_stop;
  for (int i = 0; i < 3; ++i) ::sigaction(k_stop_signals[i], &sa, &m_old[i]);
}

StopSignals::~StopSignals() {
  for (int i = 0; i < 3; ++i) ::sigaction(k_stop_signals[i], &m_old[i], nullptr);
}

int StopSignals::received() { return g_stop; }
void StopSignals::request(int signal) { g_stop = signal; }

void stop_with_parent() {
  const pid_t parent = ::getppid();
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) StopSignals::request(SIGTERM);
}

int coordinator_status(bool failed, int command_status, bool has_command) {
  if (failed) return 1;
  if (command_status >= 0 && !StopSignals::received()) return command_status;
  if (StopSignals::received()) return has_command ? 128 + StopSignals::received() : 0;
  return 0;
}

unsigned granted_cpus(const job::Environ& env) {
  if (auto v = job::lookup(env, "SLURM_CPUS_ON_NODE"))
    if (auto n = util::parse_decimal(*v, 1u << 20); n && *n > 0) return *n;
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return 1;
}

void say_event(const Json& event) {
  std::printf("%s\n", event.dump().c_str());
  std::fflush(stdout);
}

std::string this_host() { return util::short_host_name(util::host_name()); }

std::optional<Json> json_line(const std::string& line) {
  if (line.empty() || line.front() != '{') return std::nullopt;
  try {
    return Json::parse(line);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool process_alive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

std::string random_hex(std::size_t bytes) {
  util::UniqueFd fd(::open("/dev/urandom", O_RDONLY | O_CLOEXEC));
  std::string raw(bytes, '\0');
  if (!fd || ::read(fd.get(), raw.data(), bytes) != static_cast<ssize_t>(bytes))
    util::throw_errno("/dev/urandom", "cannot read", errno);
  std::string hex;
  for (unsigned char b : raw) hex += fmt::format("{:02x}", b);
  return hex;
}

std::vector<std::string> kill_marked(const std::string& marker) {
  std::vector<std::string> killed;
  DIR* proc = ::opendir("/proc");
  const pid_t self = ::getpid();
  for (dirent* e; proc && (e = ::readdir(proc));) {
    auto pid = util::parse_decimal(e->d_name, 1u << 30);
    if (!pid || static_cast<pid_t>(*pid) == self) continue;
    std::string environ, cmdline;
    try {
      environ = util::read_file(fmt::format("/proc/{}/environ", *pid));
      cmdline = util::read_file(fmt::format("/proc/{}/cmdline", *pid));
    } catch (const Error&) {
      continue;  // gone, or another user's
    }
    bool ours = false;
    for (std::string_view var : util::split(environ, '\0'))
      if (var == marker) ours = true;
    if (!ours) continue;
    for (char& c : cmdline)
      if (c == '\0') c = ' ';
    ::kill(static_cast<pid_t>(*pid), SIGKILL);
    killed.push_back(fmt::format("{} {}", *pid, util::trim(cmdline).substr(0, 120)));
  }
  if (proc) ::closedir(proc);
  return killed;
}

std::vector<std::string> kill_children() {
  std::vector<std::string> killed;
  const std::string self = std::to_string(::getpid());
  for (int round = 0; round < 20; ++round) {
    bool any = false;
    DIR* proc = ::opendir("/proc");
    for (dirent* e; proc && (e = ::readdir(proc));) {
      if (!util::parse_decimal(e->d_name, 1u << 30)) continue;
      std::string stat, cmdline;
      try {
        stat = util::read_file(fmt::format("/proc/{}/stat", e->d_name));
        cmdline = util::read_file(fmt::format("/proc/{}/cmdline", e->d_name));
      } catch (const Error&) {
        continue;
      }
      // "pid (comm) state ppid ...": the comm may hold spaces, the last ')' ends it.
      auto fields = util::split(stat.substr(std::min(stat.size(), stat.rfind(')') + 2)), ' ');
      if (fields.size() < 2 || fields[1] != self) continue;
      for (char& c : cmdline)
        if (c == '\0') c = ' ';
      ::kill(std::atoi(e->d_name), SIGKILL);
      killed.push_back(fmt::format("{} {}", e->d_name, util::trim(cmdline).substr(0, 120)));
      any = true;
    }
    if (proc) ::closedir(proc);
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    if (!any) break;
    ::usleep(20000);
  }
  std::sort(killed.begin(), killed.end());
  killed.erase(std::unique(killed.begin(), killed.end()), killed.end());
  return killed;
}

std::vector<std::string> run_checks(const std::vector<std::string>& on_nodes,
                                    const std::vector<std::string>& here,
                                    const job::Allocation& allocation) {
  std::vector<std::vector<std::string>> checks = {on_nodes};
  bool here_in_job = false;
  for (const auto& h : allocation.hosts) here_in_job |= util::short_host_name(h) == this_host();
  if (!here_in_job) checks.push_back(here);
  std::vector<std::string> leftovers;
  for (const auto& argv : checks) {
    util::CommandOutput r = util::run_command(argv, 60);
    for (std::string_view line : util::split_lines(r.out)) {
      auto j = json_line(std::string(line));
      if (!j || j->value("event", "") != "checked") continue;
      for (const auto& l : j->value("leftovers", std::vector<std::string>{}))
        leftovers.push_back(fmt::format("{}: {}", j->value("host", ""), l));
    }
  }
  return leftovers;
}

bool cluster_running(const std::string& dir) {
  try {
    Json state = Json::parse(util::read_file(state_file(dir)));
    if (state.value("ended", false)) return false;
    return state.value("host", "") != util::short_host_name(util::host_name()) ||
           process_alive(state.value("pid", -1));
  } catch (const std::exception&) {
    return false;
  }
}

void mark_cluster_ended(const std::string& dir) {
  try {
    Json state = Json::parse(util::read_file(state_file(dir)));
    state["ended"] = true;
    util::AtomicFileSet set;
    set.add(state_file(dir), state.dump(2) + "\n", 0600);
    set.commit();
  } catch (const std::exception&) {
  }
}

bool cluster_dir_taken(const std::string& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return false;
  if (cluster_running(dir)) return true;
  util::remove_tree(dir);
  return false;
}

std::string find_cluster_dir(const std::string& dir, const job::Environ& env,
                             const std::string& prefix, const std::string& service) {
  if (!dir.empty()) {
    if (::access(state_file(dir).c_str(), R_OK) != 0)
      throw Error(
          fmt::format("{}: not a ferry {} cluster's directory (no cluster.json)", dir, service),
          Error::Kind::usage);
    return util::absolute_path(dir);
  }
  std::vector<std::string> roots;
  try {
    std::string host = util::short_host_name(util::host_name());
    job::Allocation a = job::discover_allocation(env, {host, nullptr});
    if (a.scheduler != job::Scheduler::none) roots.push_back(job::job_dir(a, env));
  } catch (const Error&) {
  }
  if (roots.empty()) {
    std::string jobs = job::jobs_root(env);
    for (const std::string& name : names_in(jobs)) roots.push_back(jobs + "/" + name);
  }
  std::vector<std::string> running;
  for (const auto& root : roots)
    for (const std::string& name : names_in(root))
      if (name.starts_with(prefix) && cluster_running(root + "/" + name))
        running.push_back(root + "/" + name);
  if (running.size() == 1) return running.front();
  if (running.empty())
    throw Error(fmt::format("no ferry {} cluster is running (looked in {})", service,
                            util::join(roots, ", ")),
                Error::Kind::usage);
  throw Error(fmt::format("{} clusters are running: name one ({})", running.size(),
                          util::join(running, ", ")),
              Error::Kind::usage);
}

bool stop_cluster(const std::string& dir, const std::string& service, double seconds) {
  Json state = Json::parse(util::read_file(state_file(dir)));
  std::string host = state.value("host", "");
  if (host != util::short_host_name(util::host_name()))
    throw Error(
        fmt::format("{}: its coordinator runs on {}: run ferry {} stop there", dir, host, service),
        Error::Kind::usage);
  pid_t pid = state.value("pid", -1);
  if (!process_alive(pid)) return true;
  if (::kill(pid, SIGTERM) != 0) util::throw_errno(dir, "cannot signal its coordinator", errno);
  util::Stopwatch clock;
  while (process_alive(pid) && clock.seconds() < seconds) ::usleep(50000);
  return !process_alive(pid);
}

std::string tunnel_line(const std::vector<unsigned>& ports, const std::string& login_option,
                        const std::string& head, const std::string& head_address,
                        const job::Environ& env) {
  std::string user = job::lookup(env, "USER").value_or("");
  std::string at = user.empty() ? "" : user + "@";
  std::string login = login_option;
  for (const char* v : {"SLURM_SUBMIT_HOST", "PBS_O_HOST", "LSB_SUB_HOST"})
    if (login.empty()) login = job::lookup(env, v).value_or("");
  login = util::short_host_name(login);
  std::string line = "ssh -N ";
  for (unsigned port : ports)
    if (port) line += fmt::format("-L {0}:127.0.0.1:{0} ", port);
  if (!login.empty() && login != head) line += fmt::format("-J {}{} ", at, login);
  return line + at + head_address;
}

}  // namespace ferry::runtime
