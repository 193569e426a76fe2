// The job verbs: hostlist, job, launch, rank. Each parses and calls the job library.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "container/container.hpp"
#include "job/job.hpp"

namespace ferry::cli {
namespace {

using Json = nlohmann::ordered_json;

// Every host of every expression, in order.
std::vector<std::string> expand_all(const std::vector<std::string>& exprs) {
  std::vector<std::string> hosts;
  for (const auto& e : exprs)
    for (auto& h : job::expand_hostlist(e)) hosts.push_back(std::move(h));
  return hosts;
}

void add_hostlist(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("hostlist", "Expand or compress Slurm hostlist expressions");
  cmd->require_subcommand(1);
  auto exprs = std::make_shared<std::vector<std::string>>();
  auto json = std::make_shared<bool>(false);
  CLI::App* expand =
      cmd->add_subcommand("expand", "One host per line, in order, as scontrol show hostnames");
  expand->add_option("EXPR", *exprs, "Hostlist expressions")->required();
  expand->add_flag("--json", *json, "Print a JSON list");
  expand->callback([=] {
    std::vector<std::string> hosts = expand_all(*exprs);
    if (*json) {
      std::printf("%s\n", Json(hosts).dump().c_str());
    } else {
      for (const auto& h : hosts) std::printf("%s\n", h.c_str());
    }
  });
  CLI::App* compress =
      cmd->add_subcommand("compress", "One expression for the hosts given, order kept");
  compress->add_option("HOST", *exprs, "Hosts or hostlist expressions")->required();
  compress->add_flag("--json", *json, "Print a JSON string");
  compress->callback([=] {
    std::string expr = job::compress_hostlist(expand_all(*exprs));
    std::printf("%s\n", *json ? Json(expr).dump().c_str() : expr.c_str());
  });
}

// By hand, unlike the results' JSON forms: ferry job's JSON is a view of several job structs with
// values worked out for it (host counts and lists, CPU lists as text, names, the quoted line).
Json gpus_json(const job::GpuInventory& inv) {
  Json list = Json::array();
  for (const auto& g : inv.gpus)
    list.push_back({{"index", g.index},
                    {"vendor", job::vendor_name(g.vendor)},
                    {"model", g.model},
                    {"uuid", g.uuid},
                    {"pci", g.pci_address},
                    {"numa_node", g.numa_node},
                    {"local_cpus", job::format_cpu_list(g.local_cpus)},
                    {"tiles", g.tiles},
                    {"usable", g.usable}});
  Json visible = Json::array();
  for (const auto& d : inv.visible) visible.push_back(d.selector);
  return {{"count", inv.gpus.size()},
          {"visible", visible},
          {"visibility_variable", inv.visibility_variable},
          {"hierarchy", inv.hierarchy},
          {"devices", list},
          {"notes", inv.notes}};
}

// What each rank's OMP_NUM_THREADS will be, and why: the user's own, or the CPUs it gets.
struct ThreadsShown {
  std::string value;
  bool users = false;
};
std::optional<ThreadsShown> threads_shown(const job::Site& c, const job::LaunchPlan* plan) {
  if (auto own = job::lookup(c.env, "OMP_NUM_THREADS")) return ThreadsShown{*own, true};
  if (plan && plan->threads_per_rank)
    return ThreadsShown{std::to_string(plan->threads_per_rank), false};
  return std::nullopt;
}

Json site_json(const job::Site& c, const job::LaunchPlan* plan) {
  const auto& a = c.allocation;
  Json j = {
      {"scheduler", job::scheduler_name(a.scheduler)},
      {"job_id", a.job_id},
      {"hosts", a.hosts},
      {"nhosts", a.hosts.size()},
      {"hostlist", job::compress_hostlist(a.hosts)},
      {"hosts_source", a.source},
      {"slots_per_host", a.slots},
      {"cpus_per_host", a.cpus},
      {"gpus_per_host_from_scheduler", a.gpus_per_host ? Json(*a.gpus_per_host) : Json(nullptr)},
      {"this_host", c.hostname},
      {"cpus",
       {{"logical", c.cpus.logical},
        {"cores", c.cpus.cores},
        {"allowed", job::format_cpu_list(c.cpus.allowed)}}},
      {"gpus", gpus_json(c.gpus)},
      {"machine", c.machine->name},
      {"machine_description", c.machine->description},
      {"launcher", job::launcher_name(c.machine->launcher)}};
  if (plan) {
    j["launch"] = *plan;
    j["launch"]["line"] = util::command_line(plan->argv);
  }
  if (auto t = threads_shown(c, plan))
    j["threads_per_rank"] = {{"value", t->value},
                             {"from", t->users ? "OMP_NUM_THREADS" : "cpus per rank"}};
  return j;
}

// The default plan for `job` and `job save`: the command left as "$@"-style placeholder.
std::optional<job::LaunchPlan> default_plan(const job::Site& c, const std::string& hostfile) {
  job::LaunchRequest req;
  req.command = {"COMMAND"};
  req.ferry = util::self_executable();
  req.hostfile = hostfile;
  req.resolve_master = false;
  try {
    return job::plan_launch(c.allocation, *c.machine, c.gpus, c.cpus, req);
  } catch (const Error&) {
    return std::nullopt;
  }
}

void print_job(const job::Site& c, const job::LaunchPlan* plan) {
  const auto& a = c.allocation;
  std::printf("scheduler   %s%s\n", std::string(job::scheduler_name(a.scheduler)).c_str(),
              a.job_id.empty() ? "" : fmt::format(" (job {})", a.job_id).c_str());
  std::printf("hosts       %zu: %s\n", a.hosts.size(), job::compress_hostlist(a.hosts).c_str());
  std::printf("this host   %s: %u CPUs (%u cores), allowed %s\n", c.hostname.c_str(),
              c.cpus.logical, c.cpus.cores, job::format_cpu_list(c.cpus.allowed).c_str());
  std::printf("gpus        %zu found, %zu visible%s\n", c.gpus.gpus.size(), c.gpus.visible.size(),
              c.gpus.gpus.empty()
                  ? ""
                  : fmt::format(" ({})", job::vendor_name(c.gpus.gpus[0].vendor)).c_str());
  for (const auto& g : c.gpus.gpus)
    std::printf("  gpu %-3u %s numa %d cpus %s%s\n", g.index, g.pci_address.c_str(), g.numa_node,
                job::format_cpu_list(g.local_cpus).c_str(), g.usable ? "" : " (not usable)");
  std::printf("machine     %s: %s\n", c.machine->name.c_str(), c.machine->description.c_str());
  if (auto t = threads_shown(c, plan))
    std::printf("threads     %s per rank (%s)\n", t->value.c_str(),
                t->users ? "your OMP_NUM_THREADS, kept"
                         : "OMP_NUM_THREADS, MKL_NUM_THREADS, ... in each rank");
  if (plan) std::printf("launch      %s\n", util::command_line(plan->argv).c_str());
}

void add_job(CLI::App& app) {
  auto o = std::make_shared<job::SiteOptions>();
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "job", "What this allocation is: scheduler, hosts, CPUs, GPUs, machine, launch line");
  add_site_options(cmd, *o);
  cmd->add_flag("--json", *json, "Print as JSON");
  cmd->callback([=, &app] {
    (void)app;
    if (!cmd->get_subcommands().empty()) return;
    enter_job(o->job);
    job::Site c = job::discover_site(*o);
    auto plan = default_plan(c, job::job_hostfile(c.allocation, c.env));
    if (*json)
      std::printf("%s\n", site_json(c, plan ? &*plan : nullptr).dump(2).c_str());
    else
      print_job(c, plan ? &*plan : nullptr);
  });

