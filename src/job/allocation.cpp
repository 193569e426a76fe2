// The allocation layer: which scheduler, which job, which hosts, from the scheduler's own
// variables and files (launch research note §2.6, §3, §6.1). Every count is cross-checked, so a
// disagreement is an error here rather than a hang at launch.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <unordered_map>

#include <fmt/format.h>

#include "job/job.hpp"

namespace ferry::job {
namespace {

std::optional<std::string> first_of(const Environ& env, std::initializer_list<const char*> names,
                                    std::string* which = nullptr) {
  for (const char* n : names)
    if (auto v = lookup(env, n); v && !v->empty()) {
      if (which) *which = n;
      return v;
    }
  return std::nullopt;
}

unsigned parse_count(const std::string& value, std::string_view what) {
  auto n = util::parse_decimal(value, 1u << 24);
  if (!n) throw Error(fmt::format("{}='{}': expected a number", what, value), Error::Kind::usage);
  return *n;
}

std::string first_label(const std::string& host) { return host.substr(0, host.find('.')); }

// Hosts in first-appearance order, each once (compared by their first label: nodefiles may hold
// FQDNs), with how many times each appeared: the slots.
void add_host_slots(Allocation& a, const std::string& host, unsigned count,
                    std::unordered_map<std::string, std::size_t>& index) {
  auto [it, fresh] = index.emplace(first_label(host), a.hosts.size());
  if (fresh) {
    a.hosts.push_back(host);
    a.slots.push_back(count);
  } else {
    a.slots[it->second] += count;
  }
}

// A line's first word (what follows it on the line is ignored); empty for a blank line.
std::string first_word(const std::string& line) {
  auto begin = line.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  auto end = line.find_first_of(" \t\r", begin);
  return line.substr(begin, end == std::string::npos ? end : end - begin);
}

// A nodefile: one host per line (per slot for PBS), blank lines and '#' comments skipped.
void read_nodefile(Allocation& a, const std::string& path, const std::string& variable) {
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("{}={}: cannot read the nodefile", variable, path));
  std::unordered_map<std::string, std::size_t> index;
  std::string line;
  while (std::getline(in, line)) {
    std::string host = first_word(line);
    if (!host.empty() && host[0] != '#') add_host_slots(a, host, 1, index);
  }
  if (a.hosts.empty()) throw Error(fmt::format("{}={}: the nodefile is empty", variable, path));
  a.source = path;
}

void discover_slurm(Allocation& a, const Environ& env, const AllocationOptions& o) {
  a.job_id = *first_of(env, {"SLURM_JOB_ID", "SLURM_JOBID"});
  std::string var;
  auto nodelist = first_of(env, {"SLURM_JOB_NODELIST", "SLURM_NODELIST"}, &var);
  if (!nodelist)
    throw Error(fmt::format("SLURM_JOB_ID={} is set but SLURM_JOB_NODELIST is not", a.job_id));
  if (nodelist->find('{') != std::string::npos) {
    // Controller-side syntax: only slurmctld expands it.
    std::string out =
        (o.run ? o.run : util::output_of)({"scontrol", "show", "hostnames", *nodelist});
    a.hosts = expand_hostlist(out);
  } else {
    a.hosts = expand_hostlist(*nodelist);
  }
  if (a.hosts.empty()) throw Error(fmt::format("{}='{}': no hosts", var, *nodelist));
  a.source = var;
  // Inside an srun step SLURM_NNODES describes the step; the job's own count is authoritative.
  std::string count_var;
  auto nnodes = first_of(env, {"SLURM_JOB_NUM_NODES"}, &count_var);
  if (!nnodes && !lookup(env, "SLURM_STEP_NUM_TASKS"))
    nnodes = first_of(env, {"SLURM_NNODES"}, &count_var);
  if (nnodes && parse_count(*nnodes, count_var) != a.hosts.size())
    throw Error(fmt::format("{}={} disagrees with {}={} ({} hosts)", count_var, *nnodes, var,
                            *nodelist, a.hosts.size()),
                Error::Kind::usage);
  if (auto cpus = first_of(env, {"SLURM_JOB_CPUS_PER_NODE"})) {
    a.cpus = expand_count_list(*cpus, "SLURM_JOB_CPUS_PER_NODE");
    if (a.cpus.size() != a.hosts.size())
      throw Error(fmt::format("SLURM_JOB_CPUS_PER_NODE={} lists {} hosts, {} has {}", *cpus,
                              a.cpus.size(), var, a.hosts.size()),
                  Error::Kind::usage);
  }
  // Task counts are the step's inside a step; use them only when they describe every host.
  if (auto tasks = first_of(env, {"SLURM_TASKS_PER_NODE"})) {
    auto slots = expand_count_list(*tasks, "SLURM_TASKS_PER_NODE");
    if (slots.size() == a.hosts.size()) a.slots = std::move(slots);
  }
  // SLURM_GPUS_ON_NODE is unset when no GPU was allocated; SLURM_GPUS_PER_NODE may read "a100:4".
  if (auto g = first_of(env, {"SLURM_GPUS_ON_NODE"})) {
    a.gpus_per_host = parse_count(*g, "SLURM_GPUS_ON_NODE");
  } else if (auto per = first_of(env, {"SLURM_GPUS_PER_NODE"})) {
    a.gpus_per_host = parse_count(per->substr(per->rfind(':') + 1), "SLURM_GPUS_PER_NODE");
  }
}

void discover_pbs(Allocation& a, const Environ& env) {
  a.job_id = *first_of(env, {"PBS_JOBID"});
  auto nodefile = first_of(env, {"PBS_NODEFILE"});
  if (!nodefile) throw Error(fmt::format("PBS_JOBID={} is set but PBS_NODEFILE is not", a.job_id));
  read_nodefile(a, *nodefile, "PBS_NODEFILE");
}

void discover_lsf(Allocation& a, const Environ& env) {
  a.job_id = *first_of(env, {"LSB_JOBID"});
  // LSB_DJOB_RANKFILE lists one host per slot, the first line being the launch (batch) node,
  // which runs no ranks (Summit-class machines): drop it.
  if (auto file = first_of(env, {"LSB_DJOB_RANKFILE"})) {
    std::ifstream in(*file);
    std::string first;
    if (!in || !std::getline(in, first))
      throw Error(fmt::format("LSB_DJOB_RANKFILE={}: cannot read the rank file", *file));
    std::unordered_map<std::string, std::size_t> index;
    std::string line;
    while (std::getline(in, line))
      if (std::string host = first_word(line); !host.empty()) add_host_slots(a, host, 1, index);
    if (a.hosts.empty())
      throw Error(
          fmt::format("LSB_DJOB_RANKFILE={}: no compute hosts after the launch node", *file));
    a.source = *file;
    return;
  }
  if (auto file = first_of(env, {"LSB_DJOB_HOSTFILE"})) {
    read_nodefile(a, *file, "LSB_DJOB_HOSTFILE");
    return;
  }
  auto pairs = first_of(env, {"LSB_MCPU_HOSTS"});
  if (!pairs)
    throw Error(fmt::format("LSB_JOBID={} is set but neither LSB_DJOB_HOSTFILE nor LSB_MCPU_HOSTS",
                            a.job_id));
  // "host1 42 host2 42": host and slot pairs.
  std::vector<std::string> words;
  for (std::string_view word : util::split(*pairs, ' '))
    if (!word.empty()) words.emplace_back(word);
  if (words.empty() || words.size() % 2)
    throw Error(fmt::format("LSB_MCPU_HOSTS='{}': expected 'host slots' pairs", *pairs),
                Error::Kind::usage);
  std::unordered_map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < words.size(); i += 2)
    add_host_slots(a, words[i], parse_count(words[i + 1], "LSB_MCPU_HOSTS"), index);
  a.source = "LSB_MCPU_HOSTS";
}

