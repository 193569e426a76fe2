// The job from a shell that is not its own (a second terminal, ssh to a compute node): read from
// the scheduler's query tools, and turned into the variables the job's own shell would have, so
// everything after discovery works as it does inside the job.
#include <algorithm>

#include <fmt/format.h>

#include "job/job.hpp"

namespace ferry::job {
namespace {

// "2(x3),1" from {2, 2, 2, 1}: the form of SLURM_JOB_CPUS_PER_NODE.
std::string compress_counts(const std::vector<unsigned>& counts) {
  std::string out;
  for (std::size_t i = 0; i < counts.size();) {
    std::size_t j = i;
    while (j < counts.size() && counts[j] == counts[i]) ++j;
    if (!out.empty()) out += ',';
    out += j - i > 1 ? fmt::format("{}(x{})", counts[i], j - i) : std::to_string(counts[i]);
    i = j;
  }
  return out;
}

// ---- Slurm: `scontrol show job -d -o ID`, one line of KEY=VALUE words. Values may hold spaces
// (JobName, Command, WorkDir), so a word without '=' belongs to the value before it; the
// per-node detail (Nodes= CPU_IDs= Mem= GRES=) repeats, so the pairs stay a list.
using Pairs = std::vector<std::pair<std::string, std::string>>;

bool is_key(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '/' || c == ':';
  });
}

Pairs scontrol_pairs(std::string_view line) {
  Pairs out;
  for (std::string_view word : util::split(util::trim(line), ' ')) {
    if (word.empty()) continue;
    auto eq = word.find('=');
    if (eq != std::string_view::npos && is_key(word.substr(0, eq)))
      out.emplace_back(std::string(word.substr(0, eq)), std::string(word.substr(eq + 1)));
    else if (!out.empty())
      out.back().second.append(" ").append(word);
  }
  return out;
}

const std::string* first_value(const Pairs& pairs, std::string_view key) {
  for (const auto& [k, v] : pairs)
    if (k == key) return &v;
  return nullptr;
}

// "gpu:a100:4(IDX:0-3),nic:1" -> 4; nullopt when the node has no GPU.
std::optional<unsigned> gres_gpus(std::string_view gres) {
  for (std::string_view item : util::split(gres, ',')) {
    if (!item.starts_with("gpu")) continue;
    item = item.substr(0, item.find('('));
    std::string_view count = item.substr(item.rfind(':') + 1);
    if (auto n = util::parse_decimal(count, 1u << 16)) return n;
  }
  return std::nullopt;
}

// "alice(1000)" -> "alice".
std::string user_of(std::string_view value) {
  return std::string(value.substr(0, value.find('(')));
}

// ---- PBS: `qstat -f`: "Job Id: ID" then indented "name = value" lines; a long value continues
// on lines that begin with a tab (OpenPBS) or with more indentation than an attribute's
// (PBS Pro's wrapping at 80 columns).
struct QstatJob {
  std::string id;
  std::map<std::string, std::string> attributes;
};

std::vector<QstatJob> qstat_jobs(std::string_view text) {
  std::vector<QstatJob> jobs;
  std::string* last = nullptr;  // the value a continuation line extends
  for (std::string_view raw : util::split_lines(text)) {
    std::string_view line = raw;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.starts_with("Job Id:")) {
      jobs.push_back({std::string(util::trim(line.substr(7))), {}});
      last = nullptr;
      continue;
    }
    if (jobs.empty() || util::trim(line).empty()) continue;
    std::size_t indent = line.find_first_not_of(" \t");
    auto eq = line.find(" = ");
    // Attributes are indented by four spaces; anything else indented is a value wrapping on.
    bool attribute = line[0] != '\t' && indent <= 4 && eq != std::string_view::npos;
    // qstat wraps at a fixed width, mid-word and after spaces alike: only the indent goes.
    if (attribute) {
      std::string name(util::trim(line.substr(0, eq)));
      last = &(jobs.back().attributes[name] = std::string(line.substr(eq + 3)));
    } else if (last) {
      *last += line.substr(indent);
    }
  }
  return jobs;
}

// "2:ncpus=64:mpiprocs=4+1:ncpus=8" -> the mpiprocs of each chunk, in order: {4, 4, 1}. A chunk
// without mpiprocs gets PBS's default, 1.
std::vector<unsigned> select_mpiprocs(std::string_view select) {
  std::vector<unsigned> out;
  for (std::string_view spec : util::split(select, '+')) {
    unsigned chunks = 1, mpiprocs = 1;
    auto parts = util::split(spec, ':');
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (i == 0)
        if (auto n = util::parse_decimal(parts[i], 1u << 24)) {
          chunks = *n;
          continue;
        }
      if (parts[i].starts_with("mpiprocs="))
        mpiprocs = util::parse_decimal(parts[i].substr(9), 1u << 24).value_or(1);
    }
    out.insert(out.end(), chunks, mpiprocs);
  }
  return out;
}