  auto to = std::make_shared<std::string>();
  CLI::App* save = cmd->add_subcommand(
      "save", "Write this job's environment to a file a second shell can source");
  save->add_option("--to", *to,
                   "File to write (default: ~/.cache/ferry/jobs/<scheduler>-<id>/env.sh)");
  save->add_option("--job", o->job, "Save this job (Slurm or PBS id) from a shell outside it");
  save->add_flag("--json", *json, "Print the result as JSON");
  save->callback([=] {
    enter_job(o->job);
    job::Site c = job::discover_site(*o);
    auto plan = default_plan(c, job::job_hostfile(c.allocation, c.env));
    job::JobSummary summary;
    summary.gpus_per_host = static_cast<unsigned>(c.gpus.visible.size());
    summary.machine = c.machine->name;
    if (plan) summary.launch.emplace(plan->argv.begin(), plan->argv.end() - 1);  // without COMMAND
    job::SavedJob saved = job::save_job(c.allocation, c.env, summary, *to);
    if (*json)
      print_json(saved);
    else
      std::printf("saved %s\n  use it from another shell: source %s\n", saved.file.c_str(),
                  util::shell_quote(saved.file).c_str());
  });

  auto from = std::make_shared<std::string>();
  auto resolve_saved = [=]() {
    return from->empty() ? job::find_saved_job(job::current_environ()) : *from;
  };
  CLI::App* load =
      cmd->add_subcommand("load", "Print a saved job's exports, for eval \"$(ferry job load)\"");
  load->add_option("FILE", *from, "Saved file (default: this job's, else the latest)");
  load->callback([=] { std::fputs(util::read_file(resolve_saved()).c_str(), stdout); });

