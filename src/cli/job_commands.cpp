// The job verbs: hostlist, job, launch, rank. Each parses and calls the job library.
#include <fcntl.h>
#include <netdb.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
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

// What `job`, `launch` and `job save` all need: the allocation, this node, the machine.
struct Context {
  job::Environ env;
  job::Allocation allocation;
  job::CpuInventory cpus;
  job::GpuInventory gpus;
  std::vector<job::Machine> machines;
  const job::Machine* machine = nullptr;
  std::string hostname, fqdn;
};

struct ContextOptions {
  std::string sysfs_root = "/";
  std::string hostname;  // pretend to be this host (recorded machines, tests)
  std::string machine;   // --machine
};

std::string fqdn_of(const std::string& host) {
  addrinfo hints{};
  hints.ai_flags = AI_CANONNAME;
  addrinfo* res = nullptr;
  std::string out = host;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) == 0) {
    if (res->ai_canonname) out = res->ai_canonname;
    ::freeaddrinfo(res);
  }
  return out;
}

Context make_context(const ContextOptions& o) {
  Context c;
  c.env = job::current_environ();
  c.hostname = o.hostname.empty() ? util::host_name() : o.hostname;
  c.fqdn = o.hostname.empty() ? fqdn_of(c.hostname) : o.hostname;
  c.allocation =
      job::discover_allocation(c.env, {c.hostname.substr(0, c.hostname.find('.')), nullptr});
  job::DiscoverOptions d;
  d.sysfs_root = o.sysfs_root;
  c.cpus = job::discover_cpus(d);
  c.gpus = job::discover_gpus(c.env, d);
  c.machines = job::load_machines(c.env);
  c.machine = o.machine.empty() ? &job::recognise_machine(c.machines, c.env, c.hostname, c.fqdn,
                                                          c.allocation.scheduler)
                                : &job::find_machine(c.machines, o.machine);
  return c;
}

void add_context_options(CLI::App* cmd, ContextOptions& o) {
  cmd->add_option("--machine", o.machine, "Use this machine's entry instead of recognising it");
  cmd->add_option("--sysfs-root", o.sysfs_root,
                  "Read hardware from this recorded tree (default /)");
  cmd->add_option("--hostname", o.hostname, "Recognise the machine as if this were the host name");
}

// Where saved jobs live, for save and load alike: $XDG_CACHE_HOME/ferry/jobs, where an empty or
// relative XDG_CACHE_HOME counts as unset (the XDG spec), hence ~/.cache/ferry/jobs.
std::string jobs_root(const job::Environ& env) {
  std::string base;
  if (auto x = job::lookup(env, "XDG_CACHE_HOME"); x && !x->empty() && x->front() == '/')
    base = *x;
  else
    base = job::lookup(env, "HOME").value_or("/tmp") + "/.cache";
  return base + "/ferry/jobs";
}

// Where this job's files live: one directory per job, so concurrent jobs never share a file.
std::string job_dir(const job::Allocation& a, const job::Environ& env) {
  std::string id =
      a.job_id.empty() ? "local-" + job::lookup(env, "USER").value_or("user") : a.job_id;
  for (char& ch : id)
    if (ch == '/') ch = '_';
  return fmt::format("{}/{}-{}", jobs_root(env), job::scheduler_name(a.scheduler), id);
}

// Job files, whole or not at all, readable as the user's umask allows; the job's directory is
// made on first use.
void write_job_file(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  util::write_file_atomically(path, text, 0644 & ~util::current_umask());
}

// A line to paste into a shell.
std::string quoted_line(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + util::shell_word(a);
  return out;
}

// Reads back a value written by util::shell_quote: '...' runs and \' escapes.
std::string shell_unquote(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\'') {
      std::size_t end = text.find('\'', i + 1);
      if (end == std::string::npos) end = text.size();
      out.append(text, i + 1, end - i - 1);
      i = end;
    } else if (text[i] == '\\' && i + 1 < text.size()) {
      out += text[++i];
    } else {
      out += text[i];
    }
  }
  return out;
}

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

