// ferry dask, the coordinator: a Dask cluster on every node of the job as a list of passes (see
// run_dask), then status and stop for a second shell.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runtime/dask_files.hpp"
#include "runtime/runtime.hpp"
#include "runtime/service.hpp"

namespace ferry::runtime {
namespace {

// What the env's Python has, and the cluster's fresh key and certificate.
struct EnvProbe {
  std::string distributed, python_version;
  bool bokeh = false, jupyterlab = false, notebook = false;
  std::string key, cert;
};

EnvProbe probe_env(const PythonEnv& py, const std::string& cluster, bool insecure) {
  std::vector<std::string> vars = job::environ_lines(py.environ);
  util::CommandOutput r = util::run_command(
      {py.python, "-c", k_dask_setup_py, insecure ? "insecure" : cluster}, 60, &vars);
  std::string what = py.prefix.empty() ? py.python : py.prefix;
  Json j;
  try {
    j = Json::parse(r.out);
  } catch (const std::exception&) {
    throw Error(fmt::format("{}: cannot run its Python (exit status {}): {}", what, r.status,
                            r.last_error_line()));
  }
  EnvProbe p;
  p.python_version = j.value("python_version", "");
  if (j["distributed"].is_null())
    throw Error(fmt::format("{}: no dask.distributed in this env (Python {}): install "
                            "\"dask[distributed]\" there, or name another env with --env",
                            what, p.python_version),
                Error::Kind::usage);
  p.distributed = j["distributed"].get<std::string>();
  p.bokeh = j.value("bokeh", false);
  p.jupyterlab = j.value("jupyterlab", false);
  p.notebook = j.value("notebook", false);
  if (j.contains("tls_error"))
    throw Error(fmt::format("{}: {} (install cryptography in the env, or run with --insecure)",
                            what, j["tls_error"].get<std::string>()));
  p.key = j.value("key", "");
  p.cert = j.value("cert", "");
  return p;
}

// Lines from the scheduler's step and the workers' step as they come.
enum class Source { scheduler, workers };
struct Event {
  Source source;
  std::optional<Json> json;  // nullopt: that step's output ended
};

// run_dask's passes share one Coordinator: the inputs, the processes, what the nodes said.
struct Coordinator {
  const DaskOptions& o;
  const job::Site& site;
  const DaskHooks& hooks;
  util::Stopwatch clock{};
  std::string here = util::short_host_name(util::host_name());
  PythonEnv py{};
  EnvProbe probe{};
  bool scheduler_local = false;
  std::string head{}, listen{};  // the scheduler's host, and the address it listens on
  unsigned port = 0;
  std::string id{};
  std::unique_ptr<DaskFiles> files{};
  std::unique_ptr<util::SiblingLock> port_lock{};
  std::unique_ptr<util::Subprocess> scheduler{}, workers{};
  pid_t client = -1;
  int client_status = -1;
  DaskCluster cluster{};
  std::map<std::string, DaskNodeReport> started{};  // by host
  std::map<std::string, std::string> joined{};      // worker name -> address
  std::string failure{};                            // the first thing that went wrong
  std::string jupyter_token{};
  bool tearing_down = false;