  CLI::App* show = cmd->add_subcommand("show", "Show a saved job");
  show->add_option("FILE", *from, "Saved file (default: this job's, else the latest)");
  show->add_flag("--json", *json, "Print as JSON");
  show->callback([=] {
    std::string file = resolve_saved();
    Json j = Json::object();
    j["file"] = file;
    for (const auto& [key, value] : job::read_job_env_script(util::read_file(file))) j[key] = value;
    if (*json) {
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      for (const auto& [k, v] : j.items())
        std::printf("%-20s %s\n", k.c_str(), v.get<std::string>().c_str());
    }
  });
}

void add_launch(CLI::App& app) {
  auto o = std::make_shared<job::SiteOptions>();
  auto req = std::make_shared<job::LaunchRequest>();
  auto dry_run = std::make_shared<bool>(false);
  auto json = std::make_shared<bool>(false);
  auto image = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "launch",
      "Start ranks on this allocation with the right launcher, binding and rank variables");
  cmd->add_option("-n,--ranks", req->ranks, "Ranks in all (default: fill the allocation)");
  cmd->add_option("--ppn", req->ranks_per_node, "Ranks per node (default: one per GPU, or one)");
  cmd->add_option("-N,--nodes", req->nodes, "Use at most this many hosts (default: all)");
  cmd->add_option("--gpus-per-rank", req->gpus_per_rank,
                  "GPUs per rank (default: 1 when there are GPUs)");
  cmd->add_option("--cpu-bind", req->cpu_bind,
                  "CPU binding in the launcher's grammar, instead of ferry's");
  cmd->add_option("--threads", req->threads,
                  "OMP_NUM_THREADS, MKL_NUM_THREADS, ... in every rank (default: the CPUs each "
                  "rank gets, unless OMP_NUM_THREADS is set)")
      ->check(CLI::Range(1u, 1u << 20));
  cmd->add_option("--image", *image,
                  "Run every rank in this Charliecloud image (ferry run; the ranks on a node "
                  "share one container)");
  cmd->add_flag("--dry-run", *dry_run, "Print the line, do not run it");
  cmd->add_flag("--json", *json, "With --dry-run: print the plan as JSON");
  add_site_options(cmd, *o);
  cmd->add_option("COMMAND", req->command, "The command each rank runs (after --)")->required();
  cmd->callback([=] {
    enter_job(o->job);
    job::Site c = job::discover_site(*o);
    job::LaunchRequest r = *req;
    r.ferry = util::self_executable();
    r.hostfile = job::job_hostfile(c.allocation, c.env);
    if (!image->empty()) {
      // Each rank: ferry rank sets its variables and binding, then ferry run starts the image,
      // which keeps them. The tag names this launch's peer groups: unique to the job and to
      // this ferry.
      std::vector<std::string> in_image = {
          r.ferry,
          "run",
          util::absolute_path(*image),
          "--join",
          fmt::format("ferry.{}.{}", c.allocation.job_id.empty() ? "nojob" : c.allocation.job_id,
                      ::getpid()),
          "--"};
      // What every rank's ferry run would refuse (no ch-run, not an image, ...) is one error here.
      container::RunOptions check;
      check.image = in_image[2];
      check.join_tag = in_image[4];
      check.join_count = 1;
      check.command = r.command;
      container::run_argv(check, std::filesystem::current_path().string());
      r.command.insert(r.command.begin(), in_image.begin(), in_image.end());
    }
    job::LaunchPlan plan = job::plan_launch(c.allocation, *c.machine, c.gpus, c.cpus, r);
    job::write_hostfile(plan, r.hostfile);
    if (*dry_run) {
      if (*json)
        std::printf("%s\n", site_json(c, &plan).dump(2).c_str());
      else
        std::printf("%s\n", util::command_line(plan.argv).c_str());
      return;
    }
    // The launcher replaces ferry: its exit status and signals are the job's.
    job::exec_command(plan.argv, c.env);
  });
}