Json context_json(const Context& c, const job::LaunchPlan* plan) {
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
  if (plan)
    j["launch"] = {{"nodes", plan->nodes},
                   {"ranks", plan->ranks},
                   {"ranks_per_node", plan->ranks_per_node},
                   {"gpus_per_rank", plan->gpus_per_rank},
                   {"master_addr", plan->master_addr},
                   {"master_port", plan->master_port},
                   {"argv", plan->argv},
                   {"line", quoted_line(plan->argv)}};
  return j;
}

// The default plan for `job` and `job save`: the command left as "$@"-style placeholder.
std::optional<job::LaunchPlan> default_plan(const Context& c, const std::string& hostfile) {
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

void print_job(const Context& c, const job::LaunchPlan* plan) {
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
  if (plan) std::printf("launch      %s\n", quoted_line(plan->argv).c_str());
}

// Variables describing the allocation, saved so a second shell sees the same job. Per-task and
// per-step variables are left out: they describe one process, not the job.
bool is_job_variable(const std::string& name) {
  static const char* prefixes[] = {"SLURM_", "PBS_", "LSB_", "COBALT_", "FLUX_"};
  static const char* per_task[] = {
      "STEP",     "PROCID", "LOCALID",   "TASK_PID",   "GTIDS",        "SRUN_COMM", "LAUNCH_NODE",
      "CPU_BIND", "PMI",    "TASK_RANK", "TASK_LOCAL", "DISTRIBUTION", "UMASK"};
  bool job = false;
  for (const char* p : prefixes) job |= name.starts_with(p);
  if (!job) return false;
  for (const char* t : per_task)
    if (name.find(t) != std::string::npos) return false;
  return true;
}

void add_job(CLI::App& app) {
  auto o = std::make_shared<ContextOptions>();
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "job", "What this allocation is: scheduler, hosts, CPUs, GPUs, machine, launch line");
  add_context_options(cmd, *o);
  cmd->add_flag("--json", *json, "Print as JSON");
  cmd->callback([=, &app] {
    (void)app;
    if (!cmd->get_subcommands().empty()) return;
    Context c = make_context(*o);
    auto plan = default_plan(c, job_dir(c.allocation, c.env) + "/hostfile");
    if (*json)
      std::printf("%s\n", context_json(c, plan ? &*plan : nullptr).dump(2).c_str());
    else
      print_job(c, plan ? &*plan : nullptr);
  });

  auto to = std::make_shared<std::string>();
  CLI::App* save = cmd->add_subcommand(
      "save", "Write this job's environment to a file a second shell can source");
  save->add_option("--to", *to,
                   "File to write (default: ~/.cache/ferry/jobs/<scheduler>-<id>/env.sh)");
  save->add_flag("--json", *json, "Print the result as JSON");
  save->callback([=] {
    Context c = make_context(*o);
    std::string dir = job_dir(c.allocation, c.env);
    std::string file = to->empty() ? dir + "/env.sh" : *to;
    std::string hostfile = dir + "/hostfile";
    auto plan = default_plan(c, hostfile);
    std::string hosts_text;
    for (const auto& h : c.allocation.hosts) hosts_text += h + "\n";
    write_job_file(hostfile, hosts_text);
    std::string text =
        fmt::format("# ferry job environment: {} job {}, saved by `ferry job save`\n",
                    job::scheduler_name(c.allocation.scheduler), c.allocation.job_id);
    auto put = [&](const std::string& k, const std::string& v) {
      text += fmt::format("export {}={}\n", k, util::shell_quote(v));
    };
    for (const auto& [k, v] : c.env)
      if (is_job_variable(k)) put(k, v);
    put("FERRY_JOB_SCHEDULER", std::string(job::scheduler_name(c.allocation.scheduler)));
    put("FERRY_JOB_ID", c.allocation.job_id);
    put("FERRY_HOSTFILE", hostfile);
    put("FERRY_NHOSTS", std::to_string(c.allocation.hosts.size()));
    put("FERRY_NGPU_PER_HOST", std::to_string(c.gpus.visible.size()));
    put("FERRY_NGPUS", std::to_string(c.gpus.visible.size() * c.allocation.hosts.size()));
    put("FERRY_MACHINE", c.machine->name);
    if (plan) {
      std::vector<std::string> prefix(plan->argv.begin(), plan->argv.end() - 1);  // without COMMAND
      put("FERRY_LAUNCH", quoted_line(prefix));
    }
    write_job_file(file, text);
    // `latest` points at the job saved last, for `ferry job load` outside any job.
    std::string latest = std::filesystem::path(dir).parent_path().string() + "/latest";
    std::string tmp_link = latest + ".tmp-" + std::to_string(::getpid());
    ::unlink(tmp_link.c_str());
    if (::symlink(file.c_str(), tmp_link.c_str()) == 0) ::rename(tmp_link.c_str(), latest.c_str());
    if (*json)
      std::printf("%s\n", Json({{"file", file}, {"hostfile", hostfile}}).dump(2).c_str());
    else
      std::printf("saved %s\n  use it from another shell: source %s\n", file.c_str(),
                  util::shell_quote(file).c_str());
  });

  auto from = std::make_shared<std::string>();
  auto resolve_saved = [=]() {
    if (!from->empty()) return *from;
    job::Environ env = job::current_environ();
    job::Allocation a;
    try {
      a = job::discover_allocation(env, {util::host_name(), nullptr});
    } catch (const Error&) {
    }
    std::string mine = job_dir(a, env) + "/env.sh";
    if (!a.job_id.empty() && ::access(mine.c_str(), R_OK) == 0) return mine;
    std::string latest = jobs_root(env) + "/latest";
    if (::access(latest.c_str(), R_OK) == 0) return latest;
    throw Error(
        fmt::format("no saved job (looked for {} and {}): run `ferry job save` in the job first",
                    mine, latest),
        Error::Kind::usage);
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
    std::string text = util::read_file(file);
    std::size_t pos = 0;
    while (pos < text.size()) {
      std::size_t nl = text.find('\n', pos);
      std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      pos = nl == std::string::npos ? text.size() : nl + 1;
      if (line.rfind("export FERRY_", 0) != 0) continue;
      std::size_t eq = line.find('=');
      std::string key = line.substr(7, eq - 7), value = line.substr(eq + 1);
      value = shell_unquote(value);
      j[key] = value;
    }
    if (*json) {
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      for (const auto& [k, v] : j.items())
        std::printf("%-20s %s\n", k.c_str(), v.get<std::string>().c_str());
    }
  });
}

