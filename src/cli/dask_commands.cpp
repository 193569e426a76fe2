// The Dask verbs: dask (with status and stop), and dask-node, which the coordinator starts on the
// nodes. Each parses and calls the runtime library.
#include <cstdio>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "runtime/runtime.hpp"

namespace ferry::cli {
namespace {

using Json = nlohmann::ordered_json;

std::string gigabytes(std::uint64_t bytes) {
  return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (1024.0 * 1024 * 1024));
}

void print_ready(const runtime::DaskCluster& d, bool json) {
  if (json) {
    print_json(d);
    return;
  }
  std::fprintf(stderr,
               "ferry: dask: %u workers on %zu nodes, %u threads, %s, ready in %.1f s: %s (%s, "
               "distributed %s)\n",
               d.workers, d.nodes.size(), d.threads, gigabytes(d.memory).c_str(), d.seconds,
               d.scheduler_address.c_str(), d.tls ? "TLS" : "no TLS",
               d.distributed_version.c_str());
  if (!d.dashboard.empty())
    std::fprintf(stderr, "ferry: dask: dashboard %s on %s; from your machine: %s\n",
                 d.dashboard.c_str(), d.head.c_str(), d.tunnel.c_str());
  else
    std::fprintf(stderr, "ferry: dask: no dashboard (bokeh is not in the env)\n");
  if (!d.jupyter.empty())
    std::fprintf(stderr, "ferry: dask: JupyterLab %s (through the same tunnel)\n",
                 d.jupyter.c_str());
  if (d.dashboard.empty() && !d.tunnel.empty())
    std::fprintf(stderr, "ferry: dask: from your machine: %s\n", d.tunnel.c_str());
  std::fprintf(stderr, "ferry: dask: connect with: %s\n", d.connect.c_str());
}

void add_dask_status(CLI::App* dask) {
  auto dir = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = dask->add_subcommand("status", "Workers per node, memory and tasks of a cluster");
  cmd->add_option("DIR", *dir, "The cluster's directory (default: this job's running cluster)");
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->callback([=] {
    runtime::DaskStatus s =
        runtime::dask_status(runtime::find_dask_cluster(*dir, job::current_environ()));
    if (*json) {
      print_json(s);
      return;
    }
    std::printf("%s: %zu workers\n", s.scheduler_address.c_str(), s.workers.size());
    std::printf("%-20s %-16s %7s %10s %10s %10s %9s\n", "worker", "host", "threads", "memory",
                "limit", "running", "in memory");
    for (const auto& w : s.workers)
      std::printf("%-20s %-16s %7u %10s %10s %10u %9u\n", w.name.c_str(), w.host.c_str(),
                  w.nthreads, gigabytes(w.memory).c_str(), gigabytes(w.memory_limit).c_str(),
                  w.processing, w.in_memory);
  });
}

void add_dask_stop(CLI::App* dask, int& exit_status) {
  auto dir = std::make_shared<std::string>();
  CLI::App* cmd = dask->add_subcommand("stop", "Tear a running cluster down");
  cmd->add_option("DIR", *dir, "The cluster's directory (default: this job's running cluster)");
  cmd->callback([=, &exit_status] {
    std::string d = runtime::find_dask_cluster(*dir, job::current_environ());
    if (!runtime::stop_dask(d, 30)) {
      std::fprintf(stderr, "ferry: error: %s: its coordinator is still running after 30 s\n",
                   d.c_str());
      exit_status = 1;
    }
  });
}

}  // namespace

void add_dask(CLI::App& app, int& exit_status) {
  auto o = std::make_shared<runtime::DaskOptions>();
  auto site = std::make_shared<job::SiteOptions>();
  auto json = std::make_shared<bool>(false);
  auto ports = std::make_shared<std::string>();
  auto scheduler_on = std::make_shared<std::string>("first");
  CLI::App* cmd = app.add_subcommand(
      "dask",
      "A secured Dask cluster on every node of this job: run COMMAND as its client, or hold it "
      "until stopped");
  cmd->add_option("--env", o->env_dir, "The env whose Python runs Dask (default: the active one)");
  cmd->add_option("--workers-per-node", o->workers_per_node, "Workers on each node (default 1)");
  cmd->add_option("--threads-per-worker", o->threads_per_worker,
                  "Threads per worker (default: the node's CPUs shared among its workers)");
  cmd->add_flag("--per-gpu", o->per_gpu, "One worker per visible GPU, each seeing only its own");
  one_of(cmd->add_option("--scheduler-on", *scheduler_on,
                         "first: the job's first host (default); here: where ferry runs"),
         {"first", "here"});
  cmd->add_option("--interface", o->interface,
                  "Listen on this interface (default: the one that reaches the other nodes)");
  cmd->add_option("--local-directory", o->local_directory,
                  "The workers' directory on each node (default: $TMPDIR, else /tmp)");
  cmd->add_option("--timeout", o->timeout, "Seconds for every worker to join (default 120)");
  cmd->add_flag("--jupyter", o->jupyter,
                "JupyterLab (else Notebook) on the head node's loopback, with a token");
  cmd->add_flag("--insecure", o->insecure,
                "No TLS: anyone who reaches the scheduler's port can run code as you");
  cmd->add_option("--ports", *ports, "Port range to choose from (default 12000-19999)");
  cmd->add_option("--login", o->login,
                  "The host the printed tunnel goes through (default: the job's submit host)");
  cmd->add_flag("--json", *json, "Print the start line as JSON (on stdout)");
  add_site_options(cmd, *site);
  cmd->add_option("COMMAND", o->command, "The client to run (after --)");
  add_dask_status(cmd);
  add_dask_stop(cmd, exit_status);
  cmd->callback([=, &exit_status] {
    if (cmd->get_subcommands().size() > 0) return;  // status or stop ran
    runtime::DaskOptions options = *o;
    options.ferry = util::self_executable();
    options.scheduler_here = *scheduler_on == "here";
    options.sysfs_root = site->sysfs_root;
    if (!ports->empty())
      std::tie(options.port_low, options.port_high) = runtime::parse_port_range(*ports);
    if (options.insecure)
      std::fprintf(stderr,
                   "ferry: dask: --insecure: no TLS; anyone who can reach the scheduler's port "
                   "can run code as you\n");
    enter_job(site->job);
    job::Site s = job::discover_site(*site);
    runtime::DaskHooks hooks;
    hooks.ready = [json](const runtime::DaskCluster& d) {
      print_ready(d, *json);
      std::fflush(stdout);
    };
    hooks.note = [](const std::string& line) {
      std::fprintf(stderr, "ferry: dask: %s\n", line.c_str());
    };
    runtime::DaskOutcome out = runtime::run_dask(options, s, hooks);
    for (const auto& l : out.leftovers)
      std::fprintf(stderr, "ferry: dask: had to kill a leftover process on %s\n", l.c_str());
    std::fprintf(stderr, "ferry: dask: stopped in %.1f s%s\n", out.teardown_seconds,
                 out.leftovers.empty() ? ", no process left on any node" : "");
    exit_status = out.exit_status;
  });

  CLI::App* node = app.add_subcommand("dask-node", "(internal) a Dask cluster's part on one node");
  node->group("");         // hidden: ferry dask starts it
  node->prefix_command();  // every word to remaining()
  node->callback([node, &exit_status] {
    runtime::DaskNodeOptions options = runtime::decode_dask_node_options(node->remaining());
    exit_status = runtime::dask_node(options, job::current_environ());
  });
}

}  // namespace ferry::cli