  job::Environ marked(job::Environ env) const {
    env["FERRY_DASK_CLUSTER"] = id;
    return env;
  }
  DaskNodeOptions node_options(DaskRole role) const {
    DaskNodeOptions n;
    n.role = role;
    n.cluster = id;
    n.dir = files->dir();
    n.env_prefix = py.prefix;
    n.tls = !o.insecure;
    return n;
  }
  // `ferry dask-node` on hosts through the job's launcher (one task per node, sharing the CPUs
  // with the job's other steps), or here when local.
  std::vector<std::string> node_step(const DaskNodeOptions& n, unsigned nodes, bool local) const {
    std::vector<std::string> command = {o.ferry, "dask-node"};
    for (auto& w : encode_dask_node_options(n)) command.push_back(std::move(w));
    if (local) return command;
    job::LaunchRequest req;
    req.nodes = nodes;
    req.ranks_per_node = 1;
    req.gpus_per_rank = 0;
    req.cpu_bind = "";         // Dask's threads share the node's CPUs: no binding
    req.leave_threads = true;  // each worker gets its own share (dask_node.cpp)
    req.overlap = true;
    req.command = command;
    req.ferry = o.ferry;
    req.hostfile = job::job_hostfile(site.allocation, site.env);
    job::LaunchPlan plan =
        job::plan_launch(site.allocation, *site.machine, site.gpus, site.cpus, req);
    job::write_hostfile(plan, req.hostfile);
    return plan.argv;
  }
  unsigned expected_workers() const {
    unsigned n = 0;
    for (const auto& [host, r] : started) n += r.workers;
    return n;
  }
  unsigned joined_on(const std::string& host) const {
    unsigned n = 0;
    for (const auto& [name, address] : joined)
      if (name.substr(0, name.rfind('-')) == host) ++n;
    return n;
  }
  bool ready() const { return all_joined() && (!o.jupyter || cluster.jupyter_port); }
  bool all_joined() const {
    if (started.size() < site.allocation.hosts.size()) return false;
    for (const auto& [host, r] : started)
      if (joined_on(host) < r.workers) return false;
    return true;
  }
};

// The allocation, the env and its Python, and where the scheduler goes.
void check_allocation(Coordinator& c) {
  const job::Allocation& a = c.site.allocation;
  if (a.scheduler == job::Scheduler::none || a.hosts.empty())
    throw Error(
        "not in an allocation (no Slurm, PBS, LSF, Cobalt or Flux job here): run ferry dask in a "
        "batch script or an interactive allocation (salloc, qsub -I)",
        Error::Kind::usage);
  if (c.o.workers_per_node == 0)
    throw Error("--workers-per-node 0: at least one worker per node", Error::Kind::usage);
  c.py = find_python(c.o.env_dir, c.site.env);
  c.scheduler_local = c.o.scheduler_here || util::short_host_name(a.hosts.front()) == c.here;
  c.head = c.scheduler_local ? c.here : util::short_host_name(a.hosts.front());
  if (!c.o.interface.empty() && c.scheduler_local) {
    c.listen = job::interface_address(c.o.interface);
  } else if (!c.scheduler_local) {
    c.listen = job::node_address(a.hosts.front(), a.scheduler);
  } else {
    // Here: the address that reaches the other hosts (loopback when the job is this host alone).
    for (const auto& h : a.hosts)
      if (util::short_host_name(h) != c.here) {
        c.listen = job::route_towards(job::node_address(h, a.scheduler)).address;
        break;
      }
    if (c.listen.empty()) c.listen = "127.0.0.1";
  }
}

// Ports from the job id (falling back past taken ones and past clusters of this job still
// running), and the cluster's private directory with its files, under a lock so that two
// `ferry dask` starting together in one job cannot pick the same ports.
void make_cluster_dir(Coordinator& c) {
  const job::Allocation& a = c.site.allocation;
  std::string job_dir = job::job_dir(a, c.site.env);
  util::AtomicFileSet dirs;
  dirs.make_directories(job_dir, "job directory");
  c.port_lock = std::make_unique<util::SiblingLock>(job_dir, "dask-ports");
  auto in_use_by_a_cluster = [&](unsigned port) {
    return cluster_dir_taken(fmt::format("{}/dask-{}", job_dir, port));
  };
  std::string probe_host = c.scheduler_local ? "" : c.listen;
  c.port = choose_ports(fmt::format("dask:{}:{}", job::scheduler_name(a.scheduler), a.job_id),
                        c.o.port_low, c.o.port_high, [&](unsigned p) {
                          if ((p - c.o.port_low) % 3 == 0 && in_use_by_a_cluster(p)) return false;
                          return port_is_free(probe_host, p);
                        });
  c.id = fmt::format("{}-{}-{}", job::scheduler_name(a.scheduler), a.job_id, c.port);
  std::string dir = fmt::format("{}/dask-{}", job_dir, c.port);
  for (const std::string& d : {dir, dir + "/tls", dir + "/logs"})
    if (::mkdir(d.c_str(), 0700) != 0) util::throw_errno(d, "cannot create", errno);
  c.files = std::make_unique<DaskFiles>(dir);
  c.probe = probe_env(c.py, c.id, c.o.insecure);
  if (c.o.jupyter && !c.probe.jupyterlab && !c.probe.notebook)
    throw Error(fmt::format("--jupyter: neither JupyterLab nor Jupyter Notebook is in {}",
                            c.py.prefix.empty() ? c.py.python : c.py.prefix),
                Error::Kind::usage);
  util::AtomicFileSet set;
  Json state = {{"id", c.id},         {"pid", ::getpid()},     {"host", c.here},
                {"env", c.py.prefix}, {"python", c.py.python}, {"tls", !c.o.insecure},
                {"hosts", a.hosts}};
  set.add(c.files->state(), state.dump(2) + "\n", 0600);
  set.add(c.files->preload(), k_dask_preload_py, 0600);
  set.add(c.files->status_script(), k_dask_status_py, 0600);
  if (c.o.jupyter) {
    c.jupyter_token = random_hex(16);  // 128 bits
    set.add(c.files->jupyter_token(), c.jupyter_token + "\n", 0600);
  }
  if (!c.o.insecure) {
    set.add(c.files->credentials(), c.probe.key + c.probe.cert, 0600);
    set.add(c.files->ca(), c.probe.cert, 0600);
  }
  set.commit();
}

// The next event from either step, waiting at most `seconds` (nullopt: none came). A stop
// signal ends the wait early.
std::optional<Event> next_event(Coordinator& c, double seconds) {
  util::Stopwatch clock;
  while (true) {
    std::pair<util::Subprocess*, Source> steps[2] = {{c.scheduler.get(), Source::scheduler},
                                                     {c.workers.get(), Source::workers}};
    pollfd fds[2] = {{-1, POLLIN, 0}, {-1, POLLIN, 0}};
    for (int i = 0; i < 2; ++i)
      if (steps[i].first && steps[i].first->stdout_fd() >= 0)
        fds[i].fd = steps[i].first->stdout_fd();
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0) continue;
      auto line = steps[i].first->read_line(0);
      if (line) {
        if (auto j = json_line(*line)) return Event{steps[i].second, j};
        continue;
      }
      if (!steps[i].first->timed_out()) return Event{steps[i].second, std::nullopt};
    }
    double left = seconds - clock.seconds();
    if (left <= 0 || StopSignals::received()) return std::nullopt;
    if (::poll(fds, 2, static_cast<int>(std::min(left, 0.2) * 1000) + 1) < 0 && errno != EINTR)
      return std::nullopt;
  }
}