void add_launch(CLI::App& app) {
  auto o = std::make_shared<ContextOptions>();
  auto req = std::make_shared<job::LaunchRequest>();
  auto dry_run = std::make_shared<bool>(false);
  auto json = std::make_shared<bool>(false);
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
  cmd->add_flag("--dry-run", *dry_run, "Print the line, do not run it");
  cmd->add_flag("--json", *json, "With --dry-run: print the plan as JSON");
  add_context_options(cmd, *o);
  cmd->add_option("COMMAND", req->command, "The command each rank runs (after --)")->required();
  cmd->callback([=] {
    Context c = make_context(*o);
    job::LaunchRequest r = *req;
    r.ferry = util::self_executable();
    // Named by its content: two launches in one job (a sweep, -N subsets) never rewrite the file
    // the other's launcher is about to read.
    r.hostfile = job_dir(c.allocation, c.env) + "/hostfile";
    job::LaunchPlan plan = job::plan_launch(c.allocation, *c.machine, c.gpus, c.cpus, r);
    if (!plan.hostfile_text.empty()) {
      std::string named = fmt::format("{}-{}", r.hostfile,
                                      util::hex64(util::xxh3(plan.hostfile_text)).substr(0, 8));
      for (auto& a : plan.argv)
        if (a == r.hostfile) a = named;
      write_job_file(named, plan.hostfile_text);
    }
    if (*dry_run) {
      if (*json)
        std::printf("%s\n", context_json(c, &plan).dump(2).c_str());
      else
        std::printf("%s\n", quoted_line(plan.argv).c_str());
      return;
    }
    // The launcher replaces ferry: its exit status and signals are the job's.
    job::exec_command(plan.argv, c.env);
  });
}

std::vector<std::vector<unsigned>> parse_rank_cpus(const std::string& text) {
  std::vector<std::vector<unsigned>> out;
  for (std::string_view list : util::split(text, ':'))
    out.push_back(job::parse_cpu_list(list, "--cpus"));
  return out;
}

