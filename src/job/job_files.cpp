// The files ferry keeps for a job: where they live, the launch's hostfile, and the env.sh that
// `ferry job save` writes and `ferry job load` and `show` read back.
#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>

#include "job/job.hpp"

namespace ferry::job {
namespace {

// Variables describing the allocation, saved so a second shell sees the same job. Per-task and
// per-step variables are left out: they describe one process, not the job.
bool is_job_variable(const std::string& name) {
  static const char* prefixes[] = {"SLURM_", "PBS_", "LSB_", "COBALT_", "FLUX_"};
  static const char* per_task[] = {
      "STEP",     "PROCID", "LOCALID",   "TASK_PID",   "GTIDS",        "SRUN_COMM", "LAUNCH_NODE",
      "CPU_BIND", "PMI",    "TASK_RANK", "TASK_LOCAL", "DISTRIBUTION", "UMASK"};
  bool job = false;
  for (const char* p : prefixes) job |= name.starts_with(p);
  if (!job) return false;
  for (const char* t : per_task)
    if (name.find(t) != std::string::npos) return false;
  return true;
}

// Reads back a value written by util::shell_quote: '...' runs and \' escapes.
std::string shell_unquote(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\'') {
      std::size_t end = text.find('\'', i + 1);
      if (end == std::string::npos) end = text.size();
      out.append(text, i + 1, end - i - 1);
      i = end;
    } else if (text[i] == '\\' && i + 1 < text.size()) {
      out += text[++i];
    } else {
      out += text[i];
    }
  }
  return out;
}

}  // namespace

std::string jobs_root(const Environ& env) {
  std::string base;
  if (auto x = lookup(env, "XDG_CACHE_HOME"); x && !x->empty() && x->front() == '/')
    base = *x;
  else
    base = lookup(env, "HOME").value_or("/tmp") + "/.cache";
  return base + "/ferry/jobs";
}

std::string job_dir(const Allocation& a, const Environ& env) {
  std::string id = a.job_id.empty() ? "local-" + lookup(env, "USER").value_or("user") : a.job_id;
  for (char& ch : id)
    if (ch == '/') ch = '_';
  return fmt::format("{}/{}-{}", jobs_root(env), scheduler_name(a.scheduler), id);
}

std::string job_hostfile(const Allocation& allocation, const Environ& env) {
  return job_dir(allocation, env) + "/hostfile";
}

void write_job_file(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  util::write_file_atomically(path, text, 0644 & ~util::current_umask());
}

std::string hostfile_named_by_content(const std::string& hostfile, std::string_view text) {
  return fmt::format("{}-{}", hostfile, util::hex64(util::xxh3(text)).substr(0, 8));
}

void write_hostfile(LaunchPlan& plan, const std::string& hostfile) {
  if (plan.hostfile_text.empty()) return;
  std::string named = hostfile_named_by_content(hostfile, plan.hostfile_text);
  for (auto& a : plan.argv)
    if (a == hostfile) a = named;
  write_job_file(named, plan.hostfile_text);
}

std::string job_env_script(const Allocation& allocation, const Environ& env,
                           const std::string& hostfile, const JobSummary& summary) {
  std::string text = fmt::format("# ferry job environment: {} job {}, saved by `ferry job save`\n",
                                 scheduler_name(allocation.scheduler), allocation.job_id);
  auto put = [&](const std::string& k, const std::string& v) {
    text += fmt::format("export {}={}\n", k, util::shell_quote(v));
  };
  for (const auto& [k, v] : env)
    if (is_job_variable(k)) put(k, v);
  put("FERRY_JOB_SCHEDULER", std::string(scheduler_name(allocation.scheduler)));
  put("FERRY_JOB_ID", allocation.job_id);
  put("FERRY_HOSTFILE", hostfile);
  put("FERRY_NHOSTS", std::to_string(allocation.hosts.size()));
  put("FERRY_NGPU_PER_HOST", std::to_string(summary.gpus_per_host));
  put("FERRY_NGPUS", std::to_string(summary.gpus_per_host * allocation.hosts.size()));
  put("FERRY_MACHINE", summary.machine);
  if (summary.launch) put("FERRY_LAUNCH", util::command_line(*summary.launch));
  return text;
}

std::vector<std::pair<std::string, std::string>> read_job_env_script(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  for (std::string_view view : util::split_lines(text)) {
    std::string line(view);
    if (!line.starts_with("export FERRY_")) continue;
    std::size_t eq = line.find('=');
    out.emplace_back(line.substr(7, eq - 7), shell_unquote(line.substr(eq + 1)));
  }
  return out;
}

SavedJob save_job(const Allocation& allocation, const Environ& env, const JobSummary& summary,
                  const std::string& file) {
  std::string dir = job_dir(allocation, env);
  SavedJob saved{file.empty() ? dir + "/env.sh" : file, job_hostfile(allocation, env)};
  std::string hosts_text;
  for (const auto& h : allocation.hosts) hosts_text += h + "\n";
  write_job_file(saved.hostfile, hosts_text);
  write_job_file(saved.file, job_env_script(allocation, env, saved.hostfile, summary));
  // `latest` points at the job saved last, for `ferry job load` outside any job.
  std::string latest = std::filesystem::path(dir).parent_path().string() + "/latest";
  util::AtomicFileSet link;
  link.add_symlink(latest, saved.file);
  link.commit();
  return saved;
}

std::string find_saved_job(const Environ& env) {
  Allocation a;
  try {
    a = discover_allocation(env, {util::host_name(), nullptr});
  } catch (const Error&) {
  }
  std::string mine = job_dir(a, env) + "/env.sh";
  if (!a.job_id.empty() && ::access(mine.c_str(), R_OK) == 0) return mine;
  std::string latest = jobs_root(env) + "/latest";
  if (::access(latest.c_str(), R_OK) == 0) return latest;
  throw Error(
      fmt::format("no saved job (looked for {} and {}): run `ferry job save` in the job first",
                  mine, latest),
      Error::Kind::usage);
}

}  // namespace ferry::job