void add_rank(CLI::App& app, int& exit_status) {
  auto json = std::make_shared<bool>(false);
  auto command = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd =
      app.add_subcommand("rank",
                         "Run COMMAND as one rank: set RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, "
                         "... and its GPU (ferry launch puts this in front of every rank)");
  // CLI11 only gathers the words of the rank options: job::decode_rank_options reads them, as it
  // reads what `ferry launch` wrote.
  std::vector<CLI::Option*> rank_options = {
      cmd->add_option("--spawn",
                      "Start N local ranks of COMMAND on this host (ferry's local launcher)")
          ->type_name("UINT"),
      cmd->add_option("--master-addr",
                      "MASTER_ADDR (default: $MASTER_ADDR, else the allocation's first host)")
          ->type_name("TEXT"),
      cmd->add_option("--master-port",
                      "MASTER_PORT (default: $MASTER_PORT, else derived from the job id)")
          ->type_name("UINT"),
      cmd->add_option("--gpus", "Visible GPU selectors in local-rank order, comma-separated")
          ->type_name("TEXT"),
      cmd->add_option("--gpus-per-rank", "GPUs each rank gets from --gpus")->type_name("UINT"),
      cmd->add_option("--visibility",
                      "Variable that selects GPUs (CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES, "
                      "ZE_AFFINITY_MASK)")
          ->type_name("TEXT"),
      cmd->add_option("--cpus", "CPU lists per local rank, ':'-separated (0-7:8-15)")
          ->type_name("TEXT"),
      cmd->add_option("--env", "KEY=VALUE set unless already set")
          ->type_name("TEXT")
          ->expected(CLI::detail::expected_max_vector_size)
          ->take_all(),
      cmd->add_option("--threads",
                      "OMP_NUM_THREADS, MKL_NUM_THREADS, ... (default: $OMP_NUM_THREADS, else "
                      "the CPUs this rank is bound to, else its share of the node's)")
          ->type_name("UINT"),
      // What ferry launch planned: used unless the user set OMP_NUM_THREADS.
      cmd->add_option("--planned-threads", "What ferry launch planned")
          ->type_name("UINT")
          ->group("")};
  cmd->add_flag("--json", *json, "Print this rank's variables as JSON instead of running COMMAND");
  cmd->add_option("COMMAND", *command, "The command (after --)");
  cmd->callback([=, &exit_status] {
    std::vector<std::string> words;
    for (const CLI::Option* option : rank_options)
      for (const std::string& value : option->results())
        // Not get_name(): it is empty for a hidden option.
        words.insert(words.end(), {"--" + option->get_lnames().front(), value});
    words.push_back("--");
    words.insert(words.end(), command->begin(), command->end());
    job::RankOptions options = job::decode_rank_options(words);
    job::Environ env = job::current_environ();
    if (options.spawn > 0) {
      if (options.command.empty())
        throw Error("--spawn: no command to run (put it after --)", Error::Kind::usage);
      // Each child is this same command without --spawn.
      job::RankOptions child = options;
      child.spawn = 0;
      std::vector<std::string> self = {util::self_executable(), "rank"};
      for (auto& word : job::encode_rank_options(child)) self.push_back(std::move(word));
      std::vector<std::pair<std::vector<std::string>, job::Environ>> procs;
      for (unsigned i = 0; i < options.spawn; ++i) {
        job::Environ e = env;
        e["FERRY_RANK"] = e["FERRY_LOCAL_RANK"] = std::to_string(i);
        e["FERRY_WORLD_SIZE"] = e["FERRY_LOCAL_WORLD_SIZE"] = std::to_string(options.spawn);
        procs.emplace_back(self, e);
      }
      exit_status = job::run_processes(procs);  // the first failed rank's status
      return;
    }
    const job::RankSetup& setup = options.setup;
    job::RankInfo rank = job::resolve_rank(env);
    job::Environ vars = job::rank_environment(rank, setup, env);
    if (*json || options.command.empty()) {
      Json j = {{"source", rank.source}};
      for (const auto& [k, v] : vars) j[k] = v;
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    job::bind_rank_cpus(rank, setup);
    // ferry's own local-launcher variables end here: a launch inside the rank starts afresh.
    for (const char* k :
         {"FERRY_RANK", "FERRY_LOCAL_RANK", "FERRY_WORLD_SIZE", "FERRY_LOCAL_WORLD_SIZE"})
      env.erase(k);
    for (const auto& [k, v] : vars) env[k] = v;
    job::exec_command(options.command, env);
  });
}

}  // namespace