void add_rank(CLI::App& app) {
  auto spawn = std::make_shared<unsigned>(0);
  auto addr = std::make_shared<std::string>();
  auto port = std::make_shared<std::optional<unsigned>>();
  auto gpus = std::make_shared<std::string>();
  auto gpr = std::make_shared<unsigned>(1);
  auto visibility = std::make_shared<std::string>();
  auto cpus = std::make_shared<std::string>();
  auto extra = std::make_shared<std::vector<std::string>>();
  auto json = std::make_shared<bool>(false);
  auto command = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd =
      app.add_subcommand("rank",
                         "Run COMMAND as one rank: set RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, "
                         "... and its GPU (ferry launch puts this in front of every rank)");
  cmd->add_option("--spawn", *spawn,
                  "Start N local ranks of COMMAND on this host (ferry's local launcher)");
  cmd->add_option("--master-addr", *addr,
                  "MASTER_ADDR (default: $MASTER_ADDR, else the allocation's first host)");
  cmd->add_option("--master-port", *port,
                  "MASTER_PORT (default: $MASTER_PORT, else derived from the job id)");
  cmd->add_option("--gpus", *gpus, "Visible GPU selectors in local-rank order, comma-separated");
  cmd->add_option("--gpus-per-rank", *gpr, "GPUs each rank gets from --gpus");
  cmd->add_option(
      "--visibility", *visibility,
      "Variable that selects GPUs (CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES, ZE_AFFINITY_MASK)");
  cmd->add_option("--cpus", *cpus, "CPU lists per local rank, ':'-separated (0-7:8-15)");
  cmd->add_option("--env", *extra, "KEY=VALUE set unless already set")->take_all();
  cmd->add_flag("--json", *json, "Print this rank's variables as JSON instead of running COMMAND");
  cmd->add_option("COMMAND", *command, "The command (after --)");
  cmd->callback([=] {
    job::Environ env = job::current_environ();
    if (*spawn > 0) {
      if (command->empty())
        throw Error("--spawn: no command to run (put it after --)", Error::Kind::usage);
      // Each child is this same command without --spawn.
      std::vector<std::string> self = {util::self_executable(), "rank"};
      if (!addr->empty()) self.insert(self.end(), {"--master-addr", *addr});
      if (*port) self.insert(self.end(), {"--master-port", std::to_string(**port)});
      if (!gpus->empty())
        self.insert(self.end(), {"--gpus", *gpus, "--gpus-per-rank", std::to_string(*gpr),
                                 "--visibility", *visibility});
      if (!cpus->empty()) self.insert(self.end(), {"--cpus", *cpus});
      for (const auto& kv : *extra) self.insert(self.end(), {"--env", kv});
      self.push_back("--");
      self.insert(self.end(), command->begin(), command->end());
      std::vector<std::pair<std::vector<std::string>, job::Environ>> procs;
      for (unsigned i = 0; i < *spawn; ++i) {
        job::Environ e = env;
        e["FERRY_RANK"] = e["FERRY_LOCAL_RANK"] = std::to_string(i);
        e["FERRY_WORLD_SIZE"] = e["FERRY_LOCAL_WORLD_SIZE"] = std::to_string(*spawn);
        procs.emplace_back(self, e);
      }
      int rc = job::run_processes(procs);
      if (rc != 0) std::exit(rc);
      return;
    }
    job::RankSetup setup;
    setup.master_addr = *addr;
    setup.master_port = *port;
    if (!gpus->empty()) {
      for (std::string_view selector : util::split(*gpus, ','))
        setup.gpu_selectors.emplace_back(selector);
      setup.gpus_per_rank = *gpr;
      setup.visibility_variable = visibility->empty() ? "CUDA_VISIBLE_DEVICES" : *visibility;
    }
    if (!cpus->empty()) setup.cpus = parse_rank_cpus(*cpus);
    for (const auto& kv : *extra) {
      auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0)
        throw Error(fmt::format("--env {}: expected KEY=VALUE", kv), Error::Kind::usage);
      setup.extra_env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    job::RankInfo rank = job::resolve_rank(env);
    job::Environ vars = job::rank_environment(rank, setup, env);
    if (*json || command->empty()) {
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
    job::exec_command(*command, env);
  });
}

}  // namespace

void add_job_commands(CLI::App& app) {
  add_hostlist(app);
  add_job(app);
  add_launch(app);
  add_rank(app);
}

}  // namespace ferry::cli
