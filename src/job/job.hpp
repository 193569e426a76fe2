// ferry::job — where a job runs and how to start its ranks: host lists, the allocation (scheduler,
// hosts, slots), this node's CPUs and GPUs, the machine it is (from a data file), the launch line,
// and each rank's torch.distributed variables. Built on util alone.
//
// Two layers are kept apart, as the launch research note insists:
//   allocation layer — which job, which hosts, what hardware (runs in the batch script);
//   rank layer       — which rank am I (runs inside each process the launcher starts).
// Nothing here reads the process environment or the file system behind the caller's back: the
// environment comes in as an Environ and the hardware from a sysfs root, so tests can record both.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/util.hpp"

namespace ferry::job {

using Environ = std::map<std::string, std::string>;

// The calling process's environment.
Environ current_environ();
// Makes env this process's whole environment (what its children inherit): how the CLI enters a
// job found from outside it.
void enter_environment(const Environ& env);
// env[name] when set (an empty value counts as set), otherwise nullopt.
std::optional<std::string> lookup(const Environ& env, const std::string& name);

// ---------------------------------------------------------------------------------------------
// Host lists, with Slurm's grammar (src/common/hostlist.c, dims == 1)

// Expands "tux[0-5,12],login1 gpu-[1-3]x rack[1-2]-node[01-02]" in order, duplicates kept, as
// `scontrol show hostnames` does. Separators are comma, space, tab and newline outside brackets;
// zero padding takes the width of the range's low end; several bracket groups multiply out in
// Slurm's order. Throws Error (naming the expression) on malformed input. Expressions with '{'
// (Slurm's controller-side syntax) are refused: pass them to scontrol.
std::vector<std::string> expand_hostlist(std::string_view expr);

// An expression that expands back to exactly `hosts` (same order, same duplicates), as
// `scontrol show hostlist` writes it:
// consecutive hosts sharing a prefix, numeric width and suffix merge into one bracket group.
std::string compress_hostlist(const std::vector<std::string>& hosts);

// Expands Slurm's compressed count lists: "2(x3),1" -> {2, 2, 2, 1} (SLURM_TASKS_PER_NODE,
// SLURM_JOB_CPUS_PER_NODE). `what` names the variable in errors.
std::vector<unsigned> expand_count_list(std::string_view list, std::string_view what);

// ---------------------------------------------------------------------------------------------
// The allocation: which scheduler, which job, which hosts

enum class Scheduler { none, slurm, pbs, lsf, cobalt, flux };
std::string_view scheduler_name(Scheduler scheduler);  // "slurm", "pbs", ... "none"

struct Allocation {
  Scheduler scheduler = Scheduler::none;
  std::string job_id;
  std::vector<std::string> hosts;         // in the scheduler's order, each host once
  std::vector<unsigned> slots;            // per host: task slots granted (PBS mpiprocs lines, Slurm
                                          // tasks per node, LSF slots); empty when not known
  std::vector<unsigned> cpus;             // per host CPUs when the scheduler says; else empty
  std::optional<unsigned> gpus_per_host;  // when the scheduler says (SLURM_GPUS_ON_NODE, ...)
  std::string source;                     // where the hosts came from (variable or file)
};

struct AllocationOptions {
  std::string hostname;  // this host, for "none"
  // Runs a command and returns its standard output (for Flux's `flux getattr`, and Slurm
  // expressions with '{'); throws Error when it fails. util::output_of unless tests replace it.
  std::function<std::string(const std::vector<std::string>&)> run;
};

// The allocation this process is in, from the scheduler's variables and files. Throws Error with
// one line naming the variable or file when they are missing, malformed or disagree (e.g.
// SLURM_NNODES against the node list).
Allocation discover_allocation(const Environ& env, const AllocationOptions& options);

// ---------------------------------------------------------------------------------------------
// The job from a shell that is not its own: a second terminal, ssh to a compute node
// (src/job/outside.cpp)

// A job as the scheduler's query tools describe it.
struct JobRecord {
  Scheduler scheduler = Scheduler::none;
  std::string id, name, user, state;      // state in the tool's words: RUNNING (Slurm), R (PBS)
  std::string partition;                  // Slurm's partition, PBS's queue
  std::vector<std::string> hosts;         // in the scheduler's order, each once
  std::vector<unsigned> cpus;             // per host, when the record says; else empty
  std::vector<unsigned> slots;            // per host: PBS's MPI slots (mpiprocs); else empty
  std::optional<unsigned> gpus_per_host;  // Slurm's GRES, when every node has the same
  bool running() const;
};
// One line of `scontrol show job -d -o ID`. Throws Error when it holds no JobId.
JobRecord parse_scontrol_job(std::string_view line);
// `qstat -f [ID...]`: every job in it (OpenPBS's and PBS Pro's layouts, wrapped values joined).
// Hosts from exec_host, slots from Resource_List.select's mpiprocs (1 per chunk by default).
std::vector<JobRecord> parse_qstat_full(std::string_view text);

// Whether env names a job (the variables discover_allocation looks for first).
bool names_a_job(const Environ& env);
// env without what a scheduler sets to describe a job, its step or its task; the client's own
// settings (SLURM_CONF) and the user's srun options stay.
Environ without_job_variables(const Environ& env);
// The variables the job's own shell would have, for discover_allocation: Slurm's SLURM_JOB_ID,
// SLURM_JOB_NODELIST, ... and SLURM_OVERLAP (a step from outside shares the CPUs of the job's
// own steps); PBS's PBS_JOBID and PBS_NODEFILE, the nodefile written at `nodefile`.
Environ job_variables(const JobRecord& job, const std::string& nodefile);

struct FindJobOptions {
  std::string id;        // --job ID; empty: look for the job that holds this host
  std::string hostname;  // this host's short name
  std::string user;      // whose jobs ("root" may name anyone's)
  bool slurm = false;    // ask Slurm (scontrol, squeue on PATH)
  bool pbs = false;      // ask PBS (qstat, qselect on PATH)
  double timeout_seconds = 10;
  // Runs a query tool; util::run_command unless tests replace it.
  std::function<util::CommandOutput(const std::vector<std::string>&)> run;
};
struct FoundJob {
  JobRecord job;
  std::string how;  // one line saying which job and why: "--job 12", "job 12 (train) on ..."
};
// The job of --job ID; or, when env names no job, the user's one running job that holds this
// host. nullopt: no job here (or no scheduler answered). Throws Error (one line) when ID is not a
// running job of the user's, and when several jobs hold this host: it lists each one's id, name
// and hosts and asks for --job.
std::optional<FoundJob> find_job(const Environ& env, const FindJobOptions& options);

// ---------------------------------------------------------------------------------------------
// This node's hardware, from sysfs (root "/" normally; a recorded tree in tests)

enum class GpuVendor { nvidia, amd, intel };
std::string_view vendor_name(GpuVendor vendor);  // "nvidia", "amd", "intel"

struct Gpu {
  GpuVendor vendor = GpuVendor::nvidia;
  unsigned index = 0;                // the vendor runtime's number before any visibility variable
  std::string pci_address;           // sysfs form: "0000:07:00.0"
  std::string model;                 // when known (NVIDIA /proc, NVML, KFD properties)
  std::string uuid;                  // when known ("GPU-…")
  int numa_node = -1;                // -1: unknown
  std::vector<unsigned> local_cpus;  // the PCI device's local_cpulist
  unsigned tiles = 1;                // Intel: tiles (sub-devices) per card
  bool usable = true;                // false when its device node cannot be opened (cgroup)
};

// What a rank binds to: a whole GPU, or one tile when Intel's hierarchy is FLAT.
struct GpuDevice {
  unsigned gpu = 0;      // index into GpuInventory::gpus
  int tile = -1;         // Intel FLAT / "dev.sub": the tile; -1: the whole GPU
  std::string selector;  // value for the visibility variable: "3", "1.0", "GPU-<uuid>"
};

struct GpuInventory {
  std::vector<Gpu> gpus;            // every GPU found, in the vendor runtime's order
  std::vector<GpuDevice> visible;   // what the job may use, after the visibility variables
  std::string visibility_variable;  // CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES, ZE_AFFINITY_MASK
  std::string hierarchy;            // Intel: FLAT or COMPOSITE (the one in effect); else empty
  std::vector<std::string> notes;   // how the list was found, what was filtered, and why
};

struct CpuInventory {
  unsigned logical = 0;           // online logical CPUs
  unsigned cores = 0;             // physical cores (distinct package/core ids)
  std::vector<unsigned> allowed;  // this process's affinity (cgroup cpuset), sorted
  std::map<int, std::vector<unsigned>> numa_cpus;  // NUMA node -> CPUs
  std::map<unsigned, unsigned> core_of;  // CPU -> its physical core (SMT siblings share one)
};

struct DiscoverOptions {
  std::string sysfs_root = "/";  // prefix for /sys, /proc/driver, /dev checks
  bool use_nvml = true;          // dlopen libnvidia-ml.so.1 when present (ignored with a root)
};

GpuInventory discover_gpus(const Environ& env, const DiscoverOptions& options);
CpuInventory discover_cpus(const DiscoverOptions& options);
// This process's affinity (sched_getaffinity), and the CPUs of its cgroup's cpuset (cgroup v2's
// cpuset.cpus.effective, v1's cpuset.effective_cpus; the online CPUs when neither is there): a
// rank whose affinity is narrower than its cpuset was bound by its launcher.
std::vector<unsigned> process_affinity();
std::vector<unsigned> cgroup_cpuset();

// Parses "0-3,8,10-11" (sysfs cpulist, Slurm's cpu lists). Throws Error naming `what`.
std::vector<unsigned> parse_cpu_list(std::string_view list, std::string_view what);
// The inverse: ascending runs as "0-3,8,10-11".
std::string format_cpu_list(const std::vector<unsigned>& cpus);

// ---------------------------------------------------------------------------------------------
// Machines: what ferry knows about each system, from a data file (data/machines.json is built
// in; FERRY_MACHINES names more files, whose entries override built-in ones of the same name)

enum class Launcher { srun, pals, mpich, openmpi, flux, jsrun, local };
std::string_view launcher_name(Launcher launcher);

// Settings that apply at one number of ranks per node (the facilities publish bind lists per
// layout: Aurora's 12-rank list differs from its 6-rank one).
struct Layout {
  std::string cpu_bind;                    // in the launcher's grammar ("list:1-8:9-16", "depth")
  unsigned depth = 0;                      // PALS --depth with cpu_bind "depth"
  std::optional<unsigned> cpus_per_rank;   // srun -c / flux -c / jsrun -c
  std::vector<std::string> launcher_args;  // e.g. Frontier's --gpus-per-task=1 --gpu-bind=closest
  bool launcher_binds_gpus = false;        // the launcher sets GPU visibility: ferry must not
};

struct Machine {
  std::string name, description;
  std::vector<std::string> docs;
  // Recognition, strongest first: site variables (all must match), FQDN domains, hostname
  // patterns (ECMAScript regexes), then the scheduler alone for the generic entries.
  std::map<std::string, std::string> match_env;
  std::vector<std::string> match_domains, match_hostnames;
  std::optional<Scheduler> match_scheduler;
  Launcher launcher = Launcher::local;
  std::vector<std::string> launcher_args;              // always passed
  std::map<unsigned, Layout> layouts;                  // by ranks per node
  std::vector<unsigned> reserved_cpus;                 // never bound (Aurora's cores 0 and 52, ...)
  std::map<unsigned, std::vector<unsigned>> gpu_cpus;  // GPU index -> its CPUs, where the PCI
                                                       // local_cpulist is too coarse (Frontier)
  std::map<std::string, std::string> rank_env;         // set in each rank unless already set
  // Where a node's own storage is, best first ($VAR expanded by the reader): `ferry doctor`
  // checks each. The table's top-level list for entries that name none.
  std::vector<std::string> node_local;
  std::string source;  // the file it came from
};

// Loads the built-in table, then each file in FERRY_MACHINES (colon-separated) from env.
// Throws Error naming the file and entry on a malformed table.
std::vector<Machine> load_machines(const Environ& env);
// Parses one table (JSON with comments); `source` names it in errors.
std::vector<Machine> parse_machines(std::string_view json, const std::string& source);
// The machine this is: the strongest match, ties broken by table order.
const Machine& recognise_machine(const std::vector<Machine>& machines, const Environ& env,
                                 const std::string& hostname, const std::string& fqdn,
                                 Scheduler scheduler);
// By name; throws Error listing the known names.
const Machine& find_machine(const std::vector<Machine>& machines, const std::string& name);

// ---------------------------------------------------------------------------------------------
// Where ferry runs, in one call (src/job/site.cpp)

struct SiteOptions {
  std::string sysfs_root = "/";
  std::string hostname;  // pretend to be this host (recorded machines, tests)
  std::string machine;   // use this machine's entry instead of recognising it
  std::string job;       // --job ID: the CLI enters that job (find_job) before discovery
};
// The allocation, this node's CPUs and GPUs, and the machine (machine points into machines).
// Movable, not copyable: a copy's machine would point into the other's table.
struct Site {
  Site() = default;
  Site(Site&&) = default;
  Site& operator=(Site&&) = default;
  Site(const Site&) = delete;
  Site& operator=(const Site&) = delete;
  Environ env;
  Allocation allocation;
  CpuInventory cpus;
  GpuInventory gpus;
  std::vector<Machine> machines;
  const Machine* machine = nullptr;
  std::string hostname, fqdn;
};
Site discover_site(const SiteOptions& options);

// ---------------------------------------------------------------------------------------------
// Networks (src/job/network.cpp)

// The local interface and address the kernel would use to reach host (a UDP connect, which
// sends nothing). Both empty when host does not resolve or is unreachable.
struct Route {
  std::string interface, address;
};
Route route_towards(const std::string& host);
// The address of a local interface (IPv4 first): a usage Error naming it when it has none.
std::string interface_address(const std::string& interface);

// ---------------------------------------------------------------------------------------------
// The launch line

struct LaunchRequest {
  std::optional<unsigned> ranks, ranks_per_node, nodes, gpus_per_rank;
  std::optional<std::string> cpu_bind;  // overrides the machine's bind (launcher grammar); "":
                                        // no binding (the launcher is given no bind option)
  std::vector<std::string> command;
  std::string ferry;           // absolute path of ferry, for the rank wrapper
  std::string hostfile;        // where to write the hostfile for mpiexec-style launchers
  bool resolve_master = true;  // look the first host up (DNS, then Slurm's NodeAddr)
  // srun --overlap: the step shares its CPUs with later steps (a service's step must not block
  // the srun of the script it serves).
  bool overlap = false;
  std::optional<unsigned> threads;  // --threads: every rank's OMP_NUM_THREADS and the like
  // The command sets its processes' threads itself (Dask's workers, Ray's tasks): the ranks
  // leave OMP_NUM_THREADS and the like alone.
  bool leave_threads = false;
};

struct LaunchPlan {
  Launcher launcher = Launcher::local;
  unsigned nodes = 0, ranks = 0, ranks_per_node = 0, gpus_per_rank = 0;
  std::vector<std::string> hosts;  // the hosts used, in order
  std::string master_addr;
  unsigned master_port = 0;
  std::vector<std::string> argv;                 // the whole command line
  std::string hostfile_text;                     // what to write at request.hostfile (may be empty)
  std::vector<std::vector<unsigned>> rank_cpus;  // per local rank, when ferry binds CPUs itself
  // Each rank's OMP_NUM_THREADS and the like: --threads, else the CPUs each rank gets; 0 when
  // only the rank can tell (a --cpu-bind of the user's).
  unsigned threads_per_rank = 0;
  std::vector<std::string> notes;
};
// What ferry job and launch --dry-run --json show of it ("launch"; the CLI adds the line quoted).
FERRY_JSON_FIELDS(LaunchPlan, nodes, ranks, ranks_per_node, gpus_per_rank, threads_per_rank,
                  master_addr, master_port, argv)

// Builds the line. Throws Error (one line, naming the option) when the request does not fit the
// allocation: more ranks than slots, more GPUs per node than the node has, ...
LaunchPlan plan_launch(const Allocation& allocation, const Machine& machine,
                       const GpuInventory& gpus, const CpuInventory& cpus,
                       const LaunchRequest& request);

// How the job's other nodes reach host: its name when it resolves, else (Slurm) the NodeAddr
// slurmctld knows it by, else the name.
std::string node_address(const std::string& host, Scheduler scheduler);

// A port in 20000-29999 derived from the job id (no MPI, no probing): every rank of one job
// computes the same one, concurrent jobs get different ones. Skips torch's 29400 and 29500.
unsigned master_port_for(const std::string& job_id);

// ---------------------------------------------------------------------------------------------
// Inside each rank

struct RankInfo {
  unsigned rank = 0, local_rank = 0, world_size = 1, local_world_size = 1, node_rank = 0;
  std::string source;  // the launcher whose variables gave it: "slurm", "pals", "ompi", ...
};

// Rank, local rank and sizes from the innermost launcher's variables (torchrun, Flux, Slurm step,
// PALS, PMIx, Open MPI, MPICH/Hydra, MVAPICH, jsrun, ferry's local launcher); a lone process when
// there are none. Throws Error naming the variable when a value is malformed or out of range.
RankInfo resolve_rank(const Environ& env);

struct RankSetup {
  std::string master_addr;                 // empty: the allocation's first host
  std::optional<unsigned> master_port;     // empty: from the job id
  std::vector<std::string> gpu_selectors;  // visible devices in local-rank order
  std::string visibility_variable;
  unsigned gpus_per_rank = 0;
  std::vector<std::vector<unsigned>> cpus;       // per local rank; empty: leave affinity alone
  std::map<std::string, std::string> extra_env;  // set unless already set
  // Threads per rank: `threads` is the user's (--threads) and wins over everything (0: leave the
  // variables alone); `planned_threads` is what ferry launch worked out, used unless the user set
  // OMP_NUM_THREADS.
  std::optional<unsigned> threads, planned_threads;
};

// The variables to set in this rank for torch.distributed's env://, for its GPU and for its
// threads.
Environ rank_environment(const RankInfo& rank, const RankSetup& setup, const Environ& env);

// What limits a process's threads: OpenMP's variable and the BLAS libraries' and numexpr's own,
// each read by a library that would otherwise start one thread per CPU of the node.
const std::vector<std::string>& thread_variables();
// How many threads a rank runs, in this order: setup.threads; the user's own OMP_NUM_THREADS;
// the CPUs ferry binds it to (setup.cpus); setup.planned_threads; else, when a launcher bound it
// (its affinity is narrower than the node's cpuset), its affinity; else its share of the node's
// cpuset among the node's ranks. At least 1.
unsigned rank_threads(const RankInfo& rank, const RankSetup& setup, const Environ& env,
                      unsigned affinity_cpus, unsigned cpuset_cpus);
// The values rank_environment sets: each of thread_variables() not already in env, to `threads`,
// or all of them when `force` (the user's --threads).
Environ thread_environment(unsigned threads, bool force, const Environ& env);
// Pins this process to its local rank's CPUs (setup.cpus); no-op when there are none.
void bind_rank_cpus(const RankInfo& rank, const RankSetup& setup);

// `ferry rank`'s command line: what `ferry launch` writes in front of each rank's command (and
// `ferry rank --spawn` in front of each child's), and what `ferry rank` reads back. One encoder
// and one decoder (src/job/rank_options.cpp), so the two sides cannot drift apart.
struct RankOptions {
  unsigned spawn = 0;                // --spawn N: start N local ranks of the command (0: be one)
  RankSetup setup;                   // --master-addr ... --env
  std::vector<std::string> command;  // after "--"
};
// The words after `ferry rank`, in this order: --spawn, --master-addr, --master-port, --gpus,
// --gpus-per-rank and --visibility (with GPUs only), --cpus, one --env per variable, --threads,
// --planned-threads, then "--" and the command. Options at their defaults are left out. GPU
// selectors cannot hold ',', nor variable names '=' (the grammar's separators).
std::vector<std::string> encode_rank_options(const RankOptions& options);
// Reads words of that grammar back, options in any order, each as "--name value" (a value may be
// empty or start with '-'). --gpus without --visibility selects CUDA_VISIBLE_DEVICES, and
// --gpus-per-rank is 1 unless given. Throws a usage Error naming the option for an unknown option,
// a missing value or a malformed one.
RankOptions decode_rank_options(const std::vector<std::string>& words);

// ---------------------------------------------------------------------------------------------
// Job files: what `ferry job save` and `ferry launch` leave for a job (src/job/job_files.cpp)

// Where saved jobs live, for save and load alike: $XDG_CACHE_HOME/ferry/jobs, where an empty or
// relative XDG_CACHE_HOME counts as unset (the XDG spec), hence ~/.cache/ferry/jobs.
std::string jobs_root(const Environ& env);
// Where this job's files live: one directory per job (<scheduler>-<id> under jobs_root), so
// concurrent jobs never share a file.
std::string job_dir(const Allocation& allocation, const Environ& env);
// The hostfile of this job (in job_dir) before write_hostfile names it by its content.
std::string job_hostfile(const Allocation& allocation, const Environ& env);
// Job files, whole or not at all, readable as the user's umask allows; the job's directory is
// made on first use.
void write_job_file(const std::string& path, const std::string& text);

// hostfile-<8 hex digits of text's hash>: two launches in one job (a sweep, -N subsets) never
// rewrite the file the other's launcher is about to read.
std::string hostfile_named_by_content(const std::string& hostfile, std::string_view text);
// Writes plan.hostfile_text (when the launcher takes one) at its name by content and points the
// plan's argv there instead of at `hostfile`.
void write_hostfile(LaunchPlan& plan, const std::string& hostfile);

// What `ferry job save` records besides the scheduler's variables.
struct JobSummary {
  unsigned gpus_per_host = 0;  // FERRY_NGPU_PER_HOST (FERRY_NGPUS: times the hosts)
  std::string machine;         // FERRY_MACHINE
  // FERRY_LAUNCH: the launch line up to the command, when there is one.
  std::optional<std::vector<std::string>> launch;
};
// The script a second shell sources to see this job: export lines for the allocation's variables
// (not the per-task or per-step ones, which describe one process) and ferry's FERRY_* summary,
// FERRY_HOSTFILE naming `hostfile`.
std::string job_env_script(const Allocation& allocation, const Environ& env,
                           const std::string& hostfile, const JobSummary& summary);
// The FERRY_* variables of such a script, in its order, their values unquoted.
std::vector<std::pair<std::string, std::string>> read_job_env_script(std::string_view text);

struct SavedJob {
  std::string file, hostfile;
};
FERRY_JSON_FIELDS(SavedJob, file, hostfile)
// `ferry job save`: writes the job's hosts (job_hostfile), its script at `file` (empty: env.sh in
// job_dir) and points jobs_root's `latest` at the script, for `ferry job load` outside any job.
SavedJob save_job(const Allocation& allocation, const Environ& env, const JobSummary& summary,
                  const std::string& file);
// The script `ferry job load` reads when it is not named: this job's (when this process is in
// one that was saved), else the latest saved. Throws a usage Error naming both when neither is
// there.
std::string find_saved_job(const Environ& env);

// ---------------------------------------------------------------------------------------------
// Processes

// env as the KEY=VALUE strings util's spawner takes.
std::vector<std::string> environ_lines(const Environ& env);
// util::exec_command and util::run_children under an Environ.
[[noreturn]] void exec_command(const std::vector<std::string>& argv, const Environ& env);
int run_processes(const std::vector<std::pair<std::vector<std::string>, Environ>>& processes);

}  // namespace ferry::job
