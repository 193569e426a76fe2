// The Ray verbs: ray (with status and stop), and ray-node, which the coordinator starts on the
// nodes. Each parses and calls the runtime library.
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "runtime/runtime.hpp"

namespace ferry::cli {
namespace {

void print_ready(const runtime::RayCluster& d, bool json) {
  if (json) {
    print_json(d);
    return;
  }
  std::fprintf(stderr,
               "ferry: ray: %zu nodes, %u CPUs, %u GPUs, ready in %.1f s: %s (%s, ray %s)\n",
               d.nodes.size(), d.cpus, d.gpus, d.seconds, d.address.c_str(),
               d.token ? "token authentication" : "no authentication", d.ray_version.c_str());
  if (!d.dashboard.empty())
    std::fprintf(stderr, "ferry: ray: dashboard %s on %s; from your machine: %s\n",
                 d.dashboard.c_str(), d.head.c_str(), d.tunnel.c_str());
  std::fprintf(
      stderr, "ferry: ray: connect on %s with: RAY_ADDRESS=%s%s python driver.py (ray.init())\n",
      d.head.c_str(), d.address.c_str(),
      d.token ? fmt::format(" RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH={}/token", d.dir).c_str()
              : "");
}

void add_ray_status(CLI::App* ray) {
  auto dir = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd =
      ray->add_subcommand("status", "The nodes of a running cluster, as its GCS has them");
  cmd->add_option("DIR", *dir, "The cluster's directory (default: this job's running cluster)");
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->callback([=] {
    runtime::RayStatus s =
        runtime::ray_status(runtime::find_ray_cluster(*dir, job::current_environ()));
    if (*json) {
      print_json(s);
      return;
    }
    std::printf("%s: %zu nodes\n", s.address.c_str(), s.nodes.size());
    std::printf("%-20s %-16s %-6s %6s %6s\n", "host", "address", "state", "CPUs", "GPUs");
    for (const auto& n : s.nodes)
      std::printf("%-20s %-16s %-6s %6g %6g\n", n.host.c_str(), n.address.c_str(),
                  n.alive ? "alive" : "dead", n.cpus, n.gpus);
  });
}

void add_ray_stop(CLI::App* ray, int& exit_status) {
  auto dir = std::make_shared<std::string>();
  CLI::App* cmd = ray->add_subcommand("stop", "Tear a running cluster down");
  cmd->add_option("DIR", *dir, "The cluster's directory (default: this job's running cluster)");
  cmd->callback([=, &exit_status] {
    std::string d = runtime::find_ray_cluster(*dir, job::current_environ());
    if (!runtime::stop_ray(d, 60)) {
      std::fprintf(stderr, "ferry: error: %s: its coordinator is still running after 60 s\n",
                   d.c_str());
      exit_status = 1;
    }
  });
}

}  // namespace

void add_ray(CLI::App& app, int& exit_status) {
  auto o = std::make_shared<runtime::RayOptions>();
  auto site = std::make_shared<job::SiteOptions>();
  auto json = std::make_shared<bool>(false);
  auto ports = std::make_shared<std::string>();
  auto no_dashboard = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "ray",
      "A Ray cluster on every node of this job, with token authentication: run COMMAND as its "
      "driver, or hold it until stopped");
  cmd->add_option("--env", o->env_dir, "The env whose ray runs (default: the active one)");
  cmd->add_option(
      "--interface", o->interface,
      "The nodes' addresses on this interface (default: the one that reaches the head)");
  cmd->add_option("--temp-dir", o->temp_dir,
                  "Base of Ray's directory on each node (default: $TMPDIR, else /tmp)");
  cmd->add_option("--timeout", o->timeout, "Seconds for every node to join (default 180)");
  cmd->add_flag("--no-dashboard", *no_dashboard, "No Ray dashboard on the head");
  cmd->add_flag("--insecure", o->insecure,
                "No token: anyone who reaches the cluster's ports can run code as you");
  cmd->add_option("--ports", *ports, "Port range to choose from (default 20000-31999)");
  cmd->add_option("--login", o->login,
                  "The host the printed tunnel goes through (default: the job's submit host)");
  cmd->add_flag("--json", *json, "Print the start line as JSON (on stdout)");
  add_site_options(cmd, *site);
  cmd->add_option("COMMAND", o->command, "The driver to run on the head (after --)");
  add_ray_status(cmd);
  add_ray_stop(cmd, exit_status);
  cmd->callback([=, &exit_status] {
    if (cmd->get_subcommands().size() > 0) return;  // status or stop ran
    runtime::RayOptions options = *o;
    options.ferry = util::self_executable();
    options.dashboard = !*no_dashboard;
    options.sysfs_root = site->sysfs_root;
    if (!ports->empty())
      std::tie(options.port_low, options.port_high) = runtime::parse_port_range(*ports);
    if (options.insecure)
      std::fprintf(stderr,
                   "ferry: ray: --insecure: no token; anyone who can reach the cluster's ports "
                   "can run code as you\n");
    enter_job(site->job);
    job::Site s = job::discover_site(*site);
    runtime::RayHooks hooks;
    hooks.ready = [json](const runtime::RayCluster& d) {
      print_ready(d, *json);
      std::fflush(stdout);
    };
    hooks.note = [](const std::string& line) {
      std::fprintf(stderr, "ferry: ray: %s\n", line.c_str());
    };
    runtime::RayOutcome out = runtime::run_ray(options, s, hooks);
    for (const auto& l : out.leftovers)
      std::fprintf(stderr, "ferry: ray: had to kill a leftover process on %s\n", l.c_str());
    std::fprintf(stderr, "ferry: ray: stopped in %.1f s%s\n", out.teardown_seconds,
                 out.leftovers.empty() ? ", no process left on any node" : "");
    exit_status = out.exit_status;
  });

  CLI::App* node = app.add_subcommand("ray-node", "(internal) a Ray cluster's part on one node");
  node->group("");
  node->prefix_command();
  node->callback([node, &exit_status] {
    runtime::RayNodeOptions options = runtime::decode_ray_node_options(node->remaining());
    exit_status = runtime::ray_node(options, job::current_environ());
  });
}

}  // namespace ferry::cli
