// Points into job arrays: the site's MaxArraySize, chunks with offsets, time limits, the sbatch
// (or qsub) lines and the batch scripts, and the submission itself.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include "sweep/sweep.hpp"

namespace ferry::sweep {

std::optional<std::uint64_t> parse_max_array_size(std::string_view scontrol_config) {
  auto values = util::key_value_lines(scontrol_config, '=');
  auto it = values.find("MaxArraySize");
  if (it == values.end()) return std::nullopt;
  std::optional<unsigned> size = util::parse_decimal(it->second, 4000001);  // Slurm's ceiling
  if (!size) return std::nullopt;
  return *size;
}

std::uint64_t site_max_array_size(job::Scheduler scheduler) {
  bool pbs = scheduler == job::Scheduler::pbs;
  std::uint64_t fallback = pbs ? k_default_pbs_max_array_size : k_default_max_array_size;
  std::vector<std::string> ask = pbs ? std::vector<std::string>{"qstat", "-Bf"}
                                     : std::vector<std::string>{"scontrol", "show", "config"};
  if (!util::on_path(ask[0])) return fallback;
  // A client without a reachable controller (a login node of another cluster, a test machine):
  // the default, and the submit command itself refuses an array that is too large.
  util::CommandOutput out = util::run_command(ask, 60);
  if (out.status != 0) return fallback;
  return (pbs ? parse_pbs_max_array_size(out.out) : parse_max_array_size(out.out))
      .value_or(fallback);
}

std::optional<std::uint64_t> parse_time_limit(std::string_view time) {
  std::uint64_t days = 0;
  std::size_t dash = time.find('-');
  if (dash != std::string_view::npos) {
    std::optional<unsigned> d = util::parse_decimal(time.substr(0, dash), 100000);
    if (!d) return std::nullopt;
    days = *d;
    time.remove_prefix(dash + 1);
  }
  std::vector<std::uint64_t> parts;
  for (std::string_view part : util::split(time, ':')) {
    std::optional<unsigned> v = util::parse_decimal(part, 100000000);
    if (!v) return std::nullopt;
    parts.push_back(*v);
  }
  if (parts.empty() || parts.size() > 3) return std::nullopt;
  std::uint64_t h = 0, m = 0, sec = 0;
  if (dash != std::string_view::npos) {  // D-H, D-H:M, D-H:M:S
    h = parts[0];
    if (parts.size() > 1) m = parts[1];
    if (parts.size() > 2) sec = parts[2];
  } else if (parts.size() == 1) {  // M
    m = parts[0];
  } else if (parts.size() == 2) {  // M:S
    m = parts[0];
    sec = parts[1];
  } else {  // H:M:S
    h = parts[0];
    m = parts[1];
    sec = parts[2];
  }
  return ((days * 24 + h) * 60 + m) * 60 + sec;
}

std::uint64_t check_time_limit(std::string_view time) {
  if (time.empty()) return 0;
  std::optional<std::uint64_t> seconds = parse_time_limit(time);
  if (!seconds || *seconds == 0)
    throw Error(fmt::format("--time '{}': expected minutes, M:S, H:M:S, D-H, D-H:M or D-H:M:S "
                            "(sbatch's --time), above zero",
                            util::printable(time)),
                Error::Kind::usage);
  return *seconds;
}

std::string pbs_walltime(std::uint64_t seconds) {
  return fmt::format("{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60);
}

std::vector<ArrayChunk> split_arrays(const std::vector<std::uint64_t>& indexes,
                                     std::uint64_t max_array_size) {
  if (max_array_size == 0)
    throw Error("MaxArraySize is 0: job arrays are disabled on this cluster");
  std::vector<ArrayChunk> chunks;
  for (std::uint64_t index : indexes) {
    std::uint64_t offset = index - index % max_array_size;
    if (chunks.empty() || chunks.back().offset != offset) chunks.push_back({offset, {}});
    chunks.back().tasks.push_back(index - offset);
  }
  return chunks;
}

namespace {

// The runs of consecutive ids, as [first, last] positions in ids: {0,1,2,5} -> {0,2}, {3,3}.
std::vector<std::pair<std::size_t, std::size_t>> consecutive_runs(
    const std::vector<std::uint64_t>& ids) {
  std::vector<std::pair<std::size_t, std::size_t>> runs;
  for (std::size_t i = 0; i < ids.size();) {
    std::size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    runs.emplace_back(i, j);
    i = j + 1;
  }
  return runs;
}

}  // namespace

std::string array_list(const std::vector<std::uint64_t>& ids) {
  std::string out;
  for (auto [i, j] : consecutive_runs(ids)) {
    if (!out.empty()) out += ',';
    out += j == i ? fmt::format("{}", ids[i]) : fmt::format("{}-{}", ids[i], ids[j]);
  }
  return out;
}

std::optional<std::vector<std::uint64_t>> parse_array_list(std::string_view list) {
  list = list.substr(0, list.find('%'));
  std::vector<std::uint64_t> ids;
  for (std::string_view part : util::split(list, ',')) {
    std::size_t dash = part.find('-');
    auto low = util::parse_decimal(part.substr(0, dash), 4000000);
    auto high =
        dash == std::string_view::npos ? low : util::parse_decimal(part.substr(dash + 1), 4000000);
    if (!low || !high || *high < *low) return std::nullopt;
    for (std::uint64_t id = *low; id <= *high; ++id) ids.push_back(id);
  }
  if (ids.empty()) return std::nullopt;
  return ids;
}

namespace {

// exec: ferry becomes the batch shell, so Slurm's B:USR1 warning reaches it.
std::string batch_script(const Manifest& m, std::uint64_t offset, const std::string& ferry,
                         const std::string& extra) {
  return fmt::format(
      "#!/bin/sh\n"
      "# ferry sweep: the array starting at point {} of {} (written by ferry sweep submit)\n"
      "exec {} sweep run {} --offset {}{}\n",
      offset, manifest_path(m.dir), util::shell_quote(ferry), util::shell_quote(m.dir), offset,
      extra);
}

void plan_slurm(const Manifest& m, const ArrayChunk& chunk, const std::string& ferry,
                const std::string& time, Plan& plan) {
  PlannedArray a;
  a.offset = chunk.offset;
  a.count = chunk.tasks.size();
  a.tasks = array_list(chunk.tasks);
  a.after_previous = m.throttle > 0 && !plan.arrays.empty();
  a.script_path = fmt::format("{}/array-{}.sbatch", m.dir, chunk.offset);
  a.script = batch_script(m, chunk.offset, ferry, "");
  std::string array = "--array=" + a.tasks;
  if (m.throttle > 0) array += fmt::format("%{}", std::min<std::uint64_t>(m.throttle, a.count));
  std::string name = m.dir.substr(m.dir.find_last_of('/') + 1);
  a.submit = {"sbatch",
              "--parsable",
              "--job-name=sweep-" + name,
              array,
              "--output=" + m.dir + "/logs/%A_%a.out",
              "--open-mode=append",
              "--signal=B:USR1@60"};
  if (!time.empty()) a.submit.push_back("--time=" + time);
  a.submit.insert(a.submit.end(), m.submit_args.begin(), m.submit_args.end());
  a.submit.push_back(a.script_path);
  plan.arrays.push_back(std::move(a));
}

// One array per run of consecutive tasks (qsub -J takes a range of two or more), a plain job for
// a run of one.
void plan_pbs(const Manifest& m, const ArrayChunk& chunk, const std::string& ferry,
              std::uint64_t limit, Plan& plan) {
  // PBS job names: at most 236 characters, no blanks, starting with a letter.
  std::string name = "sweep-" + m.dir.substr(m.dir.find_last_of('/') + 1);
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  name.resize(std::min<std::size_t>(name.size(), 236));
  for (auto [i, j] : consecutive_runs(chunk.tasks)) {
    std::uint64_t first = chunk.tasks[i], last = chunk.tasks[j];
    PlannedArray a;
    a.offset = chunk.offset;
    a.count = j - i + 1;
    a.tasks = array_list({chunk.tasks.begin() + static_cast<std::ptrdiff_t>(i),
                          chunk.tasks.begin() + static_cast<std::ptrdiff_t>(j) + 1});
    a.after_previous = m.throttle > 0 && !plan.arrays.empty();
    a.script_path = fmt::format("{}/array-{}-{}.pbs", m.dir, chunk.offset, first);
    std::string extra = first == last ? fmt::format(" --task {}", first) : "";
    if (limit > 0) extra += fmt::format(" --time-limit {}", limit);
    a.script = batch_script(m, chunk.offset, ferry, extra);
    a.submit = {"qsub", "-N", name, "-S", "/bin/sh", "-V", "-j", "oe", "-o", m.dir + "/logs/"};
    if (first != last) a.submit.insert(a.submit.end(), {"-J", fmt::format("{}-{}", first, last)});
    if (m.throttle > 0 && first != last)
      a.submit.insert(
          a.submit.end(),
          {"-W", fmt::format("max_run_subjobs={}", std::min<std::uint64_t>(m.throttle, a.count))});
    if (limit > 0) a.submit.insert(a.submit.end(), {"-l", "walltime=" + pbs_walltime(limit)});
    a.submit.insert(a.submit.end(), m.submit_args.begin(), m.submit_args.end());
    a.submit.push_back(a.script_path);
    plan.arrays.push_back(std::move(a));
  }
}

}  // namespace

Plan plan_arrays(const Manifest& m, std::uint64_t max_array_size, const std::string& ferry) {
  std::vector<std::uint64_t> all(m.grid.points.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  return plan_arrays(m, all, max_array_size, ferry);
}

Plan plan_arrays(const Manifest& m, const std::vector<std::uint64_t>& indexes,
                 std::uint64_t max_array_size, const std::string& ferry, const std::string& time) {
  if (m.dir.find('%') != std::string::npos)
    throw Error(fmt::format("{}: a '%' in the sweep directory would be read as part of sbatch's "
                            "--output pattern: choose another",
                            m.dir),
                Error::Kind::usage);
  std::string limit = time.empty() ? m.time : time;
  std::uint64_t limit_seconds = check_time_limit(limit);
  Plan plan;
  plan.dir = m.dir;
  plan.manifest = manifest_path(m.dir);
  plan.scheduler = job::scheduler_name(m.scheduler);
  plan.points = indexes.size();
  plan.max_array_size = max_array_size;
  for (const ArrayChunk& chunk : split_arrays(indexes, max_array_size)) {
    if (m.scheduler == job::Scheduler::pbs)
      plan_pbs(m, chunk, ferry, limit_seconds, plan);
    else
      plan_slurm(m, chunk, ferry, limit, plan);
  }
  return plan;
}

void write_scripts(const Plan& plan) {
  util::AtomicFileSet files;
  files.make_directories(plan.dir + "/logs", "log directory");
  for (const PlannedArray& a : plan.arrays) files.add(a.script_path, a.script, 0755);
  files.commit();
}

job::Scheduler choose_scheduler(std::string_view requested) {
  if (requested == "slurm") return job::Scheduler::slurm;
  if (requested == "pbs") return job::Scheduler::pbs;
  if (!requested.empty())
    throw Error(fmt::format("--scheduler '{}': expected slurm or pbs", util::printable(requested)),
                Error::Kind::usage);
  if (!util::on_path("sbatch") && util::on_path("qsub")) return job::Scheduler::pbs;
  return job::Scheduler::slurm;
}

void check_scheduler(job::Scheduler scheduler) {
  if (scheduler == job::Scheduler::slurm) {
    if (!util::on_path("sbatch"))
      throw Error(
          "no sbatch on PATH (nor PBS's qsub): ferry sweep submits job arrays; --dry-run "
          "writes the plan without one",
          Error::Kind::usage);
    return;
  }
  if (!util::on_path("qsub") || !util::on_path("qstat"))
    throw Error(
        "no qsub and qstat on PATH: --scheduler pbs submits through PBS's qsub; "
        "--dry-run writes the plan without it",
        Error::Kind::usage);
  util::CommandOutput version = util::run_command({"qstat", "--version"}, 60);
  if (version.out.find("pbs_version") == std::string::npos)
    throw Error(fmt::format("the qsub on PATH is not PBS Professional or OpenPBS (`qstat "
                            "--version` says '{}'): Torque's and Grid Engine's arrays are not "
                            "supported",
                            util::printable(util::trim(version.out + version.err))),
                Error::Kind::usage);
}

std::optional<std::string> parse_job_id(std::string_view sbatch_output) {
  std::string_view line = util::trim(sbatch_output);
  line = line.substr(0, line.find(';'));  // "123;cluster" on a federation
  constexpr std::string_view k_prefix = "Submitted batch job ";
  if (line.substr(0, k_prefix.size()) == k_prefix) line.remove_prefix(k_prefix.size());
  if (!util::parse_decimal(line, 4294967294U)) return std::nullopt;
  return std::string(line);
}

Submission submit(const Plan& plan) {
  Manifest m = read_manifest(plan.dir);
  m.submissions.emplace_back();
  m.submissions.back().time = iso_time(std::chrono::system_clock::now());
  Submission& submission = m.submissions.back();
  bool pbs = m.scheduler == job::Scheduler::pbs;
  for (const PlannedArray& a : plan.arrays) {
    std::vector<std::string> line = a.submit;
    if (a.after_previous && !submission.arrays.empty()) {
      const std::string& before = submission.arrays.back().job_id;
      if (pbs)
        line.insert(line.end() - 1, {"-W", "depend=afterany:" + before});
      else
        line.insert(line.end() - 1, "--dependency=afterany:" + before);
    }
    util::CommandOutput out = util::run_command(line, 300);
    std::optional<std::string> job_id;
    if (out.status == 0) job_id = pbs ? parse_pbs_job_id(out.out) : parse_job_id(out.out);
    if (!job_id) {
      std::vector<std::string> done;
      for (const ArrayJob& j : submission.arrays)
        done.push_back(
            fmt::format("{} (points {}-{})", j.job_id, j.offset, j.offset + j.count - 1));
      std::string why =
          out.status == 0
              ? fmt::format("printed '{}', not a job id", util::printable(out.out))
              : fmt::format("failed (exit status {}): {}", out.status, out.last_error_line());
      throw Error(fmt::format("`{}` {}; {}", util::command_line(line), why,
                              done.empty() ? std::string("nothing was submitted")
                                           : "submitted before it: " + util::join(done, ", ")));
    }
    submission.arrays.push_back({a.offset, a.count, a.tasks, *job_id});
    // On record at once: a later failure must not lose a job that is already queued.
    util::write_file_atomically(manifest_path(m.dir), manifest_json(m).dump(2) + "\n", 0644);
  }
  return submission;
}

}  // namespace ferry::sweep
