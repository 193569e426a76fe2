// ferry sweep run, inside one array task: the point's command, its log, its result record.
#include <array>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <ctime>

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "env/env.hpp"
#include "sweep/sweep.hpp"

namespace ferry::sweep {
namespace {

using Json = nlohmann::ordered_json;

volatile sig_atomic_t g_stop_signal = 0, g_warned = 0;
void note_stop_signal(int sig) {
  if (sig == SIGUSR1)
    g_warned = 1;
  else
    g_stop_signal = sig;
}

// While the command runs: Slurm's warning (SIGUSR1), its time limit or scancel (SIGTERM) and
// Ctrl-C are noted for the wait loop instead of ending ferry before the result is written.
class StopSignals {
 public:
  StopSignals() {
    g_stop_signal = 0;
    g_warned = 0;
    struct sigaction sa {};
    sa.sa_handler = note_stop_signal;
    sigemptyset(&sa.sa_mask);
    for (std::size_t i = 0; i < k_signals.size(); ++i) ::sigaction(k_signals[i], &sa, &m_old[i]);
  }
  ~StopSignals() {
    for (std::size_t i = 0; i < k_signals.size(); ++i)
      ::sigaction(k_signals[i], &m_old[i], nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  static constexpr std::array<int, 3> k_signals = {SIGUSR1, SIGTERM, SIGINT};
  std::array<struct sigaction, 3> m_old{};
};

// stdout and stderr pointed at the log while the child is started (it inherits them), and back.
class OutputToLog {
 public:
  explicit OutputToLog(int log_fd) : m_out(::dup(1)), m_err(::dup(2)) {
    if (!m_out || !m_err) util::throw_errno("stdout", "cannot duplicate", errno);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
  }
  ~OutputToLog() {
    ::dup2(m_out.get(), 1);
    ::dup2(m_err.get(), 2);
  }
  OutputToLog(const OutputToLog&) = delete;
  OutputToLog& operator=(const OutputToLog&) = delete;

 private:
  util::UniqueFd m_out, m_err;
};

std::uint64_t task_index(const job::Environ& env, const RunOptions& options, std::size_t points) {
  std::string var = "--task";
  std::optional<std::uint64_t> id = options.task;
  if (!id) {
    var = "SLURM_ARRAY_TASK_ID";
    std::optional<std::string> task = job::lookup(env, var);
    if (!task) {
      var = "PBS_ARRAY_INDEX";
      task = job::lookup(env, var);
    }
    if (!task)
      throw Error(
          "neither SLURM_ARRAY_TASK_ID nor PBS_ARRAY_INDEX is set, and no --task (ferry sweep run "
          "runs inside an array task)",
          Error::Kind::usage);
    std::optional<unsigned> parsed = util::parse_decimal(*task, UINT_MAX);
    if (!parsed)
      throw Error(fmt::format("{}='{}': expected a number", var, util::printable(*task)));
    id = *parsed;
  }
  std::uint64_t index = options.offset + *id;
  if (index >= points)
    throw Error(fmt::format("{} {} with --offset {} is point {}; the sweep has {} points", var, *id,
                            options.offset, index, points));
  return index;
}

std::vector<std::string> child_environment(const job::Environ& env, const Manifest& m,
                                           std::uint64_t index) {
  job::Environ out = env;
  if (!m.env_dir.empty()) {
    struct stat st {};
    if (::stat((m.env_dir + "/bin").c_str(), &st) != 0)
      throw Error(fmt::format("--env {}: not on this host ({})", m.env_dir, util::host_name()));
    out = env::activated_environ(m.env_dir, std::move(out));
  }
  out["FERRY_SWEEP_DIR"] = m.dir;
  out["FERRY_SWEEP_INDEX"] = std::to_string(index);
  std::vector<std::string> list;
  for (const auto& [key, value] : out) list.push_back(key + "=" + value);
  return list;
}

// Waits for pid; once a stop signal is noted, SIGTERM to its group, and SIGKILL after
// grace_seconds: a timeout when Slurm's warning came before or the time limit (PBS) is near,
// else a cancellation. on_stop runs then, before the command has ended.
template <typename OnStop>
int wait_stopping(pid_t pid, const RunOptions& options, const util::Stopwatch& clock, RunResult& r,
                  OnStop on_stop) {
  bool terminated = false, warned = false;
  util::Stopwatch since_term;
  auto note_stop = [&] {
    bool at_limit = options.time_limit > 0 && clock.seconds() + k_limit_slack_seconds >=
                                                  static_cast<double>(options.time_limit);
    r.timeout = g_warned != 0 || at_limit;
    r.cancelled = !r.timeout;
  };
  struct timespec pause {
    0, 20'000'000
  };
  for (;;) {
    int status = 0;
    pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      // Slurm signals every process of the job at once: the command may be seen dead before
      // ferry's own SIGTERM is. A command ended by a stop signal waits a moment for it.
      int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
      bool external = sig == SIGTERM || sig == SIGKILL || sig == SIGINT || sig == SIGHUP;
      for (int i = 0; !terminated && external && g_stop_signal == 0 && i < 50; ++i)
        ::nanosleep(&pause, nullptr);
      if (!terminated && g_stop_signal != 0) note_stop();
      return status;
    }
    if (done < 0 && errno != EINTR) util::throw_errno("the command", "cannot wait for", errno);
    if (g_warned && !warned) {
      warned = true;
      std::fprintf(stderr, "ferry: sweep: Slurm's warning (SIGUSR1): the time limit is near\n");
    }
    if (g_stop_signal != 0 && !terminated) {
      note_stop();
      ::kill(-pid, SIGTERM);
      terminated = true;
      since_term = {};
      on_stop();
    } else if (terminated && since_term.seconds() > options.grace_seconds) {
      ::kill(-pid, SIGKILL);
    }
    ::nanosleep(&pause, nullptr);
  }
}

void keep_in_history(const std::string& run_dir, const std::string& result_path) {
  struct stat st {};
  if (::stat(result_path.c_str(), &st) != 0) return;
  std::string history = run_dir + "/history";
  if (::mkdir(history.c_str(), 0755) != 0 && errno != EEXIST)
    util::throw_errno(history, "cannot create", errno);
  for (unsigned n = 1;; ++n) {
    std::string path = fmt::format("{}/{}.json", history, n);
    if (::link(result_path.c_str(), path.c_str()) == 0) break;
    if (errno != EEXIST) util::throw_errno(path, "cannot create", errno);
  }
  if (::unlink(result_path.c_str()) != 0 && errno != ENOENT)
    util::throw_errno(result_path, "cannot remove", errno);
}

std::string variable(const job::Environ& env, const std::string& name) {
  return job::lookup(env, name).value_or("");
}

// How a command ended, as results and status write it: the one that applies, the other null.
void put_ending(Json& json, const std::optional<int>& exit_code, const std::optional<int>& signal) {
  json["exit_code"] = exit_code ? Json(*exit_code) : Json();
  json["signal"] = signal ? Json(*signal) : Json();
}

}  // namespace

void to_json(Json& json, const RunResult& r) {
  json["index"] = r.index;
  json["command"] = r.command;
  put_ending(json, r.exit_code, r.signal);
  json["timeout"] = r.timeout;
  json["cancelled"] = r.cancelled;
  json["start"] = r.start;
  json["end"] = r.end;
  json["seconds"] = r.seconds;
  json["host"] = r.host;
  json["job_id"] = r.job_id;
  json["array_job_id"] = r.array_job_id;
  json["array_task_id"] = r.array_task_id;
}

RunResult run_point(const std::string& dir, const RunOptions& options, const job::Environ& env) {
  Manifest m = read_manifest(util::absolute_path(dir));
  RunResult r;
  r.index = task_index(env, options, m.grid.points.size());
  std::string here = run_dir(m.dir, r.index);
  r.command = expand_command(m.command, m.grid, r.index, here);
  std::vector<std::string> child_env = child_environment(env, m, r.index);
  std::vector<std::string> argv = r.command;  // found on child_env's PATH (spawn_child)
  if (!m.image.empty()) {
    struct stat st {};
    if (::stat(m.image.c_str(), &st) != 0)
      throw Error(fmt::format("--image {}: not on this host ({})", m.image, util::host_name()));
    argv = {util::self_executable(), "run", m.image, "--"};
    argv.insert(argv.end(), r.command.begin(), r.command.end());
  }
  std::string result_path = here + "/result.json";
  // A rerun (requeue, resubmission) is not done until it has written its own record; the last
  // one is kept in history/.
  keep_in_history(here, result_path);
  std::string log_path = here + "/log";
  util::UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
  if (!log) util::throw_errno(log_path, "cannot open", errno);
  if (::chdir(here.c_str()) != 0) util::throw_errno(here, "cannot enter", errno);

  r.host = util::host_name();
  r.job_id = variable(env, "SLURM_JOB_ID");
  if (r.job_id.empty()) r.job_id = variable(env, "PBS_JOBID");
  r.array_job_id = variable(env, "SLURM_ARRAY_JOB_ID");
  r.array_task_id = variable(env, "SLURM_ARRAY_TASK_ID");
  if (r.array_task_id.empty()) r.array_task_id = variable(env, "PBS_ARRAY_INDEX");

  StopSignals signals;
  r.start = iso_time(std::chrono::system_clock::now());
  util::Stopwatch clock;
  pid_t pid = -1;
  {
    OutputToLog to_log(log.get());
    pid = util::spawn_child(argv, child_env, /*own_group=*/true);
  }
  // Slurm's SIGKILL follows its SIGTERM after KillWait, maybe before the command has ended: the
  // record says timeout or cancelled at once, and is completed if ferry lives to see the end.
  auto provisional = [&] {
    RunResult now = r;
    now.seconds = clock.seconds();
    now.end = iso_time(std::chrono::system_clock::now());
    util::write_file_atomically(result_path, Json(now).dump(2) + "\n", 0644);
  };
  int status = wait_stopping(pid, options, clock, r, provisional);
  ::kill(-pid, SIGKILL);  // what the command left running in its group
  r.seconds = clock.seconds();
  r.end = iso_time(std::chrono::system_clock::now());
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  util::write_file_atomically(result_path, Json(r).dump(2) + "\n", 0644);
  return r;
}

}  // namespace ferry::sweep
