// The rank layer: who am I among the job's processes, from whichever launcher started me, and the
// variables torch.distributed's env:// needs. No MPI: a mismatched libmpi cannot hang this.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "job/job.hpp"

namespace ferry::job {
namespace {

struct Scheme {
  const char* source;
  const char* rank;
  const char* local_rank;
  const char* size;
  const char* local_size;  // nullptr: not exported by this launcher
  const char* node;        // nullptr: derived as rank / local size (block placement)
  const char* proof;       // a variable that must be present for the scheme to apply
};

// Innermost launcher first (launch research note §3.5): torchrun inside srun sees both, and
// torchrun's values are the real ones. MPI launchers come before Slurm: Hydra and Open MPI start
// their proxies with srun, so their ranks also carry the proxies' step variables (one task per
// node). Slurm's PROCID/LOCALID are also set (to 0) in the batch script, so only
// SLURM_STEP_NUM_TASKS proves an srun task.
constexpr Scheme k_schemes[] = {
    {"torchrun", "RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK",
     "TORCHELASTIC_RUN_ID"},
    {"ferry", "FERRY_RANK", "FERRY_LOCAL_RANK", "FERRY_WORLD_SIZE", "FERRY_LOCAL_WORLD_SIZE",
     nullptr, "FERRY_RANK"},
    {"flux", "FLUX_TASK_RANK", "FLUX_TASK_LOCAL_ID", "FLUX_JOB_SIZE", nullptr, nullptr,
     "FLUX_TASK_RANK"},
    {"pals", "PALS_RANKID", "PALS_LOCAL_RANKID", "PMI_SIZE", "PALS_LOCAL_SIZE", "PALS_NODEID",
     "PALS_RANKID"},
    {"ompi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_SIZE",
     "OMPI_COMM_WORLD_LOCAL_SIZE", nullptr, "OMPI_COMM_WORLD_RANK"},
    {"mpich", "PMI_RANK", "MPI_LOCALRANKID", "PMI_SIZE", "MPI_LOCALNRANKS", nullptr,
     "MPI_LOCALRANKID"},
    {"mvapich", "MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_SIZE",
     "MV2_COMM_WORLD_LOCAL_SIZE", nullptr, "MV2_COMM_WORLD_RANK"},
    {"jsrun", "JSM_NAMESPACE_RANK", "JSM_NAMESPACE_LOCAL_RANK", "JSM_NAMESPACE_SIZE",
     "JSM_NAMESPACE_LOCAL_SIZE", nullptr, "JSM_NAMESPACE_RANK"},
    {"slurm", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_STEP_NUM_TASKS", nullptr, "SLURM_NODEID",
     "SLURM_STEP_NUM_TASKS"},
};

unsigned number(const Environ& env, const char* name) {
  auto v = lookup(env, name);
  if (!v)
    throw Error(fmt::format("{} is not set (needed with the launcher's other variables)", name));
  auto n = util::parse_decimal(*v, 1u << 30);
  if (!n) throw Error(fmt::format("{}='{}': expected a number", name, *v));
  return *n;
}

}  // namespace

RankInfo resolve_rank(const Environ& env) {
  for (const Scheme& s : k_schemes) {
    if (!lookup(env, s.proof)) continue;
    RankInfo r;
    r.source = s.source;
    r.rank = number(env, s.rank);
    r.local_rank = number(env, s.local_rank);
    r.world_size = number(env, s.size);
    if (s.local_size) {
      r.local_world_size = number(env, s.local_size);
    } else if (r.source == "slurm") {
      // SLURM_STEP_TASKS_PER_NODE, in node order: this node's entry.
      auto per_node = expand_count_list(lookup(env, "SLURM_STEP_TASKS_PER_NODE").value_or(""),
                                        "SLURM_STEP_TASKS_PER_NODE");
      unsigned node = number(env, "SLURM_NODEID");
      if (node >= per_node.size())
        throw Error(fmt::format("SLURM_NODEID={} but SLURM_STEP_TASKS_PER_NODE lists {} nodes",
                                node, per_node.size()));
      r.local_world_size = per_node[node];
    } else if (r.source == "flux") {
      unsigned nodes = lookup(env, "FLUX_JOB_NNODES") ? number(env, "FLUX_JOB_NNODES") : 1;
      // Flux exports no local size: the most a node holds (ceil), so an uneven layout is not
      // refused.
      r.local_world_size = nodes ? (r.world_size + nodes - 1) / nodes : r.world_size;
    }
    if (r.world_size == 0 || r.rank >= r.world_size)
      throw Error(fmt::format("{}={} is not below {}={}", s.rank, r.rank, s.size, r.world_size));
    if (r.local_world_size == 0 || r.local_rank >= r.local_world_size)
      throw Error(fmt::format("{}={} is not below the local size {}", s.local_rank, r.local_rank,
                              r.local_world_size));
    r.node_rank = s.node ? number(env, s.node) : r.rank / r.local_world_size;
    return r;
  }
  RankInfo lone;
  lone.source = "none";
  return lone;
}

namespace {

// rank_threads' first rules, which need nothing of the node: --threads, the user's
// OMP_NUM_THREADS, ferry's bind list, what ferry launch planned. nullopt: none of them says.
std::optional<unsigned> told_threads(const RankInfo& rank, const RankSetup& setup,
                                     const Environ& env) {
  if (setup.threads) return std::max(1u, *setup.threads);
  // The user's own OpenMP count is the rank's count for the libraries they left unset too.
  if (auto own = lookup(env, "OMP_NUM_THREADS"))
    if (auto n = util::parse_decimal(*own, 1u << 20); n && *n > 0) return *n;
  if (!setup.cpus.empty())
    return std::max<unsigned>(
        1, static_cast<unsigned>(setup.cpus[rank.local_rank % setup.cpus.size()].size()));
  if (setup.planned_threads) return std::max(1u, *setup.planned_threads);
  return std::nullopt;
}

// Its last rules: the launcher's binding when narrower than the cpuset, else a share of it.
unsigned node_share_threads(const RankInfo& rank, unsigned affinity_cpus, unsigned cpuset_cpus) {
  if (affinity_cpus > 0 && affinity_cpus < cpuset_cpus) return affinity_cpus;  // bound by launcher
  return std::max(1u, std::min(affinity_cpus, cpuset_cpus) / std::max(1u, rank.local_world_size));
}

}  // namespace

Environ rank_environment(const RankInfo& r, const RankSetup& setup, const Environ& env) {
  Environ out;
  out["RANK"] = std::to_string(r.rank);
  out["LOCAL_RANK"] = std::to_string(r.local_rank);
  out["WORLD_SIZE"] = std::to_string(r.world_size);
  out["LOCAL_WORLD_SIZE"] = std::to_string(r.local_world_size);
  out["GROUP_RANK"] = std::to_string(r.node_rank);
  out["NODE_RANK"] = std::to_string(r.node_rank);

  std::string addr = setup.master_addr;
  if (addr.empty()) addr = lookup(env, "MASTER_ADDR").value_or("");
  std::optional<Allocation> alloc;
  if (addr.empty() || (!setup.master_port && !lookup(env, "MASTER_PORT"))) {
    alloc = discover_allocation(env, {util::host_name(), nullptr});
  }
  if (addr.empty()) addr = alloc->hosts.front();
  std::string port;
  if (setup.master_port)
    port = std::to_string(*setup.master_port);
  else if (auto p = lookup(env, "MASTER_PORT"))
    port = *p;
  else
    port = std::to_string(
        master_port_for(alloc->job_id.empty() ? alloc->hosts.front() : alloc->job_id));
  out["MASTER_ADDR"] = addr;
  out["MASTER_PORT"] = port;

  if (setup.gpus_per_rank && !setup.gpu_selectors.empty() && !setup.visibility_variable.empty()) {
    std::vector<std::string> mine;
    std::size_t n = setup.gpu_selectors.size();
    for (unsigned i = 0; i < setup.gpus_per_rank; ++i)
      mine.push_back(setup.gpu_selectors[(r.local_rank * setup.gpus_per_rank + i) % n]);
    out[setup.visibility_variable] = util::join(mine, ",");
    if (setup.visibility_variable == "CUDA_VISIBLE_DEVICES")
      out["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID";
  }
  for (const auto& [k, v] : setup.extra_env)
    if (!lookup(env, k)) out[k] = v;
  // Threads: a count the machine's table sets counts as the user's. --threads 0: the command
  // sets them itself.
  if (setup.threads != 0u) {
    Environ given = env;
    for (const auto& [k, v] : setup.extra_env) given.emplace(k, v);
    // The affinity and the cgroup are read only when nothing the rank was told decides.
    std::optional<unsigned> threads = told_threads(r, setup, given);
    if (!threads)
      threads = node_share_threads(r, static_cast<unsigned>(process_affinity().size()),
                                   static_cast<unsigned>(cgroup_cpuset().size()));
    for (auto& [k, v] : thread_environment(*threads, setup.threads.has_value(), given)) out[k] = v;
  }
  // gloo listens on the interface its host name resolves to; on nodes whose names do not resolve
  // (or resolve to a management network) pick the one that reaches the master.
  if (!lookup(env, "GLOO_SOCKET_IFNAME"))
    if (Route route = route_towards(addr); !route.interface.empty() && route.interface != "lo")
      out["GLOO_SOCKET_IFNAME"] = route.interface;
  return out;
}

const std::vector<std::string>& thread_variables() {
  // OpenMP (PyTorch's intra-op pool, MKL and OpenBLAS built with it), MKL's and OpenBLAS's own,
  // BLIS's, and numexpr's (pandas, PyTables).
  static const std::vector<std::string> names = {"OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                 "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS",
                                                 "NUMEXPR_NUM_THREADS"};
  return names;
}

unsigned rank_threads(const RankInfo& rank, const RankSetup& setup, const Environ& env,
                      unsigned affinity_cpus, unsigned cpuset_cpus) {
  if (auto told = told_threads(rank, setup, env)) return *told;
  return node_share_threads(rank, affinity_cpus, cpuset_cpus);
}

Environ thread_environment(unsigned threads, bool force, const Environ& env) {
  Environ out;
  for (const std::string& name : thread_variables())
    if (force || !lookup(env, name)) out[name] = std::to_string(threads);
  return out;
}

void bind_rank_cpus(const RankInfo& rank, const RankSetup& setup) {
  if (setup.cpus.empty()) return;
  const std::vector<unsigned>& cpus = setup.cpus[rank.local_rank % setup.cpus.size()];
  cpu_set_t set;
  CPU_ZERO(&set);
  for (unsigned c : cpus)
    if (c < CPU_SETSIZE) CPU_SET(c, &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0)
    util::throw_errno(fmt::format("CPUs {}", format_cpu_list(cpus)),
                      "cannot bind local rank " + std::to_string(rank.local_rank) + " to", errno);
}

}  // namespace ferry::job