// exec_host "n1/0*64+n2/0*64+n1/1*8": one entry per chunk, host/index*ncpus (no "*": 1 CPU).
// Hosts in first-appearance order; each host's CPUs and slots summed over its chunks.
void read_exec_host(JobRecord& job, std::string_view exec_host,
                    const std::vector<unsigned>& procs) {
  std::size_t chunk = 0;
  for (std::string_view entry : util::split(exec_host, '+')) {
    entry = util::trim(entry);
    if (entry.empty()) continue;
    std::string host(entry.substr(0, entry.find('/')));
    unsigned ncpus = 1;
    if (auto star = entry.find('*'); star != std::string_view::npos)
      ncpus = util::parse_decimal(entry.substr(star + 1), 1u << 24).value_or(1);
    unsigned slots = chunk < procs.size() ? procs[chunk] : 1;
    ++chunk;
    auto it = std::find_if(job.hosts.begin(), job.hosts.end(), [&](const std::string& h) {
      return util::short_host_name(h) == util::short_host_name(host);
    });
    if (it == job.hosts.end()) {
      job.hosts.push_back(host);
      job.cpus.push_back(ncpus);
      job.slots.push_back(slots);
    } else {
      auto i = static_cast<std::size_t>(it - job.hosts.begin());
      job.cpus[i] += ncpus;
      job.slots[i] += slots;
    }
  }
}

std::string owner_of(const std::string& job_owner) {
  return job_owner.substr(0, job_owner.find('@'));
}

util::CommandOutput run_tool(const FindJobOptions& o, const std::vector<std::string>& argv) {
  if (o.run) return o.run(argv);
  return util::run_command(argv, o.timeout_seconds);
}

std::string describe(const JobRecord& j) {
  return fmt::format("{} ({}) on {}", j.id, j.name.empty() ? "no name" : j.name,
                     j.hosts.empty() ? std::string("no hosts") : compress_hostlist(j.hosts));
}

bool holds_host(const JobRecord& j, const std::string& host) {
  return std::any_of(j.hosts.begin(), j.hosts.end(), [&](const std::string& h) {
    return util::short_host_name(h) == util::short_host_name(host);
  });
}

// Slurm's record of job `id`; nullopt when Slurm does not know it (another scheduler's id).
std::optional<JobRecord> slurm_job(const FindJobOptions& o, const std::string& id) {
  util::CommandOutput r = run_tool(o, {"scontrol", "show", "job", "-d", "-o", id});
  if (r.timed_out)
    throw Error(
        fmt::format("--job {}: scontrol show job did not answer in {} s", id, o.timeout_seconds));
  if (r.status != 0) return std::nullopt;
  return parse_scontrol_job(r.out);
}

std::optional<std::vector<JobRecord>> pbs_jobs(const FindJobOptions& o,
                                               const std::vector<std::string>& ids) {
  std::vector<std::string> argv = {"qstat", "-f"};
  argv.insert(argv.end(), ids.begin(), ids.end());
  util::CommandOutput r = run_tool(o, argv);
  if (r.timed_out || r.status != 0) return std::nullopt;
  return parse_qstat_full(r.out);
}

// The user's running jobs that hold o.hostname, from each scheduler whose tools are here. A tool
// that fails or does not answer (a laptop with Slurm's client but no controller) finds none.
std::vector<JobRecord> jobs_on_this_host(const FindJobOptions& o) {
  std::vector<JobRecord> found;
  if (o.slurm) {
    util::CommandOutput r =
        run_tool(o, {"squeue", "-h", "-u", o.user, "-t", "RUNNING", "-w", o.hostname, "-o", "%i"});
    if (!r.timed_out && r.status == 0)
      for (std::string_view id : util::split_lines(r.out))
        if (!util::trim(id).empty())
          if (auto j = slurm_job(o, std::string(util::trim(id))); j && j->running())
            found.push_back(*j);
  }
  if (o.pbs) {
    util::CommandOutput r = run_tool(o, {"qselect", "-u", o.user, "-s", "R"});
    std::vector<std::string> ids;
    if (!r.timed_out && r.status == 0)
      for (std::string_view id : util::split_lines(r.out))
        if (!util::trim(id).empty()) ids.emplace_back(util::trim(id));
    if (!ids.empty())
      if (auto jobs = pbs_jobs(o, ids))
        for (auto& j : *jobs)
          if (j.running() && j.user == o.user && holds_host(j, o.hostname)) found.push_back(j);
  }
  return found;
}

}  // namespace

