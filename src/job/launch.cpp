// The launch line: how many ranks where, which CPUs and GPUs each gets, in the grammar of the
// machine's launcher, with ferry's rank wrapper in front of the user's command.
#include <netdb.h>

#include <algorithm>
#include <map>
#include <numeric>

#include <fmt/format.h>

#include "job/job.hpp"

namespace ferry::job {
namespace {

[[noreturn]] void misfit(const std::string& message) { throw Error(message, Error::Kind::usage); }

// Visible devices in local-rank order: by NUMA node (unknown last), then PCI address, then tile,
// so local rank r sits next to its GPU (Polaris: local rank 0 gets GPU 3, on NUMA 0).
std::vector<GpuDevice> devices_by_locality(const GpuInventory& inv) {
  std::vector<GpuDevice> devices = inv.visible;
  auto key = [&](const GpuDevice& d) {
    const Gpu& g = inv.gpus.at(d.gpu);
    return std::make_tuple(g.numa_node < 0 ? 1 << 30 : g.numa_node, g.pci_address, d.tile);
  };
  std::stable_sort(devices.begin(), devices.end(),
                   [&](const auto& a, const auto& b) { return key(a) < key(b); });
  return devices;
}

// The launch line goes to every node, so a rank's GPU must be named the same way on all of them:
// a UUID names one node's card only. NVIDIA devices become their position among the node's usable
// GPUs (CUDA's numbering, with CUDA_DEVICE_ORDER=PCI_BUS_ID); the others already are positional.
std::string portable_selector(const GpuInventory& inv, const GpuDevice& d) {
  const Gpu& g = inv.gpus.at(d.gpu);
  if (g.vendor != GpuVendor::nvidia) return d.selector;
  unsigned position = 0;
  for (std::size_t i = 0; i < d.gpu; ++i)
    if (inv.gpus[i].usable && inv.gpus[i].vendor == GpuVendor::nvidia) ++position;
  return std::to_string(position);
}

std::vector<unsigned> usable_cpus(const CpuInventory& cpus, const Machine& machine) {
  std::vector<unsigned> usable = cpus.allowed;
  if (usable.empty())
    for (unsigned c = 0; c < cpus.logical; ++c) usable.push_back(c);
  std::erase_if(usable, [&](unsigned c) {
    return std::find(machine.reserved_cpus.begin(), machine.reserved_cpus.end(), c) !=
           machine.reserved_cpus.end();
  });
  return usable;
}

// CPUs per local rank: the CPUs near each rank's GPU (the machine table's map, else the PCI
// device's local_cpulist), split in contiguous blocks among the ranks that share them; without
// GPUs, the usable CPUs split evenly.
std::vector<std::vector<unsigned>> split_cpus(const std::vector<unsigned>& usable,
                                              const CpuInventory& cpus, const GpuInventory& inv,
                                              const std::vector<GpuDevice>& devices,
                                              const Machine& machine, unsigned ppn, unsigned gpr) {
  std::vector<std::vector<unsigned>> domain(ppn);
  for (unsigned r = 0; r < ppn; ++r) {
    if (gpr && !devices.empty()) {
      const Gpu& g = inv.gpus.at(devices[(r * gpr) % devices.size()].gpu);
      auto table = machine.gpu_cpus.find(g.index);
      for (unsigned c : table != machine.gpu_cpus.end() ? table->second : g.local_cpus)
        if (std::binary_search(usable.begin(), usable.end(), c)) domain[r].push_back(c);
    }
    if (domain[r].empty()) domain[r] = usable;
  }
  // Ranks sharing a domain split its physical cores in contiguous blocks; each rank gets all the
  // SMT siblings of its cores (two ranks must not share a core through its hyperthreads).
  std::vector<std::vector<unsigned>> out(ppn);
  for (unsigned r = 0; r < ppn; ++r) {
    std::vector<unsigned> sharers;
    for (unsigned s = 0; s < ppn; ++s)
      if (domain[s] == domain[r]) sharers.push_back(s);
    std::size_t position =
        static_cast<std::size_t>(std::find(sharers.begin(), sharers.end(), r) - sharers.begin());
    std::vector<std::vector<unsigned>> cores;  // the domain's cores, each with its CPUs
    std::map<unsigned, std::size_t> slot;
    for (unsigned c : domain[r]) {
      auto it = cpus.core_of.find(c);
      unsigned core = it == cpus.core_of.end() ? (1u << 30) + c : it->second;
      auto [at, fresh] = slot.emplace(core, cores.size());
      if (fresh) cores.emplace_back();
      cores[at->second].push_back(c);
    }
    std::sort(cores.begin(), cores.end());
    std::size_t per = std::max<std::size_t>(1, cores.size() / sharers.size());
    std::size_t begin = (position * per) % std::max<std::size_t>(1, cores.size());
    for (std::size_t i = begin; i < std::min(cores.size(), begin + per); ++i)
      out[r].insert(out[r].end(), cores[i].begin(), cores[i].end());
    std::sort(out[r].begin(), out[r].end());
  }
  return out;
}

// plan_launch's passes share one Planning: the inputs, the plan as far as it is settled, and what
// one pass works out for the later ones.
struct Planning {
  const Allocation& alloc;
  const Machine& machine;
  const GpuInventory& gpus;
  const CpuInventory& cpus;
  const LaunchRequest& req;
  LaunchPlan plan{};
  const Layout* layout = nullptr;    // the machine's layout for this many ranks per node
  std::vector<GpuDevice> devices{};  // the visible GPUs in local-rank order
  std::vector<std::vector<unsigned>> rank_cpus{};
  unsigned cpus_per_rank = 0;
  bool launcher_binds_gpus = false;  // the launcher sets each rank's GPUs: ferry must not
};

// The request's shape against the allocation's: GPUs per rank, ranks, ranks per node, and the
// hosts used.
void count_ranks(Planning& p) {
  LaunchPlan& plan = p.plan;
  const unsigned hosts = static_cast<unsigned>(p.alloc.hosts.size());
  const unsigned gpu_count = static_cast<unsigned>(p.gpus.visible.size());
  plan.gpus_per_rank = p.req.gpus_per_rank.value_or(gpu_count ? 1 : 0);
  const unsigned gpr = plan.gpus_per_rank;
  if (gpr > 0 && gpu_count == 0)
    misfit(fmt::format("--gpus-per-rank {}: this node has no GPU the job can use", gpr));
  unsigned max_nodes = p.req.nodes.value_or(hosts);
  if (max_nodes == 0 || max_nodes > hosts)
    misfit(fmt::format("--nodes {}: the allocation has {} hosts", max_nodes, hosts));
  // One rank per GPU (gpr GPUs each), or one per host without GPUs.
  unsigned fit = gpr ? gpu_count / gpr : 1;
  if (gpr && fit == 0)
    misfit(fmt::format("--gpus-per-rank {}: nodes have {} GPUs", gpr, gpu_count));

  unsigned ppn = p.req.ranks_per_node.value_or(0);
  unsigned ranks = p.req.ranks.value_or(0);
  if (ppn == 0 && ranks == 0) {
    ppn = fit;
    ranks = ppn * max_nodes;
  } else if (ppn == 0) {
    ppn = gpr ? std::min(fit, ranks) : (ranks + max_nodes - 1) / max_nodes;
  } else if (ranks == 0) {
    ranks = ppn * max_nodes;
  }
  ppn = std::min(ppn, ranks);  // -n 1 --ppn 8: one rank, on one node
  if (ranks == 0 || ppn == 0) misfit("-n and --ppn must be at least 1");
  plan.nodes = (ranks + ppn - 1) / ppn;
  if (plan.nodes > max_nodes)
    misfit(fmt::format("-n {} at {} per node needs {} nodes; the allocation has {}", ranks, ppn,
                       plan.nodes, max_nodes));
  if (gpr && ppn * gpr > gpu_count)
    misfit(fmt::format("--ppn {} with {} GPU(s) per rank needs {} GPUs per node; this node has {}",
                       ppn, gpr, ppn * gpr, gpu_count));
  plan.ranks = ranks;
  plan.ranks_per_node = ppn;
  plan.hosts.assign(p.alloc.hosts.begin(), p.alloc.hosts.begin() + plan.nodes);
}

// Each local rank's GPUs and CPUs, and the CPUs per rank the launcher is told.
void place_ranks(Planning& p) {
  const unsigned ppn = p.plan.ranks_per_node;
  auto layout_it = p.machine.layouts.find(ppn);
  p.layout = layout_it == p.machine.layouts.end() ? nullptr : &layout_it->second;
  p.devices = devices_by_locality(p.gpus);
  std::vector<unsigned> usable = usable_cpus(p.cpus, p.machine);
  p.rank_cpus = split_cpus(usable, p.cpus, p.gpus, p.devices, p.machine, ppn, p.plan.gpus_per_rank);
  unsigned node_cpus =
      p.alloc.cpus.empty() ? static_cast<unsigned>(usable.size()) : p.alloc.cpus.front();
  p.cpus_per_rank = p.layout && p.layout->cpus_per_rank ? *p.layout->cpus_per_rank
                                                        : std::max(1u, node_cpus / ppn);
}

// srun refuses a step that asks more CPUs of a node than the job holds there ("More processors
// requested than permitted"): a plain `salloc -N3` where Slurm allocates cores holds one per
// node.
void check_srun_cpus(const Planning& p) {
  const std::vector<unsigned>& held = p.alloc.cpus;
  if (p.machine.launcher != Launcher::srun || held.size() < p.plan.nodes) return;
  const unsigned ppn = p.plan.ranks_per_node, cpus_per_rank = p.cpus_per_rank;
  auto least = std::min_element(held.begin(), held.begin() + p.plan.nodes);
  if (ppn * cpus_per_rank <= *least) return;
  std::string fix = fmt::format("--ntasks-per-node={}", ppn);
  if (cpus_per_rank > 1) fix += fmt::format(" --cpus-per-task={}", cpus_per_rank);
  misfit(fmt::format(
      "{} ranks per node at {} CPU{} each need {} CPUs per node, but the job holds {} on {} "
      "(SLURM_JOB_CPUS_PER_NODE): allocate with `salloc {}` (or --exclusive), or launch "
      "fewer ranks per node (--ppn)",
      ppn, cpus_per_rank, cpus_per_rank == 1 ? "" : "s", ppn * cpus_per_rank, *least,
      p.alloc.hosts[static_cast<std::size_t>(least - held.begin())], fix));
}

// The launcher's own words for the ranks, their CPUs and (where it binds them) their GPUs.
void launcher_line(Planning& p) {
  const LaunchPlan& plan = p.plan;
  const Layout* layout = p.layout;
  const unsigned ranks = plan.ranks, ppn = plan.ranks_per_node, gpr = plan.gpus_per_rank;
  const std::optional<std::string>& cpu_bind = p.req.cpu_bind;
  const std::string& hostfile = p.req.hostfile;
  // Slurm manages the GPUs (gres) when it reports them; then it binds them, ferry does not.
  p.launcher_binds_gpus = layout && layout->launcher_binds_gpus;
  std::vector<std::string>& argv = p.plan.argv;
  switch (p.machine.launcher) {
    case Launcher::srun:
      argv = {"srun",
              "-N",
              std::to_string(plan.nodes),
              "-n",
              std::to_string(ranks),
              fmt::format("--ntasks-per-node={}", ppn),
              "-c",
              std::to_string(p.cpus_per_rank)};
      if (!cpu_bind || !cpu_bind->empty())  // "": no binding asked for, none said
        argv.push_back("--cpu-bind=" + (cpu_bind                              ? *cpu_bind
                                        : layout && !layout->cpu_bind.empty() ? layout->cpu_bind
                                                                              : "cores"));
      if (!layout && gpr && p.alloc.gpus_per_host) {
        argv.push_back(fmt::format("--gpus-per-task={}", gpr));
        argv.push_back("--gpu-bind=closest");
        p.launcher_binds_gpus = true;
      }
      argv.push_back("--nodelist=" + compress_hostlist(plan.hosts));
      if (p.req.overlap) argv.push_back("--overlap");
      break;
    case Launcher::pals: {
      argv = {"mpiexec"};
      argv.insert(argv.end(), p.machine.launcher_args.begin(), p.machine.launcher_args.end());
      argv.insert(argv.end(), {"-n", std::to_string(ranks), "--ppn", std::to_string(ppn),
                               "--hostfile", hostfile});
      if (cpu_bind) {
        if (!cpu_bind->empty()) argv.push_back("--cpu-bind=" + *cpu_bind);
      } else if (layout && layout->cpu_bind == "depth") {
        argv.push_back(fmt::format("--depth={}", layout->depth));
        argv.push_back("--cpu-bind=depth");
      } else if (layout && !layout->cpu_bind.empty()) {
        argv.push_back("--cpu-bind=" + layout->cpu_bind);
      } else {
        std::vector<std::string> lists;
        for (const auto& c : p.rank_cpus) lists.push_back(format_cpu_list(c));
        argv.push_back("--cpu-bind=list:" + util::join(lists, ":"));
      }
      break;
    }
    case Launcher::mpich:
      argv = {"mpiexec", "-n", std::to_string(ranks), "-ppn", std::to_string(ppn), "-f", hostfile};
      break;
    case Launcher::openmpi:
      argv = {"mpirun", "-np",      std::to_string(ranks),           "--hostfile",
              hostfile, "--map-by", fmt::format("ppr:{}:node", ppn), "--bind-to",
              "none"};
      break;
    case Launcher::flux:
      argv = {"flux", "run",
              "-N",   std::to_string(plan.nodes),
              "-n",   std::to_string(ranks),
              "-c",   std::to_string(p.cpus_per_rank)};
      if (gpr) {
        argv.insert(argv.end(), {"-g", std::to_string(gpr)});
        p.launcher_binds_gpus = true;  // flux's gpubind sets CUDA_VISIBLE_DEVICES per task
      }
      break;
    case Launcher::jsrun:
      argv = {"jsrun", "-n", std::to_string(ranks),           "-r", std::to_string(ppn), "-a",
              "1",     "-c", std::to_string(p.cpus_per_rank), "-g", std::to_string(gpr)};
      p.launcher_binds_gpus = gpr > 0;  // one resource set per rank: jsrun sets its GPUs
      break;
    case Launcher::local: break;  // ferry rank --spawn is the launcher
  }
}

// The machine's and the layout's launcher arguments go to the launcher; the local one (ferry
// rank) takes none. PALS has the machine's already, in front.
void add_launcher_args(Planning& p) {
  const Machine& machine = p.machine;
  std::vector<std::string>& argv = p.plan.argv;
  if (machine.launcher != Launcher::pals && machine.launcher != Launcher::local)
    argv.insert(argv.end(), machine.launcher_args.begin(), machine.launcher_args.end());
  if (p.layout && machine.launcher != Launcher::local)
    argv.insert(argv.end(), p.layout->launcher_args.begin(), p.layout->launcher_args.end());
}

// The hosts, one a line, for the launchers that read a hostfile (Open MPI's with its slots).
void hostfile_text(Planning& p) {
  LaunchPlan& plan = p.plan;
  if (p.machine.launcher == Launcher::pals || p.machine.launcher == Launcher::mpich)
    for (const auto& h : plan.hosts) plan.hostfile_text += h + "\n";
  if (p.machine.launcher == Launcher::openmpi)
    for (const auto& h : plan.hosts)
      plan.hostfile_text += fmt::format("{} slots={}\n", h, plan.ranks_per_node);
}

// Each rank's thread count: the user's --threads; else the CPUs it is given: ferry's own lists,
// the launcher's -c, PALS's depth or bind list. 0 for a --cpu-bind of the user's, whose share
// only the rank can see (its affinity).
unsigned planned_threads(const Planning& p) {
  if (p.req.leave_threads) return 0;
  if (p.req.threads) return std::max(1u, *p.req.threads);
  if (p.req.cpu_bind) return 0;
  auto fewest = [](const std::vector<std::vector<unsigned>>& lists) {
    std::size_t n = lists.empty() ? 0 : lists.front().size();
    for (const auto& l : lists) n = std::min(n, l.size());
    return static_cast<unsigned>(std::max<std::size_t>(1, n));
  };
  switch (p.machine.launcher) {
    case Launcher::srun:
    case Launcher::flux:
    case Launcher::jsrun: return p.cpus_per_rank;
    case Launcher::pals: {
      if (p.layout && p.layout->cpu_bind == "depth") return std::max(1u, p.layout->depth);
      if (p.layout && p.layout->cpu_bind.starts_with("list:")) {
        std::vector<std::vector<unsigned>> lists;
        for (std::string_view l : util::split(std::string_view(p.layout->cpu_bind).substr(5), ':'))
          lists.push_back(parse_cpu_list(l, "the machine's cpu_bind"));
        return fewest(lists);
      }
      if (p.layout && !p.layout->cpu_bind.empty()) return p.cpus_per_rank;
      return fewest(p.rank_cpus);
    }
    case Launcher::mpich:
    case Launcher::openmpi:
    case Launcher::local: return fewest(p.rank_cpus);
  }
  return 0;
}

// The rank wrapper: torch.distributed's variables, the GPU, and CPUs where the launcher does
// not bind them. Without a launcher, ferry rank --spawn starts the ranks itself.
void add_rank_wrapper(Planning& p) {
  LaunchPlan& plan = p.plan;
  const Launcher launcher = p.machine.launcher;
  plan.master_addr = p.req.resolve_master ? node_address(plan.hosts.front(), p.alloc.scheduler)
                                          : plan.hosts.front();
  plan.master_port = master_port_for(p.alloc.job_id.empty() ? plan.hosts.front() : p.alloc.job_id);
  RankOptions rank;
  if (launcher == Launcher::local) rank.spawn = plan.ranks;
  rank.setup.master_addr = plan.master_addr;
  rank.setup.master_port = plan.master_port;
  if (plan.gpus_per_rank && !p.launcher_binds_gpus) {
    for (const auto& d : p.devices)
      rank.setup.gpu_selectors.push_back(portable_selector(p.gpus, d));
    rank.setup.gpus_per_rank = plan.gpus_per_rank;
    rank.setup.visibility_variable = p.gpus.visibility_variable;
  }
  bool ferry_binds_cpus =
      launcher == Launcher::mpich || launcher == Launcher::openmpi || launcher == Launcher::local;
  if (ferry_binds_cpus && !p.req.cpu_bind) {
    plan.rank_cpus = p.rank_cpus;
    rank.setup.cpus = p.rank_cpus;
  }
  rank.setup.extra_env = p.machine.rank_env;
  plan.threads_per_rank = planned_threads(p);
  if (p.req.leave_threads)
    rank.setup.threads = 0;
  else if (p.req.threads)
    rank.setup.threads = plan.threads_per_rank;
  else if (plan.threads_per_rank && plan.rank_cpus.empty())  // ferry's own binding says it
    rank.setup.planned_threads = plan.threads_per_rank;
  rank.command = p.req.command;
  plan.argv.insert(plan.argv.end(), {p.req.ferry, "rank"});
  std::vector<std::string> words = encode_rank_options(rank);
  plan.argv.insert(plan.argv.end(), words.begin(), words.end());
}

}  // namespace

std::string node_address(const std::string& host, Scheduler scheduler) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) == 0) {
    ::freeaddrinfo(res);
    return host;
  }
  // Node names that only Slurm knows (NodeAddr): ask it for the address.
  if (scheduler == Scheduler::slurm) {
    try {
      std::string out = util::output_of({"scontrol", "show", "node", "-o", host});
      auto at = out.find("NodeAddr=");
      if (at != std::string::npos) {
        std::string addr = out.substr(at + 9, out.find_first_of(" \n", at) - at - 9);
        if (!addr.empty()) return addr;
      }
    } catch (const Error&) {
    }
  }
  return host;
}

unsigned master_port_for(const std::string& job_id) {
  unsigned port = 20000 + static_cast<unsigned>(util::xxh3(job_id) % 10000);
  if (port == 29400 || port == 29500) ++port;
  return port;
}

LaunchPlan plan_launch(const Allocation& alloc, const Machine& machine, const GpuInventory& gpus,
                       const CpuInventory& cpus, const LaunchRequest& req) {
  Planning p{alloc, machine, gpus, cpus, req};
  p.plan.launcher = machine.launcher;
  if (req.command.empty()) misfit("no command to launch (put it after --)");
  count_ranks(p);        // how many ranks, how many on each node, which hosts
  place_ranks(p);        // each local rank's GPUs and CPUs
  check_srun_cpus(p);    // srun's steps fit the CPUs the job holds
  launcher_line(p);      // the launcher's own grammar
  add_launcher_args(p);  // the machine's and the layout's extra arguments
  hostfile_text(p);      // for mpiexec and mpirun
  add_rank_wrapper(p);   // ferry rank, its options, then the user's command
  return std::move(p.plan);
}

}  // namespace ferry::job