// One event's meaning: a worker joined or left, a node started its workers or failed.
void handle(Coordinator& c, const Event& e) {
  if (!e.json) {
    if (c.tearing_down || !c.failure.empty()) return;
    if (e.source == Source::scheduler) {
      c.failure =
          fmt::format("the scheduler on {} ended; its log: {}", c.head, c.files->log("scheduler"));
    } else {
      std::vector<std::string> silent;
      for (const auto& h : c.site.allocation.hosts)
        if (!c.started.count(util::short_host_name(h))) silent.push_back(util::short_host_name(h));
      c.failure = silent.empty() ? "the workers' launcher ended"
                                 : fmt::format("the workers' launcher ended with no word from {}",
                                               util::join(silent, ", "));
    }
    return;
  }
  const Json& j = *e.json;
  std::string event = j.value("event", "");
  std::string host = j.value("host", "");
  if (event == "dashboard") {
    if (!j.value("error", "").empty() && c.hooks.note)
      c.hooks.note(
          fmt::format("the dashboard on {} did not start: {}", c.head, j.value("error", "")));
  } else if (event == "jupyter") {
    c.cluster.jupyter_port = j.value("port", 0u);
  } else if (event == "add") {
    c.joined[j.value("name", "")] = j.value("address", "");
  } else if (event == "remove") {
    std::string name = j.value("name", "");
    c.joined.erase(name);
    if (!c.tearing_down && c.failure.empty())
      c.failure =
          fmt::format("worker {} on {} left the cluster", name, name.substr(0, name.rfind('-')));
  } else if (event == "started") {
    DaskNodeReport r;
    r.host = host;
    r.workers = j.value("workers", 0u);
    r.threads = j.value("threads", 0u);
    r.memory_limit = j.value("memory_limit", std::uint64_t{0});
    r.local_directory = j.value("local_directory", "");
    r.spilling = j.value("spilling", true);
    r.gpus = j.value("gpus", std::vector<std::string>{});
    if (!r.spilling && c.hooks.note)
      c.hooks.note(
          fmt::format("{}: no node-local directory can be written; spilling to disk is "
                      "off (workers keep to memory)",
                      host));
    c.started[host] = r;
  } else if ((event == "failed" || event == "lost") && c.failure.empty() && !c.tearing_down) {
    c.failure = fmt::format("{}: {}", host, j.value("error", ""));
  }
}

