// ferry ray, the coordinator: a Ray cluster on every node of the job as a list of passes (see
// run_ray), then status and stop for a second shell.
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <memory>

#include <fmt/format.h>

#include "runtime/ray_files.hpp"
#include "runtime/runtime.hpp"
#include "runtime/service.hpp"

namespace ferry::runtime {
namespace {

// Ray versions with token authentication (RAY_AUTH_MODE=token), and those where a worker's
// --temp-dir is its own (before, a worker took the head's path).
constexpr int k_token_since[2] = {2, 52};
constexpr int k_worker_temp_dir_since[2] = {2, 52};

bool version_at_least(const std::string& version, const int (&want)[2]) {
  auto parts = util::split(version, '.');
  auto major = parts.size() > 0 ? util::parse_decimal(parts[0], 1000) : std::nullopt;
  auto minor = parts.size() > 1 ? util::parse_decimal(parts[1], 1000) : std::nullopt;
  if (!major || !minor) return false;
  return static_cast<int>(*major) > want[0] ||
         (static_cast<int>(*major) == want[0] && static_cast<int>(*minor) >= want[1]);
}

struct Coordinator {
  const RayOptions& o;
  const job::Site& site;
  const RayHooks& hooks;
  util::Stopwatch clock{};
  std::string here = util::short_host_name(util::host_name());
  PythonEnv py{};
  std::string ray_version{};
  bool token = true, dashboard = false, client = false;
  std::string head{}, head_address{};
  bool head_here = false;
  RayPorts ports{};
  std::string id{};
  std::unique_ptr<RayFiles> files{};
  std::unique_ptr<util::SiblingLock> port_lock{};
  std::unique_ptr<util::Subprocess> nodes{}, driver{};
  int driver_status = -1;
  std::map<std::string, RayNodeReport> started{};  // by host
  std::map<std::string, bool> known{};             // address -> alive, as the GCS says
  std::string failure{};
  bool tearing_down = false;