void enter_job(const std::string& id) {
  job::Environ env = job::current_environ();
  job::FindJobOptions f;
  f.id = id;
  f.hostname = util::short_host_name(util::host_name());
  f.user = util::user_name();
  f.slurm = util::on_path("scontrol") && util::on_path("squeue");
  f.pbs = util::on_path("qstat") && util::on_path("qselect");  // Slurm's qstat wrapper has none
  // Looking for this host's job is a guess that must not hold up a shell outside any job.
  f.timeout_seconds = id.empty() ? 5 : 15;
  std::optional<job::FoundJob> found = job::find_job(env, f);
  if (!found) return;
  job::Allocation named;  // what names the job's directory
  named.scheduler = found->job.scheduler;
  named.job_id = found->job.id;
  job::Environ next = job::without_job_variables(env);
  for (auto& [k, v] : job::job_variables(found->job, job::job_dir(named, env) + "/nodefile"))
    next[k] = v;
  job::enter_environment(next);
  if (id.empty()) std::fprintf(stderr, "ferry: %s\n", found->how.c_str());
}

void add_site_options(CLI::App* cmd, job::SiteOptions& o) {
  cmd->add_option("--job", o.job,
                  "Run in this job (Slurm or PBS id) from a shell outside it (default: this "
                  "shell's job, else your one running job on this host)");
  cmd->add_option("--machine", o.machine, "Use this machine's entry instead of recognising it");
  cmd->add_option("--sysfs-root", o.sysfs_root,
                  "Read hardware from this recorded tree (default /)");
  cmd->add_option("--hostname", o.hostname, "Recognise the machine as if this were the host name");
}

void add_job_commands(CLI::App& app, int& exit_status) {
  add_hostlist(app);
  add_job(app);
  add_launch(app);
  add_rank(app, exit_status);
}

}  // namespace ferry::cli