// One `ferry dask-node` per node through the job's launcher, pointed at `address`.
void spawn_workers(Coordinator& c, const std::string& address) {
  DaskNodeOptions n = c.node_options(DaskRole::workers);
  n.scheduler = address;
  n.workers = c.o.workers_per_node;
  n.threads = c.o.threads_per_worker;
  n.per_gpu = c.o.per_gpu;
  n.sysfs_root = c.o.sysfs_root;
  n.interface = c.o.interface;
  n.local_directory = c.o.local_directory;
  std::vector<std::string> vars = job::environ_lines(c.marked(c.site.env));
  util::SubprocessOptions so;
  so.own_group = true;
  so.env = &vars;
  c.workers = std::make_unique<util::Subprocess>(
      c.node_step(n, static_cast<unsigned>(c.site.allocation.hosts.size()), false), so);
}

// The scheduler on its host, and its address once it listens; then the scheduler file.
void start_scheduler(Coordinator& c) {
  DaskNodeOptions n = c.node_options(DaskRole::scheduler);
  n.scheduler = c.listen;
  n.port = c.port;
  n.dashboard_port = c.port + 1;
  if (!c.scheduler_local) n.interface = c.o.interface;
  if (c.o.jupyter) {
    n.notebook_port = c.port + 2;
    n.notebook = c.probe.jupyterlab ? "jupyterlab" : "notebook";
  }
  std::vector<std::string> vars = job::environ_lines(c.marked(c.site.env));
  util::SubprocessOptions so;
  so.own_group = true;
  so.env = &vars;
  c.scheduler = std::make_unique<util::Subprocess>(c.node_step(n, 1, c.scheduler_local), so);
  // The workers start now, beside the scheduler, not after it: the address is known (ferry
  // chose host and port), and a worker waits for its scheduler. Only an --interface on a remote
  // head leaves the address to that node, and the workers wait for it.
  if (c.scheduler_local || c.o.interface.empty()) {
    bool v6 = c.listen.find(':') != std::string::npos;
    spawn_workers(c, fmt::format("{}://{}{}{}:{}", c.o.insecure ? "tcp" : "tls", v6 ? "[" : "",
                                 c.listen, v6 ? "]" : "", c.port));
  }
  while (c.clock.seconds() < c.o.timeout && !StopSignals::received()) {
    auto e = next_event(c, c.o.timeout - c.clock.seconds());
    if (!e) continue;
    if (e->json && e->json->value("event", "") == "scheduler") {
      c.cluster.scheduler_address = e->json->value("address", "");
      if (c.probe.bokeh) c.cluster.dashboard_port = e->json->value("http_port", 0u);
      break;
    }
    if (e->source == Source::scheduler && !e->json) break;
    handle(c, *e);
    // The workers, started beside the scheduler, may fail first: that is the error to show.
    if (!c.failure.empty() && e->source == Source::workers) throw Error(c.failure);
    if (!c.failure.empty()) break;
  }
  if (c.cluster.scheduler_address.empty()) {
    if (StopSignals::received())
      throw Error(fmt::format("stopped by signal {} while starting", StopSignals::received()));
    std::string log;
    try {
      const std::string text = util::read_file(c.files->log("scheduler"));  // the views' owner
      auto lines = util::split_lines(text);
      for (auto it = lines.rbegin(); it != lines.rend() && log.empty(); ++it)
        if (!util::trim(*it).empty()) log = std::string(util::trim(*it));
    } catch (const Error&) {
    }
    throw Error(fmt::format("{}: the scheduler did not start{}{} (its log: {})", c.head,
                            c.failure.empty() ? "" : ": " + c.failure,
                            log.empty() ? "" : ": " + log, c.files->log("scheduler")));
  }
  Json file = {{"type", "Scheduler"},
               {"address", c.cluster.scheduler_address},
               {"services", Json::object()},
               {"ferry", {{"id", c.id}, {"head", c.head}}}};
  if (c.cluster.dashboard_port) file["services"]["dashboard"] = c.cluster.dashboard_port;
  util::AtomicFileSet set;
  set.add(c.files->scheduler_file(), file.dump(2) + "\n", 0600);
  set.commit();
  c.port_lock.reset();  // the ports are the scheduler's now
}