  std::string gcs_address() const { return fmt::format("{}:{}", head_address, ports.gcs()); }
  RayNodeOptions node_options(RayRole role) const {
    RayNodeOptions n;
    n.role = role;
    n.cluster = id;
    n.dir = files->dir();
    n.env_prefix = py.prefix;
    n.head = head;
    n.head_address = head_address;
    n.port = ports.base;
    n.token = token;
    n.dashboard = dashboard;
    n.client = client;
    n.own_temp_dir = version_at_least(ray_version, k_worker_temp_dir_since);
    n.interface = o.interface;
    n.temp_dir = o.temp_dir;
    n.sysfs_root = o.sysfs_root;
    n.timeout = o.timeout;
    return n;
  }
  // A command on the first `count` hosts through the job's launcher, one task per node.
  std::vector<std::string> step(std::vector<std::string> command, unsigned count) const {
    job::LaunchRequest req;
    req.nodes = count;
    req.ranks_per_node = 1;
    req.gpus_per_rank = 0;
    req.cpu_bind = "";  // Ray's processes share the node's CPUs: no binding
    // Ray sets each task's and actor's OMP_NUM_THREADS from its num_cpus, unless the node's
    // environment already holds one.
    req.leave_threads = true;
    req.overlap = true;
    req.command = std::move(command);
    req.ferry = o.ferry;
    req.hostfile = job::job_hostfile(site.allocation, site.env);
    job::LaunchPlan plan =
        job::plan_launch(site.allocation, *site.machine, site.gpus, site.cpus, req);
    job::write_hostfile(plan, req.hostfile);
    return plan.argv;
  }
  std::vector<std::string> node_command(RayRole role) const {
    std::vector<std::string> command = {o.ferry, "ray-node"};
    for (auto& w : encode_ray_node_options(node_options(role))) command.push_back(std::move(w));
    return command;
  }
  unsigned host_count() const { return static_cast<unsigned>(site.allocation.hosts.size()); }
  bool ready() const {
    if (started.size() < host_count()) return false;
    for (const auto& [host, r] : started) {
      auto it = known.find(r.address);
      if (it == known.end() || !it->second) return false;
    }
    return true;
  }
};

// The allocation, the env's Python and its Ray, the head and its address.
void check_allocation(Coordinator& c) {
  const job::Allocation& a = c.site.allocation;
  if (a.scheduler == job::Scheduler::none || a.hosts.empty())
    throw Error(
        "not in an allocation (no Slurm, PBS, LSF, Cobalt or Flux job here): run ferry ray in a "
        "batch script or an interactive allocation (salloc, qsub -I)",
        Error::Kind::usage);
  c.py = find_python(c.o.env_dir, c.site.env);
  std::vector<std::string> vars = job::environ_lines(c.py.environ);
  util::CommandOutput r = util::run_command({c.py.python, "-c", k_ray_probe_py}, 60, &vars);
  std::string what = c.py.prefix.empty() ? c.py.python : c.py.prefix;
  Json j;
  try {
    j = Json::parse(r.out);
  } catch (const std::exception&) {
    throw Error(fmt::format("{}: cannot run its Python (exit status {}): {}", what, r.status,
                            r.last_error_line()));
  }
  if (j["ray"].is_null())
    throw Error(fmt::format("{}: no ray in this env (Python {}): install \"ray[default]\" there, "
                            "or name another env with --env",
                            what, j.value("python_version", "")),
                Error::Kind::usage);
  c.ray_version = j["ray"].get<std::string>();
  c.dashboard = c.o.dashboard && j.value("dashboard", false);
  c.client = j.value("client", false);
  c.token = !c.o.insecure;
  if (c.token && !version_at_least(c.ray_version, k_token_since)) {
    c.token = false;
    if (c.hooks.note)
      c.hooks.note(fmt::format(
          "ray {} has no token authentication (2.52 and later have): this cluster is open to "
          "anyone who can reach its ports",
          c.ray_version));
  }
  // A --temp-dir too long for Ray's sockets is the same on every node: said before anything
  // starts (the nodes check their own $TMPDIR).
  if (!c.o.temp_dir.empty()) {
    std::string longest;
    for (const auto& h : a.hosts)
      if (util::short_host_name(h).size() > longest.size()) longest = util::short_host_name(h);
    std::size_t shortest = 0;
    if (ray_temp_dir({c.o.temp_dir}, 65535, longest, &shortest).empty())
      throw Error(fmt::format("--temp-dir {}: Ray's socket paths there would be {} bytes, over "
                              "the kernel's 107: name a shorter one",
                              c.o.temp_dir, shortest),
                  Error::Kind::usage);
  }
  c.head = util::short_host_name(a.hosts.front());
  c.head_here = c.head == c.here;
  if (!c.o.interface.empty() && c.head_here)
    c.head_address = job::interface_address(c.o.interface);
  else
    c.head_address = job::node_address(a.hosts.front(), a.scheduler);
}

// The ports from the job id (past taken ones and past other clusters of this job), and the
// cluster's private directory with its token, under a lock.
void make_cluster_dir(Coordinator& c) {
  const job::Allocation& a = c.site.allocation;
  std::string job_dir = job::job_dir(a, c.site.env);
  util::AtomicFileSet dirs;
  dirs.make_directories(job_dir, "job directory");
  c.port_lock = std::make_unique<util::SiblingLock>(job_dir, "ray-ports");
  std::string probe_host = c.head_here ? "" : c.head_address;
  c.ports.base = choose_ports(
      fmt::format("ray:{}:{}", job::scheduler_name(a.scheduler), a.job_id), c.o.port_low,
      c.o.port_high,
      [&](unsigned p) {
        if ((p - c.o.port_low) % k_ray_port_block == 0 &&
            cluster_dir_taken(fmt::format("{}/ray-{}", job_dir, p)))
          return false;
        return port_is_free(probe_host, p);
      },
      PortBlock{k_ray_port_block, k_ray_fixed_ports});
  c.id = fmt::format("{}-{}-{}", job::scheduler_name(a.scheduler), a.job_id, c.ports.base);
  std::string dir = fmt::format("{}/ray-{}", job_dir, c.ports.base);
  for (const std::string& d : {dir, dir + "/logs"})
    if (::mkdir(d.c_str(), 0700) != 0) util::throw_errno(d, "cannot create", errno);
  c.files = std::make_unique<RayFiles>(dir);
  util::AtomicFileSet set;
  Json state = {{"id", c.id},         {"pid", ::getpid()},         {"host", c.here},
                {"env", c.py.prefix}, {"python", c.py.python},     {"token", c.token},
                {"hosts", a.hosts},   {"address", c.gcs_address()}};
  set.add(c.files->state(), state.dump(2) + "\n", 0600);
  set.add(c.files->watch_script(), k_ray_watch_py, 0600);
  if (c.token) set.add(c.files->token(), random_hex(32) + "\n", 0600);  // 256 bits, as Ray's
  set.commit();
}

// One event from the nodes' step: a node started, failed or was lost, or the GCS's node table.
void handle(Coordinator& c, const Json& j) {
  std::string event = j.value("event", "");
  std::string host = j.value("host", "");
  if (event == "started") {
    RayNodeReport r;
    r.host = host;
    r.role = j.value("role", "");
    r.address = j.value("address", "");
    r.cpus = j.value("cpus", 0u);
    r.gpus = j.value("gpus", 0u);
    r.memory = j.value("memory", std::uint64_t{0});
    r.temp_dir = j.value("temp_dir", "");
    c.started[host] = r;
  } else if (event == "nodes") {
    std::map<std::string, bool> known;
    for (const Json& n : j.value("nodes", Json::array()))
      known[n.value("address", "")] |= n.value("alive", false);
    // A node that was alive and is no longer: lost.
    for (const auto& [address, alive] : c.known)
      if (alive && !known[address] && c.failure.empty() && !c.tearing_down) {
        std::string name = address;
        for (const auto& [h, r] : c.started)
          if (r.address == address) name = h;
        c.failure = fmt::format("{}: its Ray node died (the GCS marked it dead)", name);
      }
    c.known = known;
  } else if ((event == "failed" || event == "lost") && c.failure.empty() && !c.tearing_down) {
    c.failure = fmt::format("{}: {}", host, j.value("error", ""));
  }
}

// The lines the nodes' step has written, once at least one has come or `seconds` have passed;
// false when the step's output ended.
bool pump(Coordinator& c, double seconds) {
  util::Stopwatch clock;
  bool some = false;
  while (true) {
    auto line = c.nodes->read_line(0);
    if (line) {
      if (auto j = json_line(*line)) handle(c, *j);
      some = true;
      continue;
    }
    if (!c.nodes->timed_out()) return false;
    double left = seconds - clock.seconds();
    if (some || left <= 0 || StopSignals::received()) return true;
    pollfd fd{c.nodes->stdout_fd(), POLLIN, 0};
    ::poll(&fd, 1, static_cast<int>(std::min(left, 0.2) * 1000) + 1);
  }
}

// One `ferry ray-node` per node, all at once: the workers wait for the head's port themselves.
void start_nodes(Coordinator& c) {
  std::vector<std::string> vars =
      job::environ_lines(ray_environ(*c.files, c.id, c.token, "", c.site.env));
  util::SubprocessOptions so;
  so.own_group = true;
  so.env = &vars;
  c.nodes =
      std::make_unique<util::Subprocess>(c.step(c.node_command(RayRole::node), c.host_count()), so);
  c.port_lock.reset();  // the block is this cluster's now: its directory says so
}

// Every node started and alive in the GCS's table, or the nodes that never joined named.
void await_nodes(Coordinator& c) {
  bool open = true;
  while (open && !c.ready() && c.failure.empty() && !StopSignals::received()) {
    double left = c.o.timeout - c.clock.seconds();
    if (left <= 0) break;
    open = pump(c, left);
  }
  if (StopSignals::received())
    throw Error(fmt::format("stopped by signal {} while starting", StopSignals::received()));
  if (!c.failure.empty()) throw Error(c.failure);
  if (c.ready()) return;
  std::vector<std::string> missing;
  for (const auto& h : c.site.allocation.hosts) {
    std::string host = util::short_host_name(h);
    auto it = c.started.find(host);
    if (it == c.started.end())
      missing.push_back(host +
                        (open ? " (Ray did not start there)" : " (its node never reported)"));
    else if (!c.known[it->second.address])
      missing.push_back(host + " (started, not in the head's node table)");
  }
  if (!open)
    throw Error(fmt::format("the nodes' launcher ended with no word from {} (logs: {})",
                            util::join(missing, ", "), c.files->log_dir()));
  throw Error(fmt::format("--timeout {:g}: nodes did not join in time: {} (logs: {})", c.o.timeout,
                          util::join(missing, ", "), c.files->log_dir()));
}

// The start line's facts.
RayCluster describe(const Coordinator& c) {
  RayCluster d;
  d.id = c.id;
  d.dir = c.files->dir();
  d.address = c.gcs_address();
  d.head = c.head;
  d.ray_version = c.ray_version;
  d.token = c.token;
  d.gcs_port = c.ports.gcs();
  for (const auto& h : c.site.allocation.hosts) {
    const RayNodeReport& r = c.started.at(util::short_host_name(h));
    d.nodes.push_back(r);
    d.cpus += r.cpus;
    d.gpus += r.gpus;
  }
  if (c.dashboard) {
    d.dashboard_port = c.ports.dashboard();
    d.dashboard = fmt::format("http://127.0.0.1:{}", d.dashboard_port);
    d.tunnel = tunnel_line({d.dashboard_port}, c.o.login, c.head,
                           c.head_here ? c.head : c.head_address, c.site.env);
  }
  d.seconds = c.clock.seconds();
  return d;
}

// The driver, on the head (Ray connects a driver through the raylet of its own node): here when
// ferry runs there, else through the launcher. Then wait for it, a stop signal, or a node lost.
void serve(Coordinator& c) {
  if (!c.o.command.empty()) {
    job::Environ env = ray_environ(*c.files, c.id, c.token, c.gcs_address(), c.py.environ);
    std::vector<std::string> vars = job::environ_lines(env);
    // In ferry's process group, as a shell runs it: Ctrl-C reaches both, and a terminal stays
    // its to read.
    util::SubprocessOptions so;
    so.env = &vars;
    so.inherit_stdin = true;
    so.inherit_stdout = true;
    c.driver =
        std::make_unique<util::Subprocess>(c.head_here ? c.o.command : c.step(c.o.command, 1), so);
  }
  while (c.failure.empty() && !StopSignals::received()) {
    if (c.driver) {
      if (auto status = c.driver->wait_for(0)) {
        c.driver_status = *status;
        c.driver.reset();
        return;
      }
    }
    if (!pump(c, 0.1) && c.failure.empty() && !c.tearing_down)
      c.failure = "the nodes' launcher ended under the cluster";
  }
}

// Everything down: the driver, then Ray on every node (ray start --block stops its daemons on
// SIGTERM); then every node (and this host) checked for a process of the cluster.
void tear_down(Coordinator& c, RayOutcome& out) {
  util::Stopwatch clock;
  c.tearing_down = true;
  if (c.driver) {
    c.driver_status = c.driver->stop_group(5);
    c.driver.reset();
  }
  // The stop file tells every node to stop Ray (SIGTERM to `ray start --block`, which ends its
  // daemons) and remove its directory, whatever the launcher passes on; signals to the step
  // only for a node that has not ended in time.
  if (c.nodes) {
    util::AtomicFileSet set;
    set.add(c.files->stop(), "stop\n", 0600);
    set.commit();
    if (!c.nodes->wait_for(25)) c.nodes->stop_group(5);
    c.nodes.reset();
  }
  if (!c.files) return;
  out.leftovers = run_checks(c.step(c.node_command(RayRole::check), c.host_count()),
                             c.node_command(RayRole::check), c.site.allocation);
  out.teardown_seconds = clock.seconds();
  ::unlink(c.files->token().c_str());
  if (c.failure.empty() && out.leftovers.empty())
    util::remove_tree(c.files->dir());
  else
    mark_cluster_ended(c.files->dir());
}

}  // namespace

RayOutcome run_ray(const RayOptions& options, const job::Site& site, const RayHooks& hooks) {
  Coordinator c{options, site, hooks};
  util::remove_temps_on_signal();
  StopSignals signals;
  stop_with_parent();
  RayOutcome out;
  RayCluster cluster;
  try {
    check_allocation(c);  // a job, an env with ray, the head
    make_cluster_dir(c);  // ports, the private directory, the token
    start_nodes(c);       // one ray-node per node, all at once
    await_nodes(c);       // every node in the head's node table
    cluster = describe(c);
  } catch (...) {
    tear_down(c, out);
    throw;
  }
  if (hooks.ready) hooks.ready(cluster);
  serve(c);  // the driver, or hold until told to stop
  tear_down(c, out);
  if (!c.failure.empty() && hooks.note) hooks.note(c.failure);
  out.exit_status =
      coordinator_status(!c.failure.empty(), c.driver_status, !options.command.empty());
  return out;
}

std::string find_ray_cluster(const std::string& dir, const job::Environ& env) {
  return find_cluster_dir(dir, env, "ray-", "ray");
}

RayStatus ray_status(const std::string& dir) {
  RayFiles files(dir);
  Json state = Json::parse(util::read_file(files.state()));
  PythonEnv py = find_python(state.value("env", ""), job::current_environ());
  std::string address = state.value("address", "");
  job::Environ env =
      ray_environ(files, state.value("id", ""), state.value("token", true), address, py.environ);
  std::vector<std::string> vars = job::environ_lines(env);
  util::CommandOutput r =
      util::run_command({py.python, files.watch_script(), address, "once"}, 60, &vars);
  std::optional<Json> j;
  for (std::string_view line : util::split_lines(r.out))
    if (auto k = json_line(std::string(line))) j = k;
  if (r.status != 0 || !j)
    throw Error(fmt::format("{}: cannot reach the cluster: {}", address, r.last_error_line()));
  RayStatus s;
  s.dir = dir;
  s.address = address;
  for (const Json& n : (*j)["nodes"]) {
    RayNodeStatus ns;
    ns.host = n.value("host", "");
    ns.address = n.value("address", "");
    ns.alive = n.value("alive", false);
    ns.cpus = n.value("cpus", 0.0);
    ns.gpus = n.value("gpus", 0.0);
    s.nodes.push_back(ns);
  }
  return s;
}

bool stop_ray(const std::string& dir, double seconds) { return stop_cluster(dir, "ray", seconds); }

}  // namespace ferry::runtime
