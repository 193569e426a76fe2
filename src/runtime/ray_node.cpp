// ferry ray-node: a Ray cluster's part on one node. The node role starts Ray there with the CPUs,
// GPUs and memory the allocation grants it, on the job's ports, in a short node-local directory:
// the head on the head's host (and ferry's watcher beside it, which reports the nodes the GCS
// knows), a worker elsewhere once the head's port answers. It reports in JSON lines on stdout,
// passes a stop on to `ray start --block` (which stops its daemons), and reports Ray ending by
// itself. The check role kills whatever of the cluster is left.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "runtime/ray_files.hpp"
#include "runtime/runtime.hpp"
#include "runtime/service.hpp"

namespace ferry::runtime {
namespace {

// The session directory Ray makes inside its temp dir, and the socket in it with the longest
// name: session_2026-12-01_19-02-30_314791_<pid>/sockets/plasma_store (pids up to 7 digits).
constexpr std::size_t k_ray_socket_suffix = 1 + 42 + 9 + 12;
constexpr std::size_t k_socket_path_max = 107;  // sizeof(sockaddr_un::sun_path) - 1

// TCP connect to host:port succeeds (the head's GCS listens).
bool answers(const std::string& host, unsigned port) { return !port_is_free(host, port); }

// Appends a line to the node's log.
void log_line(const std::string& path, const std::string& line) {
  util::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (fd) util::write_all(fd.get(), line + "\n", path);
}

struct RayNode {
  const RayNodeOptions& o;
  const job::Environ& env;
  std::string host = this_host();
  bool head = false;
  PythonEnv py{};
  RayFiles files{o.dir};
  RayNodeReport report{};
  std::string ray{};  // the env's ray command
  std::string log = files.log(host);
};

void make_temp_dir(const RayNode& n) {
  if (::mkdir(n.report.temp_dir.c_str(), 0700) != 0 && errno != EEXIST)
    util::throw_errno(n.report.temp_dir, "cannot create", errno);
}

// An older Ray's worker uses the head's path for its files. Where that path is already there
// once the head answers, this node shares its base with the head, and two raylets would share
// one directory's sockets.
void make_head_temp_dir(const RayNode& n) {
  if (::access(n.report.temp_dir.c_str(), F_OK) == 0)
    throw Error(fmt::format(
        "Ray's directory {} is shared with the head {}: this Ray puts every node's files at the "
        "head's path (2.52 and later do not), so name a node-local base with --temp-dir",
        n.report.temp_dir, n.o.head));
  make_temp_dir(n);
}

// The env's Python and ray, the role, the resources, the directory, the address.
void prepare(RayNode& n) {
  n.py = find_python(n.o.env_prefix, n.env);
  n.ray = n.py.prefix.empty() ? "ray" : n.py.prefix + "/bin/ray";
  if (!n.py.prefix.empty() && ::access(n.ray.c_str(), X_OK) != 0)
    throw Error(fmt::format("{}: no bin/ray (install ray in the env)", n.py.prefix));
  n.head = n.host == n.o.head;
  n.report.host = n.host;
  n.report.role = n.head ? "head" : "worker";
  n.report.cpus = granted_cpus(n.env);
  job::DiscoverOptions d;
  d.sysfs_root = n.o.sysfs_root;
  job::GpuInventory gpus = job::discover_gpus(n.env, d);
  n.report.gpus = static_cast<unsigned>(gpus.visible.size());
  if (job::lookup(n.env, "SLURM_MEM_PER_NODE") || job::lookup(n.env, "SLURM_MEM_PER_CPU"))
    n.report.memory = worker_memory_limit(n.env, "", 1);
  std::vector<std::string> bases;
  if (!n.o.temp_dir.empty()) {
    bases.push_back(n.o.temp_dir);
  } else {
    if (auto t = job::lookup(n.env, "TMPDIR"); t && !t->empty()) bases.push_back(*t);
    bases.push_back("/tmp");
  }
  std::size_t shortest = 0;
  n.report.temp_dir =
      ray_temp_dir(bases, n.o.port, n.head || n.o.own_temp_dir ? n.host : n.o.head, &shortest);
  if (n.report.temp_dir.empty())
    throw Error(fmt::format("{}: Ray's socket paths there would be {} bytes, over the kernel's "
                            "{}: name a shorter base with --temp-dir",
                            n.o.temp_dir.empty() ? util::join(bases, ", ") : n.o.temp_dir, shortest,
                            k_socket_path_max),
                Error::Kind::usage);
  if (n.head || n.o.own_temp_dir) make_temp_dir(n);
  // With --interface every node, the head too, is known to Ray by that interface's address. A
  // coordinator off the head reaches its GCS at the address the scheduler knows, which the GCS
  // also listens on.
  n.report.address = !n.o.interface.empty() ? job::interface_address(n.o.interface)
                     : n.head               ? n.o.head_address
                                            : job::route_towards(n.o.head_address).address;
}

std::vector<std::string> ray_start_argv(const RayNode& n) {
  RayPorts p{n.o.port};
  std::vector<std::string> argv = {n.ray,
                                   "start",
                                   "--block",
                                   "--disable-usage-stats",
                                   "--node-ip-address",
                                   n.report.address,
                                   "--num-cpus",
                                   std::to_string(n.report.cpus),
                                   "--num-gpus",
                                   std::to_string(n.report.gpus),
                                   "--temp-dir",
                                   n.report.temp_dir,
                                   "--node-manager-port",
                                   std::to_string(p.node_manager()),
                                   "--object-manager-port",
                                   std::to_string(p.object_manager()),
                                   "--dashboard-agent-listen-port",
                                   std::to_string(p.dashboard_agent_listen()),
                                   "--dashboard-agent-grpc-port",
                                   std::to_string(p.dashboard_agent_grpc()),
                                   "--metrics-export-port",
                                   std::to_string(p.metrics_export()),
                                   "--runtime-env-agent-port",
                                   std::to_string(p.runtime_env_agent()),
                                   "--min-worker-port",
                                   std::to_string(p.min_worker()),
                                   "--max-worker-port",
                                   std::to_string(p.max_worker())};
  if (n.report.memory) {
    // Ray's own split of a node's memory: 30% for the object store.
    argv.insert(argv.end(), {"--memory", std::to_string(n.report.memory * 7 / 10),
                             "--object-store-memory", std::to_string(n.report.memory * 3 / 10)});
  }
  if (n.head) {
    argv.insert(argv.end(), {"--head", "--port", std::to_string(p.gcs())});
    // Minimal Ray refuses the port of a client server it cannot start.
    if (n.o.client)
      argv.insert(argv.end(), {"--ray-client-server-port", std::to_string(p.client_server())});
    if (n.o.dashboard)
      argv.insert(argv.end(), {"--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
                               "--dashboard-port", std::to_string(p.dashboard())});
    else
      argv.insert(argv.end(), {"--include-dashboard", "false"});
  } else {
    argv.insert(argv.end(), {"--address", fmt::format("{}:{}", n.o.head_address, p.gcs())});
  }
  return argv;
}

// A worker waits for the head's GCS to answer: Ray refuses to start a worker before its head.
void await_head(const RayNode& n) {
  util::Stopwatch clock;
  while (!answers(n.o.head_address, RayPorts{n.o.port}.gcs())) {
    if (StopSignals::received())
      throw Error(fmt::format("stopped by signal {}", StopSignals::received()));
    if (::access(n.files.stop().c_str(), F_OK) == 0) throw Error("stopped while waiting");
    if (clock.seconds() > n.o.timeout)
      throw Error(fmt::format("the head {} ({}:{}) did not answer in {:g} s", n.o.head,
                              n.o.head_address, RayPorts{n.o.port}.gcs(), n.o.timeout));
    ::usleep(50000);
  }
}

// `ray start --block` ends its daemons on SIGTERM (to it alone: its daemons signalled at once
// make it wait out its grace period); whatever of its group is left after 15 s, or once it has
// ended, gets SIGKILL.
void stop_ray_start(std::unique_ptr<util::Subprocess>& ray) {
  if (!ray) return;
  ray->kill(SIGTERM);
  ray->wait_for(15);
  ray->kill_group(SIGKILL);
  ray->wait();
  ray.reset();
}

int run_node(const RayNodeOptions& o, const job::Environ& env) {
  RayNode n{o, env};
  auto fail = [&](const std::string& error) {
    say_event({{"host", n.host}, {"event", "failed"}, {"error", error}});
    return 1;
  };
  StopSignals signals;  // a stop only sets a flag: the loops below end the children
  // What Ray's processes leave behind when they end comes to us, to be ended too.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  auto sweep = [&] {
    for (const std::string& p : kill_children())
      log_line(n.log, "ferry: killed what Ray left: " + p);
  };
  std::unique_ptr<util::Subprocess> ray, watcher;
  try {
    prepare(n);
    if (!n.head) await_head(n);
    if (!n.head && !n.o.own_temp_dir) make_head_temp_dir(n);
    job::Environ e = ray_environ(n.files, o.cluster, o.token, "", n.py.environ);
    e["PYTHONUNBUFFERED"] = "1";  // "Ray runtime started." must reach us through the pipe
    e["AUTOSCALER_METRIC_PORT"] = std::to_string(RayPorts{o.port}.autoscaler_metrics());
    e["DASHBOARD_METRIC_PORT"] = std::to_string(RayPorts{o.port}.dashboard_metrics());
    std::vector<std::string> vars = job::environ_lines(e);
    util::SubprocessOptions so;
    so.env = &vars;
    so.log_path = n.log;
    so.own_group = true;  // Ray's daemons, and what they start, share its group
    ray = std::make_unique<util::Subprocess>(ray_start_argv(n), so);
    bool started = false;
    const std::string gcs = fmt::format("{}:{}", o.head_address, RayPorts{o.port}.gcs());
    bool ended = false;  // ray start ended by itself
    while (true) {
      std::pair<util::Subprocess*, bool> sources[2] = {{ray.get(), false}, {watcher.get(), true}};
      for (auto [child, is_watcher] : sources) {
        if (!child) continue;
        auto line = child->read_line(is_watcher ? 0 : 0.05);
        if (line && is_watcher) {
          if (auto j = json_line(*line)) say_event(*j);
          continue;
        }
        if (line) {
          log_line(n.log, *line);
          if (!started && line->find("Ray runtime started.") != std::string::npos) {
            started = true;
            Json j = n.report;
            j["event"] = "started";
            say_event(j);
            if (n.head) {
              // The watcher reports the nodes as the GCS sees them.
              util::SubprocessOptions wo;
              wo.env = &vars;
              wo.log_path = n.files.log(n.host + "-watch");
              watcher = std::make_unique<util::Subprocess>(
                  std::vector<std::string>{n.py.python, n.files.watch_script(), gcs}, wo);
            }
          }
        } else if (!is_watcher && !child->timed_out()) {
          ended = true;
        }
      }
      if (ended || StopSignals::received() || ::access(n.files.stop().c_str(), F_OK) == 0) break;
    }
    if (!ended) {
      if (watcher) watcher->stop_group(2);
      // ray start --block stops its daemons on SIGTERM; SIGKILL after 15 s.
      stop_ray_start(ray);
      sweep();
      util::remove_tree(n.report.temp_dir);
      return 0;
    }
    int status = ray->wait();
    if (watcher) watcher->stop_group(2);
    stop_ray_start(ray);  // what it left of its group
    sweep();
    say_event({{"host", n.host},
               {"event", started ? "lost" : "failed"},
               {"error", fmt::format("ray start ended (exit status {}); its log: {} (Ray's: {})",
                                     status, n.log, n.report.temp_dir)}});
    return 1;
  } catch (const Error& e) {
    if (watcher) watcher->stop_group(2);
    stop_ray_start(ray);
    sweep();
    return fail(e.what());
  }
}

}  // namespace

