// The sweep verbs: sweep submit (the manifest, the run directories, the arrays), sweep run (one
// array task), sweep status (the records and the queue), sweep resubmit (chosen points again) and
// sweep cancel. Each parses and calls the sweep library.
#include <cstdio>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "sweep/sweep.hpp"

namespace ferry::cli {
namespace {

struct SubmitArgs {
  std::vector<std::string> words;  // DIR, then NAME=V1,V2,... words, then the command
  bool zip = false, dry_run = false, json = false;
  std::string from, time, env_dir, image, scheduler;
  unsigned throttle = 0;
  std::uint64_t max_array_size = 0;
  std::vector<std::string> submit_args, unused;
};

// DIR first, then the leading NAME=... words, then the command (its first word is no NAME=...).
sweep::Manifest manifest_of(const SubmitArgs& a) {
  if (a.words.empty()) throw Error("sweep submit: DIR is required", Error::Kind::usage);
  std::vector<sweep::Parameter> parameters;
  std::size_t i = 1;
  for (; i < a.words.size() && sweep::is_parameter_word(a.words[i]); ++i)
    parameters.push_back(sweep::parse_parameter(a.words[i]));
  sweep::Manifest m;
  m.command.assign(a.words.begin() + static_cast<std::ptrdiff_t>(i), a.words.end());
  if (!a.from.empty() && !parameters.empty())
    throw Error("--from: the points come from the file or from NAME=V1,V2,... words, not both",
                Error::Kind::usage);
  if (!a.from.empty())
    m.grid = sweep::read_points(a.from);
  else
    m.grid = a.zip ? sweep::zip(parameters) : sweep::product(parameters);
  sweep::check_grid(m.grid);
  sweep::check_command(m.command, m.grid.names);
  m.dir = util::absolute_path(a.words[0]);
  if (!a.env_dir.empty() && !a.image.empty())
    throw Error("--env and --image: a point runs in one or the other (an image has its env)",
                Error::Kind::usage);
  if (!a.env_dir.empty()) m.env_dir = util::absolute_path(a.env_dir);
  if (!a.image.empty()) m.image = util::absolute_path(a.image);
  m.scheduler = sweep::choose_scheduler(a.scheduler);
  m.throttle = a.throttle;
  m.time = a.time;
  m.submit_args = a.submit_args;
  return m;
}

void print_plan(const sweep::Plan& plan, bool json) {
  if (json) {
    print_json(plan);
    return;
  }
  bool pbs = plan.scheduler == "pbs";
  std::printf("%s: %llu points in %zu %s (%s %llu), manifest %s\n", plan.dir.c_str(),
              static_cast<unsigned long long>(plan.points), plan.arrays.size(),
              pbs ? "PBS jobs" : "arrays", pbs ? "max_array_size" : "MaxArraySize",
              static_cast<unsigned long long>(plan.max_array_size), plan.manifest.c_str());
  for (const auto& a : plan.arrays) {
    std::vector<std::string> line = a.submit;
    if (a.after_previous && pbs)
      line.insert(line.end() - 1, {"-W", "depend=afterany:<the job before>"});
    else if (a.after_previous)
      line.insert(line.end() - 1, "--dependency=afterany:<the array before>");
    std::printf("%s\n", util::command_line(line).c_str());
  }
}

// Submits the plan and says what was queued.
void submit_plan(const sweep::Plan& plan, bool json) {
  sweep::Submission s = sweep::submit(plan);
  if (json) {
    print_json(s);
    return;
  }
  for (const auto& job : s.arrays)
    std::printf("%s: points %llu+[%s]: job %s\n", plan.dir.c_str(),
                static_cast<unsigned long long>(job.offset), job.tasks.c_str(), job.job_id.c_str());
}

void add_sweep_submit(CLI::App* sweep) {
  auto a = std::make_shared<SubmitArgs>();
  CLI::App* cmd = sweep->add_subcommand(
      "submit", "Write DIR/sweep.json and DIR/runs/INDEX for every point, then submit job arrays");
  cmd->add_option("WORDS", a->words,
                  "DIR, then NAME=V1,V2,... (\\, for a literal comma), then after -- the command "
                  "({NAME}, {index}, {dir}; {{ and }} for braces)")
      ->required();
  // Never filled (WORDS takes every word): a positional still wanting words keeps CLI11 reading
  // the words after -- here rather than handing them back to `sweep`.
  cmd->add_option("COMMAND", a->unused, "")->expected(1, -1)->group("");
  cmd->add_flag("--zip", a->zip, "Pair the i-th values instead of taking the product");
  cmd->add_option("--from", a->from, "The points from a CSV (header: names) or JSON file");
  cmd->add_option("--throttle", a->throttle, "At most K tasks of an array running at once (%K)");
  cmd->add_option("--time", a->time,
                  "Each task's time limit, as sbatch's --time (minutes, H:M:S, D-H:M:S); PBS gets "
                  "it as -l walltime");
  cmd->add_option("--submit-arg,--sbatch-arg,--qsub-arg", a->submit_args,
                  "One more sbatch (or qsub) argument (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--scheduler", a->scheduler,
                  "slurm or pbs (default: slurm where sbatch is on PATH, else pbs where qsub is)");
  cmd->add_option("--env", a->env_dir, "The env each point runs in (activated)");
  cmd->add_option("--image", a->image, "The Charliecloud image each point runs in (ferry run)");
  cmd->add_option("--max-array-size", a->max_array_size,
                  "Tasks per array (default: the site's MaxArraySize, else 1001)");
  cmd->add_flag("--dry-run", a->dry_run,
                "Write the manifest and scripts, print the plan, submit "
                "nothing");
  cmd->add_flag("--json", a->json, "Print JSON");
  cmd->callback([a] {
    sweep::Manifest m = manifest_of(*a);
    std::uint64_t max_size =
        a->max_array_size > 0 ? a->max_array_size : sweep::site_max_array_size(m.scheduler);
    sweep::Plan plan = sweep::plan_arrays(m, max_size, util::self_executable());
    if (!a->dry_run) sweep::check_scheduler(m.scheduler);
    sweep::write_manifest(m);
    sweep::write_scripts(plan);
    if (a->dry_run) {
      print_plan(plan, a->json);
      return;
    }
    submit_plan(plan, a->json);
  });
}

void add_sweep_resubmit(CLI::App* sweep) {
  struct Args {
    std::string dir, index, time;
    bool failed = false, missing = false, dry_run = false, json = false;
    std::uint64_t max_array_size = 0;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = sweep->add_subcommand(
      "resubmit", "A new array for exactly the chosen points (same manifest and directories)");
  cmd->add_option("DIR", a->dir, "The sweep's directory")->required();
  cmd->add_flag("--failed", a->failed, "Points whose last run failed, timed out or was cancelled");
  cmd->add_flag("--missing", a->missing, "Points with no record that are not queued");
  cmd->add_option("--index", a->index, "These points (3,5-7), done ones too");
  cmd->add_option("--time", a->time, "The time limit of these tasks (default: the sweep's)");
  cmd->add_option("--max-array-size", a->max_array_size,
                  "Tasks per array (default: the site's MaxArraySize, else 1001)");
  cmd->add_flag("--dry-run", a->dry_run, "Print the plan, submit nothing");
  cmd->add_flag("--json", a->json, "Print JSON");
  cmd->callback([a] {
    if (!a->failed && !a->missing && a->index.empty())
      throw Error("sweep resubmit: say which points: --failed, --missing or --index LIST",
                  Error::Kind::usage);
    sweep::Manifest m = sweep::read_manifest(util::absolute_path(a->dir));
    if (!a->dry_run) sweep::check_scheduler(m.scheduler);
    std::vector<std::uint64_t> indexes;
    if (!a->index.empty()) indexes = sweep::parse_index_list(a->index, m.grid.points.size());
    std::vector<std::uint64_t> chosen =
        sweep::choose_points(sweep::sweep_status(m.dir), a->failed, a->missing, indexes);
    if (chosen.empty()) {
      if (a->json)
        print_json(sweep::Submission{});
      else
        std::printf("%s: nothing to resubmit\n", m.dir.c_str());
      return;
    }
    std::uint64_t max_size =
        a->max_array_size > 0 ? a->max_array_size : sweep::site_max_array_size(m.scheduler);
    sweep::Plan plan = sweep::plan_arrays(m, chosen, max_size, util::self_executable(), a->time);
    sweep::write_scripts(plan);
    if (a->dry_run)
      print_plan(plan, a->json);
    else
      submit_plan(plan, a->json);
  });
}

void add_sweep_cancel(CLI::App* sweep) {
  auto dir = std::make_shared<std::string>();
  CLI::App* cmd =
      sweep->add_subcommand("cancel", "scancel (qdel) what of the sweep is still queued");
  cmd->add_option("DIR", *dir, "The sweep's directory")->required();
  cmd->callback([dir] {
    std::vector<std::string> ids = sweep::cancel_sweep(*dir);
    if (ids.empty())
      std::printf("%s: nothing queued\n", dir->c_str());
    else
      std::printf("%s: cancelled job %s\n", dir->c_str(), util::join(ids, ", ").c_str());
  });
}

void add_sweep_run(CLI::App* sweep, int& exit_status) {
  auto dir = std::make_shared<std::string>();
  auto options = std::make_shared<sweep::RunOptions>();
  auto task = std::make_shared<std::uint64_t>(0);
  CLI::App* cmd = sweep->add_subcommand(
      "run", "Run this array task's point (offset + SLURM_ARRAY_TASK_ID or PBS_ARRAY_INDEX)");
  cmd->add_option("DIR", *dir, "The sweep's directory")->required();
  cmd->add_option("--offset", options->offset, "The array's first point (default 0)");
  CLI::Option* task_option =
      cmd->add_option("--task", *task, "This task id instead of the scheduler's (a plain job)");
  cmd->add_option("--time-limit", options->time_limit,
                  "The job's time limit in seconds: a SIGTERM near it is a timeout (PBS)");
  cmd->callback([=, &exit_status] {
    if (task_option->count() > 0) options->task = *task;
    sweep::RunResult r = sweep::run_point(*dir, *options, job::current_environ());
    exit_status = r.signal ? 128 + *r.signal : r.exit_code.value_or(1);
  });
}

void add_sweep_status(CLI::App* sweep) {
  auto dir = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = sweep->add_subcommand(
      "status", "Each point: done, failed, timeout, cancelled, running, pending or never ran");
  cmd->add_option("DIR", *dir, "The sweep's directory")->required();
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->callback([=] {
    sweep::SweepStatus s = sweep::sweep_status(*dir);
    if (*json) {
      print_json(s);
      return;
    }
    auto n = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
    std::printf(
        "%s: %llu points: %llu done, %llu failed, %llu timeout, %llu cancelled, %llu running, "
        "%llu pending, %llu never ran%s\n",
        s.dir.c_str(), n(s.points), n(s.done), n(s.failed), n(s.timeout), n(s.cancelled),
        n(s.running), n(s.pending), n(s.never_ran),
        s.queue_known || s.running + s.pending > 0 ? "" : " (the queue was not asked)");
    for (const auto& p : s.results) {
      if (p.state == sweep::PointState::done || p.state == sweep::PointState::never_ran) continue;
      std::string how = p.signal      ? fmt::format(" (signal {})", *p.signal)
                        : p.exit_code ? fmt::format(" (exit code {})", *p.exit_code)
                                      : "";
      std::printf("%llu %s%s%s\n", n(p.index), util::name(p.state).c_str(), how.c_str(),
                  p.job.empty() ? "" : (" job " + p.job).c_str());
    }
  });
}

}  // namespace

void add_sweep(CLI::App& app, int& exit_status) {
  CLI::App* cmd = app.add_subcommand("sweep", "Parameter sweeps as job arrays");
  cmd->require_subcommand(1);
  add_sweep_submit(cmd);
  add_sweep_run(cmd, exit_status);
  add_sweep_status(cmd);
  add_sweep_resubmit(cmd);
  add_sweep_cancel(cmd);
}

}  // namespace ferry::cli