bool JobRecord::running() const { return state == "RUNNING" || state == "R"; }

JobRecord parse_scontrol_job(std::string_view line) {
  Pairs pairs = scontrol_pairs(line);
  const std::string* id = first_value(pairs, "JobId");
  if (!id) throw Error(fmt::format("scontrol show job: no JobId in '{}'", util::trim(line)));
  JobRecord j;
  j.scheduler = Scheduler::slurm;
  j.id = *id;
  if (auto* v = first_value(pairs, "JobName")) j.name = *v;
  if (auto* v = first_value(pairs, "UserId")) j.user = user_of(*v);
  if (auto* v = first_value(pairs, "JobState")) j.state = *v;
  if (auto* v = first_value(pairs, "Partition")) j.partition = *v;
  if (auto* v = first_value(pairs, "NodeList"); v && *v != "(null)") j.hosts = expand_hostlist(*v);
  // -d: per group of nodes, the CPUs allocated on each (CPU_IDs) and its GRES.
  std::map<std::string, unsigned> cpus;
  std::optional<unsigned> gpus;
  bool gpus_alike = true, first_group = true;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    if (pairs[i].first != "Nodes") continue;
    std::vector<std::string> group = expand_hostlist(pairs[i].second);
    std::optional<unsigned> n, g;
    for (std::size_t k = i + 1; k < pairs.size() && pairs[k].first != "Nodes"; ++k) {
      if (pairs[k].first == "CPU_IDs")
        n = static_cast<unsigned>(parse_cpu_list(pairs[k].second, "scontrol's CPU_IDs").size());
      if (pairs[k].first == "GRES") g = gres_gpus(pairs[k].second);
    }
    if (n)
      for (const auto& h : group) cpus[h] = *n;
    if (first_group)
      gpus = g;
    else if (g != gpus)
      gpus_alike = false;
    first_group = false;
  }
  if (!cpus.empty() && cpus.size() == j.hosts.size())
    for (const auto& h : j.hosts) j.cpus.push_back(cpus.count(h) ? cpus[h] : 0);
  if (std::find(j.cpus.begin(), j.cpus.end(), 0u) != j.cpus.end()) j.cpus.clear();
  if (gpus_alike) j.gpus_per_host = gpus;
  return j;
}

std::vector<JobRecord> parse_qstat_full(std::string_view text) {
  std::vector<JobRecord> out;
  for (QstatJob& q : qstat_jobs(text)) {
    JobRecord j;
    j.scheduler = Scheduler::pbs;
    j.id = q.id;
    auto get = [&](const char* name) {
      auto it = q.attributes.find(name);
      return it == q.attributes.end() ? std::string() : std::string(util::trim(it->second));
    };
    j.name = get("Job_Name");
    j.user = owner_of(get("Job_Owner"));
    j.state = get("job_state");
    j.partition = get("queue");
    if (std::string hosts = get("exec_host"); !hosts.empty())
      read_exec_host(j, hosts, select_mpiprocs(get("Resource_List.select")));
    out.push_back(std::move(j));
  }
  return out;
}

bool names_a_job(const Environ& env) {
  for (const char* name :
       {"FLUX_URI", "SLURM_JOB_ID", "SLURM_JOBID", "PBS_JOBID", "LSB_JOBID", "COBALT_JOBID"})
    if (auto v = lookup(env, name); v && !v->empty()) return true;
  return false;
}

Environ without_job_variables(const Environ& env) {
  // What salloc, sbatch, srun and PBS set to describe a job, its step and its task; a Slurm
  // client's own settings (SLURM_CONF, SLURM_TIME_FORMAT) and the user's srun options stay.
  static const char* prefixes[] = {
      "SLURM_JOB",     "SLURM_STEP",    "SLURM_NODE",    "SLURM_TASK",    "SLURM_NTASKS",
      "SLURM_CPUS_",   "SLURM_GPUS",    "SLURM_MEM_",    "SLURM_SRUN_",   "SLURM_LOCALID",
      "SLURM_PROCID",  "SLURM_GTIDS",   "SLURM_SUBMIT_", "SLURM_LAUNCH_", "SLURM_TRES",
      "SLURM_CLUSTER", "SLURM_OVERLAP", "PBS_",          "FLUX_",         "LSB_",
      "COBALT_"};
  static const char* names[] = {"SLURM_JOBID", "SLURM_NNODES", "SLURM_NPROCS", "SLURM_NODELIST"};
  Environ out;
  for (const auto& [k, v] : env) {
    bool job =
        std::any_of(std::begin(prefixes), std::end(prefixes),
                    [&](const char* p) { return k.starts_with(p); }) ||
        std::any_of(std::begin(names), std::end(names), [&](const char* n) { return k == n; });
    if (!job) out.emplace(k, v);
  }
  return out;
}