std::string ray_temp_dir(const std::vector<std::string>& bases, unsigned port,
                         const std::string& host, std::size_t* shortest) {
  std::size_t best = 0;
  for (std::string base : bases) {
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    std::string dir = fmt::format("{}/ferry-ray-{}-{}", base, port, host);
    std::size_t length = dir.size() + k_ray_socket_suffix;
    if (length <= k_socket_path_max) return dir;
    if (!best || length < best) best = length;
  }
  if (shortest) *shortest = best;
  return {};
}

job::Environ ray_environ(const RayFiles& files, const std::string& cluster, bool token,
                         const std::string& address, job::Environ env) {
  env["FERRY_RAY_CLUSTER"] = cluster;
  env["FERRY_RAY_DIR"] = files.dir();
  env["RAY_USAGE_STATS_ENABLED"] = "0";
  if (token) {
    env["RAY_AUTH_MODE"] = "token";
    env["RAY_AUTH_TOKEN_PATH"] = files.token();
  } else {
    env["RAY_AUTH_MODE"] = "disabled";
  }
  env.erase("RAY_AUTH_TOKEN");  // a token of the user's own would win over the cluster's
  if (!address.empty()) env["RAY_ADDRESS"] = address;
  return env;
}

int ray_node(const RayNodeOptions& options, const job::Environ& env) {
  if (options.role == RayRole::check) {
    say_event({{"host", this_host()},
               {"event", "checked"},
               {"leftovers", kill_marked("FERRY_RAY_CLUSTER=" + options.cluster)}});
    return 0;
  }
  return run_node(options, env);
}

}  // namespace ferry::runtime