void discover_cobalt(Allocation& a, const Environ& env) {
  a.job_id = *first_of(env, {"COBALT_JOBID"});
  auto nodefile = first_of(env, {"COBALT_NODEFILE"});
  if (!nodefile)
    throw Error(fmt::format("COBALT_JOBID={} is set but COBALT_NODEFILE is not", a.job_id));
  read_nodefile(a, *nodefile, "COBALT_NODEFILE");
  if (auto size = first_of(env, {"COBALT_JOBSIZE"});
      size && parse_count(*size, "COBALT_JOBSIZE") != a.hosts.size())
    throw Error(fmt::format("COBALT_JOBSIZE={} disagrees with COBALT_NODEFILE ({} hosts)", *size,
                            a.hosts.size()),
                Error::Kind::usage);
}

void discover_flux(Allocation& a, const AllocationOptions& o) {
  auto run = o.run ? o.run : util::output_of;
  std::string hostlist = run({"flux", "getattr", "hostlist"});
  a.hosts = expand_hostlist(hostlist);
  std::string id = run({"flux", "getattr", "jobid"});
  a.job_id = std::string(util::trim(id));
  a.source = "flux getattr hostlist";
  if (a.hosts.empty()) throw Error("flux getattr hostlist: no hosts");
}

}  // namespace

std::string_view scheduler_name(Scheduler scheduler) {
  switch (scheduler) {
    case Scheduler::slurm: return "slurm";
    case Scheduler::pbs: return "pbs";
    case Scheduler::lsf: return "lsf";
    case Scheduler::cobalt: return "cobalt";
    case Scheduler::flux: return "flux";
    case Scheduler::none: break;
  }
  return "none";
}

Allocation discover_allocation(const Environ& env, const AllocationOptions& options) {
  Allocation a;
  // Innermost first: Flux started inside Slurm (Frontier) is the allocation its programs see.
  if (first_of(env, {"FLUX_URI"}) && !first_of(env, {"FLUX_TASK_RANK"})) {
    a.scheduler = Scheduler::flux;
    discover_flux(a, options);
  } else if (first_of(env, {"SLURM_JOB_ID", "SLURM_JOBID"})) {
    a.scheduler = Scheduler::slurm;
    discover_slurm(a, env, options);
  } else if (first_of(env, {"PBS_JOBID"})) {
    a.scheduler = Scheduler::pbs;
    discover_pbs(a, env);
  } else if (first_of(env, {"LSB_JOBID"})) {
    a.scheduler = Scheduler::lsf;
    discover_lsf(a, env);
  } else if (first_of(env, {"COBALT_JOBID"})) {
    a.scheduler = Scheduler::cobalt;
    discover_cobalt(a, env);
  } else {
    a.hosts = {options.hostname};
    a.source = "this host";
  }
  return a;
}

}  // namespace ferry::job
