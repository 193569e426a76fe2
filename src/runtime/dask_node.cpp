// ferry dask-node: a cluster's part on one node. The scheduler role runs the scheduler and passes
// its events on; the workers role starts this node's workers (their GPUs, threads, memory and
// directory worked out here, where the node's own facts are) and watches them; the check role
// finds and kills whatever of a cluster is left. Each says what happened in JSON lines on stdout.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runtime/dask_files.hpp"
#include "runtime/runtime.hpp"
#include "runtime/service.hpp"

namespace ferry::runtime {
namespace {

// The host part of "tls://10.0.0.1:8786" (or "[::1]").
std::string address_host(const std::string& address) {
  std::string rest =
      address.substr(address.find("://") == std::string::npos ? 0 : address.find("://") + 3);
  if (!rest.empty() && rest.front() == '[') return rest.substr(1, rest.find(']') - 1);
  return rest.substr(0, rest.rfind(':'));
}

// Stops children: SIGTERM, up to `seconds` for them to end, then SIGKILL.
void stop_all(std::vector<std::unique_ptr<util::Subprocess>>& children, double seconds) {
  for (auto& c : children) c->kill(SIGTERM);
  util::Stopwatch clock;
  for (auto& c : children)
    if (!c->wait_for(std::max(0.0, seconds - clock.seconds()))) {
      c->kill(SIGKILL);
      c->wait();
    }
}

std::vector<std::string> tls_arguments(const DaskNodeOptions& o) {
  if (!o.tls) return {};
  DaskFiles files(o.dir);
  return {"--tls-ca-file",     files.ca(),  "--tls-cert",
          files.credentials(), "--tls-key", files.credentials()};
}

// JupyterLab (or Notebook) on this host's loopback, with the token from the cluster's directory
// (in its environment, never on a command line others can read) and the client configuration,
// so that a notebook's Client() reaches the cluster.
std::unique_ptr<util::Subprocess> start_notebook(const DaskNodeOptions& o, const PythonEnv& py,
                                                 const DaskFiles& files,
                                                 const std::string& scheduler_event) {
  auto event = nlohmann::json::parse(scheduler_event);
  job::Environ e = client_environ(files, event.value("address", ""), o.tls, py.environ);
  e["FERRY_DASK_CLUSTER"] = o.cluster;
  e["JUPYTER_TOKEN"] = std::string(util::trim(util::read_file(files.jupyter_token())));
  std::vector<std::string> argv = {py.python,
                                   "-m",
                                   o.notebook,
                                   "--no-browser",
                                   "--ServerApp.ip=127.0.0.1",
                                   fmt::format("--ServerApp.port={}", o.notebook_port),
                                   "--ServerApp.port_retries=0"};
  if (::geteuid() == 0) argv.push_back("--allow-root");  // it refuses root otherwise
  std::vector<std::string> vars = job::environ_lines(e);
  util::SubprocessOptions so;
  so.env = &vars;
  so.log_path = files.log("jupyter");
  so.log_stdout = true;
  return std::make_unique<util::Subprocess>(argv, so);
}

int run_scheduler(const DaskNodeOptions& o, const job::Environ& env) {
  PythonEnv py = find_python(o.env_prefix, env);
  DaskFiles files(o.dir);
  py.environ["FERRY_DASK_CLUSTER"] = o.cluster;
  std::vector<std::string> argv = {
      py.python,      "-m",     "distributed.cli.dask_scheduler", "--host",
      o.scheduler,    "--port", std::to_string(o.port),           "--preload",
      files.preload()};
  // Its HTTP server on loopback (never Dask's default, every interface), the dashboard attached
  // later, when the coordinator asks (see dask_preload.py).
  argv.insert(argv.end(), {"--no-dashboard", "--dashboard-address",
                           fmt::format("127.0.0.1:{}", o.dashboard_port)});
  if (o.tls) {
    argv.insert(argv.end(), {"--protocol", "tls"});
    for (auto& w : tls_arguments(o)) argv.push_back(std::move(w));
  }
  std::vector<std::string> vars = job::environ_lines(py.environ);
  util::SubprocessOptions so;
  so.env = &vars;
  so.log_path = files.log("scheduler");
  so.inherit_stdin = true;  // the coordinator's "stop" reaches the preload
  util::Subprocess scheduler(argv, so);
  StopSignals signals;  // a stop only sets a flag: the loops below end the children
  // The preload's events go on to the coordinator as they come; a stop request ends the
  // scheduler (SIGTERM: it closes cleanly), and SIGKILL follows if it has not ended in 4 s.
  util::Stopwatch since_stop;
  bool stopping = false;
  std::unique_ptr<util::Subprocess> notebook;
  bool notebook_announced = false;
  while (true) {
    auto line = scheduler.read_line(0.2);
    if (line) {
      std::printf("%s\n", line->c_str());
      std::fflush(stdout);
      // JupyterLab starts once the scheduler listens: its notebooks' Client() connects at once.
      if (o.notebook_port && !notebook &&
          line->find("\"event\": \"scheduler\"") != std::string::npos)
        notebook = start_notebook(o, py, files, *line);
      continue;
    }
    if (!scheduler.timed_out()) break;  // EOF: the scheduler is gone
    if (notebook && !notebook_announced && !stopping) {
      if (auto status = notebook->wait_for(0)) {
        say_event({{"host", this_host()},
                   {"event", "failed"},
                   {"error", fmt::format("JupyterLab ended (exit status {}); its log: {}", *status,
                                         files.log("jupyter"))}});
        notebook.reset();
      } else if (!port_is_free("127.0.0.1", o.notebook_port)) {
        say_event({{"host", this_host()}, {"event", "jupyter"}, {"port", o.notebook_port}});
        notebook_announced = true;
      }
    }
    if (StopSignals::received() && !stopping) {
      stopping = true;
      since_stop = util::Stopwatch();
      scheduler.kill(SIGTERM);
    }
    if (stopping && since_stop.seconds() > 4) scheduler.kill(SIGKILL);
  }
  if (notebook) {
    std::vector<std::unique_ptr<util::Subprocess>> rest;
    rest.push_back(std::move(notebook));
    stop_all(rest, 3);
  }
  int status = scheduler.wait();
  if (status == 0) return 0;  // closed as asked
  if (!stopping)
    say_event({{"host", this_host()},
               {"event", "failed"},
               {"error", fmt::format("the scheduler ended (exit status {}); its log: {}", status,
                                     files.log("scheduler"))}});
  return stopping ? 0 : 1;
}

// The workers' directory: the one asked for, else the first writable of $TMPDIR and /tmp (a
// ferry-dask-<cluster> directory of ours inside). Empty when none can be written.
std::string local_directory(const DaskNodeOptions& o, const job::Environ& env) {
  std::vector<std::string> candidates;
  if (!o.local_directory.empty()) {
    candidates.push_back(o.local_directory);
  } else {
    if (auto t = job::lookup(env, "TMPDIR"); t && !t->empty()) candidates.push_back(*t);
    candidates.push_back("/tmp");
  }
  for (const auto& base : candidates) {
    // The directory asked for is made when missing (mkdir -p: /mnt/bb/$USER/dask is new in
    // each job); the defaults must exist.
    if (base == o.local_directory) {
      for (std::size_t at = base.find('/', 1); at != std::string::npos; at = base.find('/', at + 1))
        ::mkdir(base.substr(0, at).c_str(), 0700);
      ::mkdir(base.c_str(), 0700);
    }
    std::string dir = fmt::format("{}/ferry-dask-{}", base, o.cluster);
    if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) {
      struct stat st {};
      if (::lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == ::getuid() &&
          ::access(dir.c_str(), W_OK) == 0)
        return dir;
    }
  }
  return {};
}

// The workers' node-local directory goes with them (spill files, locks).
void remove_local(const DaskNodeReport& report) {
  if (!report.spilling) return;  // on shared storage: the coordinator's to keep or remove
  try {
    util::remove_tree(report.local_directory);
  } catch (const Error&) {
  }
}

int run_workers(const DaskNodeOptions& o, const job::Environ& env) {
  const std::string host = this_host();
  auto fail = [&](const std::string& error) {
    say_event({{"host", host}, {"event", "failed"}, {"error", error}});
    return 1;
  };
  try {
    PythonEnv py = find_python(o.env_prefix, env);
    DaskFiles files(o.dir);
    DaskNodeReport report;
    report.host = host;
    std::vector<std::string> gpu_selectors;
    std::string visibility;
    if (o.per_gpu) {
      job::DiscoverOptions d;
      d.sysfs_root = o.sysfs_root;
      job::GpuInventory gpus = job::discover_gpus(env, d);
      if (gpus.visible.empty()) return fail("--per-gpu: this node has no GPU the job can use");
      for (const auto& g : gpus.visible) gpu_selectors.push_back(g.selector);
      visibility = gpus.visibility_variable;
      report.gpus = gpu_selectors;
    }
    report.workers = o.per_gpu ? static_cast<unsigned>(gpu_selectors.size()) : o.workers;
    const unsigned cpus_per_worker = std::max(1u, granted_cpus(env) / report.workers);
    report.threads = o.threads ? o.threads : cpus_per_worker;
    std::string meminfo;
    try {
      meminfo = util::read_file("/proc/meminfo");
    } catch (const Error&) {
    }
    report.memory_limit = worker_memory_limit(env, meminfo, report.workers);
    report.local_directory = local_directory(o, env);
    if (report.local_directory.empty()) {
      if (!o.local_directory.empty())
        return fail(fmt::format("--local-directory {}: cannot write there", o.local_directory));
      // The seed's rule: with no node-local directory, workers keep to memory, on shared
      // storage only what Dask must write.
      report.spilling = false;
      report.local_directory = files.log_dir();
      py.environ["DASK_DISTRIBUTED__WORKER__MEMORY__TARGET"] = "False";
      py.environ["DASK_DISTRIBUTED__WORKER__MEMORY__SPILL"] = "False";
      py.environ["DASK_DISTRIBUTED__WORKER__MEMORY__PAUSE"] = "0.80";
    }
    std::string listen = !o.interface.empty()
                             ? job::interface_address(o.interface)
                             : job::route_towards(address_host(o.scheduler)).address;
    py.environ["FERRY_DASK_CLUSTER"] = o.cluster;
    std::vector<std::unique_ptr<util::Subprocess>> workers;
    std::vector<std::string> names;
    for (unsigned i = 0; i < report.workers; ++i) {
      std::string name = fmt::format("{}-{}", host, i);
      // No nanny: this process watches the workers (a nanny would restart a killed one behind
      // the coordinator's back, and forks that some MPI stacks kill).
      std::vector<std::string> argv = {py.python,
                                       "-m",
                                       "distributed.cli.dask_worker",
                                       o.scheduler,
                                       "--name",
                                       name,
                                       "--nthreads",
                                       std::to_string(report.threads),
                                       "--memory-limit",
                                       std::to_string(report.memory_limit),
                                       "--local-directory",
                                       report.local_directory,
                                       "--no-nanny",
                                       "--no-dashboard",
                                       "--death-timeout",
                                       "60"};
      if (!listen.empty() && listen != "127.0.0.1" && listen != "::1")
        argv.insert(argv.end(), {"--host", listen});
      for (auto& w : tls_arguments(o)) argv.push_back(std::move(w));
      job::Environ e = py.environ;
      // Each task thread's NumPy or PyTorch gets its share of the worker's CPUs, not the node's
      // (no nanny here to set Dask's OMP_NUM_THREADS=1); a user's own setting is kept.
      for (auto& [k, v] :
           job::thread_environment(std::max(1u, cpus_per_worker / report.threads), false, e))
        e[k] = v;
      if (o.per_gpu) {
        argv.insert(argv.end(), {"--resources", "GPU=1"});
        e[visibility] = gpu_selectors[i];
        if (visibility == "CUDA_VISIBLE_DEVICES") e["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID";
      }
      std::vector<std::string> vars = job::environ_lines(e);
      util::SubprocessOptions so;
      so.env = &vars;
      so.log_path = files.log(name);
      so.log_stdout = true;
      workers.push_back(std::make_unique<util::Subprocess>(argv, so));
      names.push_back(name);
    }
    StopSignals signals;  // a stop only sets a flag: the loops below end the children
    Json started = report;
    started["event"] = "started";
    say_event(started);
    // Until told to stop, or until a worker ends by itself: that one is reported by name, and
    // the others are stopped (the coordinator tears the cluster down).
    while (!StopSignals::received() && !workers.empty()) {
      for (std::size_t i = 0; i < workers.size(); ++i) {
        auto status = workers[i]->wait_for(0);
        if (!status) continue;
        if (*status == 0) {  // closed by the scheduler: the cluster is ending
          workers.erase(workers.begin() + static_cast<std::ptrdiff_t>(i));
          names.erase(names.begin() + static_cast<std::ptrdiff_t>(i));
          break;
        }
        std::string error = fmt::format("worker {} ended (exit status {}); its log: {}", names[i],
                                        *status, files.log(names[i]));
        workers.erase(workers.begin() + static_cast<std::ptrdiff_t>(i));
        stop_all(workers, 4);
        say_event({{"host", host}, {"event", "lost"}, {"error", error}});
        remove_local(report);
        return 1;
      }
      ::usleep(100000);
    }
    stop_all(workers, 4);
    remove_local(report);
    return 0;
  } catch (const Error& e) {
    return fail(e.what());
  }
}

// What of the cluster runs here: every process of ours whose environment carries its id.
int run_check(const DaskNodeOptions& o) {
  say_event({{"host", this_host()},
             {"event", "checked"},
             {"leftovers", kill_marked("FERRY_DASK_CLUSTER=" + o.cluster)}});
  return 0;
}

}  // namespace

std::uint64_t worker_memory_limit(const job::Environ& env, std::string_view meminfo_text,
                                  unsigned workers) {
  constexpr std::uint64_t mib = 1024 * 1024;
  std::uint64_t total = 0;
  auto megabytes = [&](const char* name) -> std::optional<std::uint64_t> {
    auto v = job::lookup(env, name);
    if (!v) return std::nullopt;
    auto n = util::parse_decimal(*v, 1u << 30);
    if (!n || *n == 0) return std::nullopt;
    return *n;
  };
  if (auto node = megabytes("SLURM_MEM_PER_NODE")) {
    total = *node * mib;
  } else if (auto cpu = megabytes("SLURM_MEM_PER_CPU"); cpu && megabytes("SLURM_CPUS_ON_NODE")) {
    total = *cpu * *megabytes("SLURM_CPUS_ON_NODE") * mib;
  } else {
    for (std::string_view line : util::split_lines(meminfo_text)) {
      if (!line.starts_with("MemTotal:")) continue;
      std::string_view value = util::trim(line.substr(9));
      value = value.substr(0, value.find(' '));
      if (auto kb = util::parse_decimal(value, 4000000000u)) total = std::uint64_t{*kb} * 1024;
    }
  }
  return total / std::max(1u, workers);
}

int dask_node(const DaskNodeOptions& options, const job::Environ& env) {
  switch (options.role) {
    case DaskRole::scheduler: return run_scheduler(options, env);
    case DaskRole::workers: return run_workers(options, env);
    case DaskRole::check: return run_check(options);
  }
  return 2;
}

}  // namespace ferry::runtime