Environ job_variables(const JobRecord& j, const std::string& nodefile) {
  Environ v;
  if (j.scheduler == Scheduler::slurm) {
    std::string hosts = compress_hostlist(j.hosts);
    v = {{"SLURM_JOB_ID", j.id},
         {"SLURM_JOBID", j.id},
         {"SLURM_JOB_NODELIST", hosts},
         {"SLURM_NODELIST", hosts},
         {"SLURM_JOB_NUM_NODES", std::to_string(j.hosts.size())},
         {"SLURM_NNODES", std::to_string(j.hosts.size())},
         // Steps started from outside share the CPUs of the job's own steps (an interactive
         // srun --pty holds them all): srun --overlap.
         {"SLURM_OVERLAP", "1"}};
    if (!j.name.empty()) v["SLURM_JOB_NAME"] = j.name;
    if (!j.partition.empty()) v["SLURM_JOB_PARTITION"] = j.partition;
    if (!j.cpus.empty()) v["SLURM_JOB_CPUS_PER_NODE"] = compress_counts(j.cpus);
    if (j.gpus_per_host) v["SLURM_GPUS_ON_NODE"] = std::to_string(*j.gpus_per_host);
  } else if (j.scheduler == Scheduler::pbs) {
    // PBS_NODEFILE's form: each host once per MPI slot of its chunks, in exec_host order.
    std::string text;
    for (std::size_t i = 0; i < j.hosts.size(); ++i)
      for (unsigned s = 0; s < (i < j.slots.size() ? j.slots[i] : 1); ++s)
        text += j.hosts[i] + "\n";
    write_job_file(nodefile, text);
    v = {{"PBS_JOBID", j.id}, {"PBS_NODEFILE", nodefile}};
    if (!j.name.empty()) v["PBS_JOBNAME"] = j.name;
    if (!j.partition.empty()) v["PBS_QUEUE"] = j.partition;
  }
  return v;
}

std::optional<FoundJob> find_job(const Environ& env, const FindJobOptions& o) {
  if (!o.id.empty()) {
    std::optional<JobRecord> job;
    if (o.slurm) job = slurm_job(o, o.id);
    if (!job && o.pbs)
      if (auto jobs = pbs_jobs(o, {o.id}); jobs && !jobs->empty()) job = jobs->front();
    if (!o.slurm && !o.pbs)
      throw Error(
          fmt::format("--job {}: neither scontrol (Slurm) nor qstat (PBS) is on PATH", o.id),
          Error::Kind::usage);
    if (!job)
      throw Error(
          fmt::format("--job {}: no such job ({} does not know it)", o.id,
                      o.slurm ? (o.pbs ? "neither scontrol nor qstat" : "scontrol") : "qstat"),
          Error::Kind::usage);
    if (!job->running())
      throw Error(fmt::format("--job {}: the job is {}, not running", o.id, job->state),
                  Error::Kind::usage);
    if (job->hosts.empty()) throw Error(fmt::format("--job {}: the job holds no hosts", o.id));
    if (!o.user.empty() && o.user != "root" && job->user != o.user)
      throw Error(fmt::format("--job {}: the job is {}'s, not yours ({})", o.id, job->user, o.user),
                  Error::Kind::usage);
    return FoundJob{*job, fmt::format("--job {}", o.id)};
  }
  if (names_a_job(env) || o.hostname.empty() || o.user.empty()) return std::nullopt;
  std::vector<JobRecord> jobs = jobs_on_this_host(o);
  if (jobs.empty()) return std::nullopt;
  if (jobs.size() > 1) {
    std::string list;
    for (const auto& j : jobs) list += (list.empty() ? "" : "; ") + describe(j);
    throw Error(fmt::format("this host ({}) is in {} running jobs of yours: {}; choose one with "
                            "--job ID",
                            o.hostname, jobs.size(), list),
                Error::Kind::usage);
  }
  return FoundJob{jobs.front(), fmt::format("job {}, the only running job of yours on {} "
                                            "(--job ID picks another)",
                                            describe(jobs.front()), o.hostname)};
}

}  // namespace ferry::job