// One `ferry dask-node` per node through the job's launcher, and every worker joined.
// Every worker joined (and JupyterLab answering, when asked for).
void start_workers(Coordinator& c) {
  if (!c.workers) spawn_workers(c, c.cluster.scheduler_address);
  while (!c.ready() && c.failure.empty() && !StopSignals::received()) {
    double left = c.o.timeout - c.clock.seconds();
    if (left <= 0) break;
    if (auto e = next_event(c, left)) handle(c, *e);
  }
  if (StopSignals::received())
    throw Error(fmt::format("stopped by signal {} while starting", StopSignals::received()));
  if (!c.failure.empty()) throw Error(c.failure);
  if (!c.ready()) {
    std::vector<std::string> missing;
    if (c.all_joined())
      throw Error(
          fmt::format("--timeout {:g}: JupyterLab on {} did not answer in time (its log: {})",
                      c.o.timeout, c.head, c.files->log("jupyter")));
    for (const auto& h : c.site.allocation.hosts) {
      std::string host = util::short_host_name(h);
      auto it = c.started.find(host);
      if (it == c.started.end())
        missing.push_back(host + " (its node never reported)");
      else if (c.joined_on(host) < it->second.workers)
        missing.push_back(
            fmt::format("{} ({} of {} joined)", host, c.joined_on(host), it->second.workers));
    }
    throw Error(fmt::format("--timeout {:g}: workers did not join in time from {} (logs: {})",
                            c.o.timeout, util::join(missing, ", "), c.files->log_dir()));
  }
}

