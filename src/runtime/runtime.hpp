// ferry::runtime — services on an allocation: a Dask or a Ray cluster on every node of the job,
// secured, ready when every node has joined, torn down with nothing left behind. Built on env
// (which Python an environment runs) and job (the allocation, its launcher, addresses).
//
// The processes of one cluster:
//   ferry dask            the coordinator, where the batch script runs: it picks ports, writes the
//                         cluster's directory, starts the rest, waits, runs the client, tears down;
//   ferry dask-node       on the scheduler's host (role scheduler) and once per node through the
//                         job's launcher (role workers): starts the Dask processes, reports in one
//                         JSON line each, passes signals on, and sweeps leftovers (role check);
//   python -m distributed.cli.dask_scheduler / dask_worker, under them;
//   the client command, beside the coordinator.
// Every one of them carries FERRY_DASK_CLUSTER=<id> in its environment: that is how the check
// finds what is left of a cluster on a node, whoever started it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "job/job.hpp"

namespace ferry::runtime {

// ---------------------------------------------------------------------------------------------
// The Python a service runs

struct PythonEnv {
  std::string prefix;    // the environment (empty: the python3 found on PATH)
  std::string python;    // its interpreter, absolute
  job::Environ environ;  // what its processes run under: the env activated (PATH first,
                         // CONDA_PREFIX or VIRTUAL_ENV, PYTHONHOME unset)
};
// --env DIR, else the active env (CONDA_PREFIX, then VIRTUAL_ENV), else python3 on PATH. Throws
// a usage Error naming DIR when it holds no bin/python3.
PythonEnv find_python(const std::string& env_dir, const job::Environ& env);

// ---------------------------------------------------------------------------------------------
// Ports

// A service's block of consecutive ports: `size` of them, the first `probed` tried before use
// (Dask: scheduler, dashboard, notebook; Ray: its daemons' ports, then its workers' range, which
// Ray itself skips past when one is taken).
struct PortBlock {
  unsigned size = 3, probed = 3;
};
// The first port of a block in [low, high], derived from key (the job id and the service), so
// two jobs on one node, or two clusters in one job, start from different places; each candidate
// is tried with `is_free` until one whose probed ports are all free. Throws Error naming the
// range when every candidate is taken.
unsigned choose_ports(const std::string& key, unsigned low, unsigned high,
                      const std::function<bool(unsigned)>& is_free, PortBlock block = {});
// Whether nothing listens on port at host (a connection is refused), or, for host "", whether
// this host can bind it.
bool port_is_free(const std::string& host, unsigned port);
// "LO-HI" as --ports takes it: a usage Error naming the option when malformed.
std::pair<unsigned, unsigned> parse_port_range(const std::string& text);

// ---------------------------------------------------------------------------------------------
// ferry dask

struct DaskOptions {
  std::string env_dir;  // --env: a staged env (empty: find_python's default)
  unsigned workers_per_node = 1;
  unsigned threads_per_worker = 0;  // 0: the node's CPUs shared out among its workers
  bool per_gpu = false;             // one worker per visible GPU, each seeing only its own
  bool scheduler_here = false;      // --scheduler-on here: where ferry runs, not the first host
  std::string interface;            // listen on this interface's address (default: the route)
  std::string local_directory;      // the workers' directory (default: $TMPDIR, then /tmp)
  double timeout = 120;             // seconds for every worker to join
  bool insecure = false;            // plain TCP, no certificates
  bool jupyter = false;             // JupyterLab (else Notebook) beside the scheduler, on loopback
  // Below Linux's ephemeral range (32768-60999), where an outgoing connection could hold a port.
  unsigned port_low = 12000, port_high = 19999;
  std::string login;  // the host the tunnel goes through (default: the job's submit host)
  std::string sysfs_root = "/";      // --per-gpu: where the nodes read their GPUs (recorded trees)
  std::vector<std::string> command;  // the client; empty: hold the cluster until told to stop
  std::string ferry;                 // this ferry binary, for the nodes
};

struct DaskNodeReport {
  std::string host;
  unsigned workers = 0, threads = 0;  // threads: per worker
  std::uint64_t memory_limit = 0;     // bytes, per worker
  std::string local_directory;
  bool spilling = true;  // false: no node-local directory could be written; spilling is off
  std::vector<std::string> gpus;  // --per-gpu: the selector each worker sees, in worker order
};
FERRY_JSON_FIELDS(DaskNodeReport, host, workers, threads, memory_limit, local_directory, spilling,
                  gpus)

// What `ferry dask` prints once every worker has joined (the start line; --json: this object).
struct DaskCluster {
  std::string id;   // <scheduler>-<job id>-<port>: FERRY_DASK_CLUSTER of its processes
  std::string dir;  // the cluster's private directory (0700): scheduler file, TLS files, logs
  std::string scheduler_address, scheduler_file, head;
  std::string distributed_version;
  bool tls = true;
  unsigned scheduler_port = 0, dashboard_port = 0;  // dashboard: 0 when it is not running
  std::string dashboard;                            // its address on the head's loopback
  unsigned jupyter_port = 0;                        // --jupyter: on the head's loopback too
  std::string jupyter;                              // its URL, with the token
  std::string tunnel;   // the ssh line that reaches the dashboard and JupyterLab from outside
  std::string connect;  // the Python line that connects a client
  unsigned workers = 0, threads = 0;
  std::uint64_t memory = 0;  // bytes, all workers together
  std::vector<DaskNodeReport> nodes;
  double seconds = 0;  // from ferry's start to the last worker joined
};
FERRY_JSON_FIELDS(DaskCluster, id, dir, scheduler_address, scheduler_file, head,
                  distributed_version, tls, scheduler_port, dashboard_port, dashboard, jupyter_port,
                  jupyter, tunnel, connect, workers, threads, memory, nodes, seconds)

// What the coordinator tells its caller on the way.
struct DaskHooks {
  std::function<void(const DaskCluster&)> ready;  // every worker has joined
  std::function<void(const std::string&)> note;   // one line: a fallback, a lost worker
};

struct DaskOutcome {
  int exit_status = 0;  // the client's; 1 when the cluster failed under it; 128 + a signal
  double teardown_seconds = 0;
  std::vector<std::string> leftovers;  // "host: pid command" of processes the check had to kill
};

// The whole of `ferry dask` in a batch script or an interactive allocation. Errors before the
// cluster is ready throw Error (one line, naming the node, the option or the env), once what
// was started is stopped; afterwards the outcome says how it ended.
DaskOutcome run_dask(const DaskOptions& options, const job::Site& site, const DaskHooks& hooks);

// The cluster `ferry dask status` and `stop` mean: DIR when given, else the one cluster of this
// job (or, outside a job, the latest one) whose coordinator still runs. Throws a usage Error
// naming what it found when there is none, or several.
std::string find_dask_cluster(const std::string& dir, const job::Environ& env);

struct DaskWorkerStatus {
  std::string name, address, host;
  unsigned nthreads = 0, processing = 0, in_memory = 0;  // tasks running, results held
  std::uint64_t memory_limit = 0, memory = 0;            // bytes
};
FERRY_JSON_FIELDS(DaskWorkerStatus, name, address, host, nthreads, processing, in_memory,
                  memory_limit, memory)
struct DaskStatus {
  std::string dir, scheduler_address;
  std::vector<DaskWorkerStatus> workers;
};
FERRY_JSON_FIELDS(DaskStatus, dir, scheduler_address, workers)
// Asks the cluster in dir, with its credentials, through the env's own distributed.Client.
DaskStatus dask_status(const std::string& dir);
// Tells the cluster's coordinator to tear it down (SIGTERM) and waits, at most `seconds`, for it
// to end. False when it was still running then.
bool stop_dask(const std::string& dir, double seconds);

// ---------------------------------------------------------------------------------------------
// ferry dask-node: the node side

enum class DaskRole { scheduler, workers, check };
NLOHMANN_JSON_SERIALIZE_ENUM(DaskRole, {{DaskRole::scheduler, "scheduler"},
                                        {DaskRole::workers, "workers"},
                                        {DaskRole::check, "check"}})

struct DaskNodeOptions {
  DaskRole role = DaskRole::workers;
  std::string cluster;     // the cluster's id
  std::string dir;         // the cluster's directory (on storage every node sees)
  std::string env_prefix;  // the env (empty: python3 on PATH)
  std::string scheduler;   // workers: its address; scheduler: the address to listen on
  unsigned port = 0, dashboard_port = 0;  // scheduler
  unsigned notebook_port = 0;             // scheduler: JupyterLab or Notebook beside it
  std::string notebook;                   // its module: jupyterlab or notebook
  unsigned workers = 1, threads = 0;
  bool per_gpu = false;
  bool tls = true;
  std::string interface, local_directory;
  std::string sysfs_root = "/";  // --per-gpu: where this node's GPUs are read
};
// `ferry dask-node`'s words after the verb, and back. One encoder and one decoder
// (src/runtime/dask_node_options.cpp), so the coordinator and the nodes cannot drift apart.
// Options at their defaults are left out; decode throws a usage Error naming a bad option.
std::vector<std::string> encode_dask_node_options(const DaskNodeOptions& options);
DaskNodeOptions decode_dask_node_options(const std::vector<std::string>& words);

// Runs this node's part and returns the exit status. Reports go to stdout, one JSON object a
// line, for the coordinator.
int dask_node(const DaskNodeOptions& options, const job::Environ& env);

// Memory for each of `workers` workers on this node, in bytes: the allocation's share
// (SLURM_MEM_PER_NODE, else SLURM_MEM_PER_CPU times SLURM_CPUS_ON_NODE; megabytes), else the
// node's MemTotal from meminfo_text, divided among them.
std::uint64_t worker_memory_limit(const job::Environ& env, std::string_view meminfo_text,
                                  unsigned workers);

// ---------------------------------------------------------------------------------------------
// ferry ray
//
// The processes of one Ray cluster:
//   ferry ray             the coordinator: ports, the cluster's directory and token, one node
//                         step, the wait for every node, the driver, the teardown;
//   ferry ray-node        once per node through the job's launcher (role node: the head on the
//                         job's first host, a worker elsewhere, which waits for the head's port;
//                         role check: the sweep), reporting in JSON lines;
//   ray start --block, under it, and Ray's daemons under that; on the head, ferry's watcher
//                         (python, ray_watch.py), which reports the nodes the GCS knows;
//   the driver, on the head.
// Every one of them carries FERRY_RAY_CLUSTER=<id>: the check kills what is left by it, never
// another cluster's processes (as `ray stop` would, on a node two clusters share).

struct RayOptions {
  std::string env_dir;    // --env: a staged env (empty: find_python's default)
  std::string interface;  // the nodes' addresses on this interface (default: the route)
  std::string temp_dir;   // the nodes' base for Ray's directory (default: $TMPDIR, then /tmp)
  double timeout = 180;   // seconds for every node to join
  bool insecure = false;  // no token: anyone who reaches the ports can run code
  bool dashboard = true;  // Ray's dashboard on the head's loopback, when the env has it
  unsigned port_low = 20000, port_high = 31999;
  std::string login;  // the host the tunnel goes through (default: the job's submit host)
  std::string sysfs_root = "/";      // where the nodes read their GPUs (recorded trees in tests)
  std::vector<std::string> command;  // the driver; empty: hold the cluster until told to stop
  std::string ferry;                 // this ferry binary, for the nodes
};

// Ray's ports within a cluster's block of k_ray_port_block (every one Ray opens, so that two
// clusters on one node never meet): the daemons' first, then the workers' range.
constexpr unsigned k_ray_port_block = 512, k_ray_fixed_ports = 16;
struct RayPorts {
  unsigned base = 0;
  unsigned gcs() const { return base; }
  unsigned node_manager() const { return base + 1; }
  unsigned object_manager() const { return base + 2; }
  unsigned client_server() const { return base + 3; }
  unsigned dashboard() const { return base + 4; }
  unsigned dashboard_agent_listen() const { return base + 5; }
  unsigned dashboard_agent_grpc() const { return base + 6; }
  unsigned metrics_export() const { return base + 7; }
  unsigned runtime_env_agent() const { return base + 8; }
  // The head's two Prometheus servers, which Ray puts on fixed ports (44217, 44227) unless told
  // through the environment.
  unsigned autoscaler_metrics() const { return base + 9; }
  unsigned dashboard_metrics() const { return base + 10; }
  unsigned min_worker() const { return base + k_ray_fixed_ports; }
  unsigned max_worker() const { return base + k_ray_port_block - 1; }
};

struct RayNodeReport {
  std::string host, role;  // role: head or worker
  std::string address;     // the node's IP, as Ray knows it
  unsigned cpus = 0, gpus = 0;
  std::uint64_t memory = 0;  // bytes Ray may use there (0: Ray's own default)
  std::string temp_dir;
};
FERRY_JSON_FIELDS(RayNodeReport, host, role, address, cpus, gpus, memory, temp_dir)

// What `ferry ray` prints once every node has joined (the start line; --json: this object).
struct RayCluster {
  std::string id;       // <scheduler>-<job id>-<port>: FERRY_RAY_CLUSTER of its processes
  std::string dir;      // the cluster's private directory (0700): token, logs
  std::string address;  // the GCS, host:port: RAY_ADDRESS
  std::string head, ray_version;
  bool token = true;  // token authentication on
  unsigned gcs_port = 0, dashboard_port = 0;
  std::string dashboard, tunnel;
  unsigned cpus = 0, gpus = 0;
  std::vector<RayNodeReport> nodes;
  double seconds = 0;  // from ferry's start to the last node joined
};
FERRY_JSON_FIELDS(RayCluster, id, dir, address, head, ray_version, token, gcs_port, dashboard_port,
                  dashboard, tunnel, cpus, gpus, nodes, seconds)

struct RayHooks {
  std::function<void(const RayCluster&)> ready;  // every node has joined
  std::function<void(const std::string&)> note;  // one line: a warning, a lost node
};

struct RayOutcome {
  int exit_status = 0;  // the driver's; 1 when the cluster failed under it; 128 + a signal
  double teardown_seconds = 0;
  std::vector<std::string> leftovers;  // "host: pid command" of processes the check killed
};

// The whole of `ferry ray`. Errors before the cluster is ready throw Error (one line, naming the
// node, the option or the env), once what was started is stopped.
RayOutcome run_ray(const RayOptions& options, const job::Site& site, const RayHooks& hooks);
std::string find_ray_cluster(const std::string& dir, const job::Environ& env);
// The nodes the running cluster in dir knows, from its GCS, with its token.
struct RayNodeStatus {
  std::string host, address;
  bool alive = false;
  double cpus = 0, gpus = 0;
};
FERRY_JSON_FIELDS(RayNodeStatus, host, address, alive, cpus, gpus)
struct RayStatus {
  std::string dir, address;
  std::vector<RayNodeStatus> nodes;
};
FERRY_JSON_FIELDS(RayStatus, dir, address, nodes)
RayStatus ray_status(const std::string& dir);
bool stop_ray(const std::string& dir, double seconds);

enum class RayRole { node, check };
NLOHMANN_JSON_SERIALIZE_ENUM(RayRole, {{RayRole::node, "node"}, {RayRole::check, "check"}})

struct RayNodeOptions {
  RayRole role = RayRole::node;
  std::string cluster, dir, env_prefix;
  std::string head;          // the head's short host name: the node that is it starts the GCS
  std::string head_address;  // the address the head listens on, the others reach
  unsigned port = 0;         // the block's first port
  bool token = true, dashboard = false;
  bool client = false;  // Ray Client's server on the head (ray[client]; minimal Ray has none)
  // Ray 2.52 and later keep a worker's --temp-dir; before, every node used the head's path.
  bool own_temp_dir = true;
  std::string interface, temp_dir;
  std::string sysfs_root = "/";  // where this node's GPUs are read
  double timeout = 180;          // workers: seconds to wait for the head's port
};
std::vector<std::string> encode_ray_node_options(const RayNodeOptions& options);
RayNodeOptions decode_ray_node_options(const std::vector<std::string>& words);
int ray_node(const RayNodeOptions& options, const job::Environ& env);

// Ray's directory on a node: `<base>/ferry-ray-<port>-<host>` (the host too, for a base that
// nodes share) for the first base whose socket paths (<dir>/session_<date>_<pid>/sockets/
// plasma_store) fit the kernel's 107 bytes. Empty when none does; `shortest` then says how long
// the shortest would have been.
std::string ray_temp_dir(const std::vector<std::string>& bases, unsigned port,
                         const std::string& host, std::size_t* shortest = nullptr);

}  // namespace ferry::runtime