// The start line's facts: counts, addresses, the tunnel, how to connect.
void describe(Coordinator& c) {
  DaskCluster& d = c.cluster;
  d.id = c.id;
  d.dir = c.files->dir();
  d.scheduler_file = c.files->scheduler_file();
  d.head = c.head;
  d.distributed_version = c.probe.distributed;
  d.tls = !c.o.insecure;
  d.scheduler_port = c.port;
  for (const auto& h : c.site.allocation.hosts) {
    const DaskNodeReport& r = c.started.at(util::short_host_name(h));
    d.nodes.push_back(r);
    d.workers += r.workers;
    d.threads += r.workers * r.threads;
    d.memory += r.workers * r.memory_limit;
  }
  if (d.dashboard_port) d.dashboard = fmt::format("http://127.0.0.1:{}/status", d.dashboard_port);
  // Both listen on the head's loopback: one ssh line forwards them, to the head by a name the
  // login host can reach (Slurm's NodeAddr where its name does not resolve).
  if (d.dashboard_port || d.jupyter_port)
    d.tunnel = tunnel_line({d.dashboard_port, d.jupyter_port}, c.o.login, c.head,
                           c.scheduler_local ? c.head : c.listen, c.site.env);
  if (d.jupyter_port)
    d.jupyter = fmt::format("http://127.0.0.1:{}/{}?token={}", d.jupyter_port,
                            c.probe.jupyterlab ? "lab" : "tree", c.jupyter_token);
  if (d.tls)
    d.connect = fmt::format(
        "from distributed import Client, Security; client = Client(scheduler_file=\"{}\", "
        "security=Security(tls_ca_file=\"{}\", tls_client_cert=\"{}\", tls_client_key=\"{}\", "
        "require_encryption=True))",
        d.scheduler_file, c.files->ca(), c.files->credentials(), c.files->credentials());
  else
    d.connect = fmt::format(
        "from distributed import Client; client = Client(scheduler_file=\"{}\")", d.scheduler_file);
  d.seconds = c.clock.seconds();
}

// The client command beside the cluster, or nothing; then wait for it, a stop signal, or the
// cluster failing under it.
void serve(Coordinator& c) {
  if (!c.o.command.empty()) {
    job::Environ env = c.marked(
        client_environ(*c.files, c.cluster.scheduler_address, !c.o.insecure, c.py.environ));
    c.client = util::spawn_child(c.o.command, job::environ_lines(env));
  }
  while (c.failure.empty() && !StopSignals::received()) {
    if (c.client > 0) {
      int status = 0;
      if (::waitpid(c.client, &status, WNOHANG) == c.client) {
        c.client_status = util::exit_status(status);
        c.client = -1;
        return;
      }
    }
    if (auto e = next_event(c, 0.1)) handle(c, *e);
  }
}

// Stops a step (srun passes SIGTERM to its tasks, which stop their Dask processes).
void stop_step(std::unique_ptr<util::Subprocess>& step, double seconds) {
  if (!step) return;
  step->stop_group(seconds);
  step.reset();
}

// Everything down: the client, the workers, the scheduler; then every node (and this host)
// checked for a process of the cluster, which is killed and named.
void tear_down(Coordinator& c, DaskOutcome& out) {
  util::Stopwatch clock;
  c.tearing_down = true;
  if (c.client > 0) {
    ::kill(c.client, SIGTERM);
    int status = 0;
    for (int i = 0; i < 30 && ::waitpid(c.client, &status, WNOHANG) == 0; ++i) ::usleep(100000);
    if (::waitpid(c.client, &status, WNOHANG) == 0) {
      ::kill(c.client, SIGKILL);
      ::waitpid(c.client, &status, 0);
    }
    c.client_status = util::exit_status(status);
    c.client = -1;
  }
  // "stop" to the scheduler closes it and makes it tell every worker to close; each node's
  // dask-node ends once its workers have. A step that has not ended in a few seconds is stopped
  // by signal (srun then cancels it, which kills its tasks).
  if (c.scheduler) c.scheduler->write("stop\n");
  if (c.workers && c.workers->wait_for(6)) c.workers.reset();
  if (c.scheduler && c.scheduler->wait_for(4)) c.scheduler.reset();
  stop_step(c.workers, 8);
  stop_step(c.scheduler, 8);
  if (!c.files) return;
  out.leftovers =
      run_checks(c.node_step(c.node_options(DaskRole::check),
                             static_cast<unsigned>(c.site.allocation.hosts.size()), false),
                 c.node_step(c.node_options(DaskRole::check), 1, true), c.site.allocation);
  out.teardown_seconds = clock.seconds();
  // The key goes with the cluster; the logs stay when something went wrong.
  for (const std::string& f : {c.files->credentials(), c.files->ca(), c.files->scheduler_file()})
    ::unlink(f.c_str());
  if (c.failure.empty() && out.leftovers.empty())
    util::remove_tree(c.files->dir());
  else
    mark_cluster_ended(c.files->dir());
}

}  // namespace

job::Environ client_environ(const DaskFiles& files, const std::string& address, bool tls,
                            job::Environ env) {
  env["DASK_SCHEDULER_ADDRESS"] = address;
  env["FERRY_DASK_DIR"] = files.dir();
  if (tls) {
    env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] = "True";
    env["DASK_DISTRIBUTED__COMM__TLS__CA_FILE"] = files.ca();
    env["DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT"] = files.credentials();
    env["DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY"] = files.credentials();
  }
  return env;
}

DaskOutcome run_dask(const DaskOptions& options, const job::Site& site, const DaskHooks& hooks) {
  Coordinator c{options, site, hooks};
  // Installed first, so that the coordinator's own handlers below take their place for its
  // lifetime (a signal must tear the cluster down, not end ferry under it).
  util::remove_temps_on_signal();
  StopSignals signals;
  // The shell or salloc that started ferry ending (a lost login session, salloc killed) is a
  // stop request too: the cluster must not outlive them.
  stop_with_parent();
  DaskOutcome out;
  try {
    check_allocation(c);  // a job, an env with distributed, where the scheduler goes
    make_cluster_dir(c);  // ports, the private directory, its key and scripts
    start_scheduler(c);   // the scheduler listening, the scheduler file
    start_workers(c);     // one dask-node per node, every worker joined
    // Now the dashboard: its import would have slowed the scheduler's start by a second.
    if (c.cluster.dashboard_port) c.scheduler->write("dashboard\n");
    describe(c);  // the start line
  } catch (...) {
    tear_down(c, out);
    throw;
  }
  if (hooks.ready) hooks.ready(c.cluster);
  serve(c);  // the client, or hold until told to stop
  tear_down(c, out);
  if (!c.failure.empty() && hooks.note) hooks.note(c.failure);
  out.exit_status =
      coordinator_status(!c.failure.empty(), c.client_status, !options.command.empty());
  return out;
}

std::string find_dask_cluster(const std::string& dir, const job::Environ& env) {
  return find_cluster_dir(dir, env, "dask-", "dask");
}

DaskStatus dask_status(const std::string& dir) {
  DaskFiles files(dir);
  Json state = Json::parse(util::read_file(files.state()));
  Json scheduler = Json::parse(util::read_file(files.scheduler_file()));
  PythonEnv py = find_python(state.value("env", ""), job::current_environ());
  std::string address = scheduler.value("address", "");
  job::Environ env = client_environ(files, address, state.value("tls", true), py.environ);
  std::vector<std::string> vars = job::environ_lines(env);
  util::CommandOutput r = util::run_command({py.python, files.status_script()}, 60, &vars);
  if (r.status != 0)
    throw Error(fmt::format("{}: cannot reach the cluster: {}", address, r.last_error_line()));
  Json j = Json::parse(r.out);
  DaskStatus s;
  s.dir = dir;
  s.scheduler_address = address;
  for (const Json& w : j["workers"]) {
    DaskWorkerStatus ws;
    ws.name = w.value("name", "");
    ws.address = w.value("address", "");
    ws.host = w.value("host", "");
    ws.nthreads = w.value("nthreads", 0u);
    ws.processing = w.value("processing", 0u);
    ws.in_memory = w.value("in_memory", 0u);
    ws.memory_limit = w.value("memory_limit", std::uint64_t{0});
    ws.memory = w.value("memory", std::uint64_t{0});
    s.workers.push_back(ws);
  }
  std::sort(s.workers.begin(), s.workers.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return s;
}

bool stop_dask(const std::string& dir, double seconds) {
  return stop_cluster(dir, "dask", seconds);
}

}  // namespace ferry::runtime
