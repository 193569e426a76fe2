// Points into job arrays: the site's MaxArraySize, chunks with offsets, the sbatch lines and the
// batch scripts, and the submission itself.
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

std::uint64_t site_max_array_size() {
  if (!util::on_path("scontrol")) return k_default_max_array_size;
  // A client without a reachable controller (a login node of another cluster, a test machine):
  // the default, and sbatch itself refuses an array that is too large.
  util::CommandOutput out = util::run_command({"scontrol", "show", "config"}, 60);
  if (out.status != 0) return k_default_max_array_size;
  return parse_max_array_size(out.out).value_or(k_default_max_array_size);
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

std::string array_list(const std::vector<std::uint64_t>& ids) {
  std::string out;
  for (std::size_t i = 0; i < ids.size();) {
    std::size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j == i ? fmt::format("{}", ids[i]) : fmt::format("{}-{}", ids[i], ids[j]);
    i = j + 1;
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

std::string batch_script(const Manifest& m, std::uint64_t offset, const std::string& ferry) {
  // exec: ferry becomes the batch shell, so Slurm's B:USR1 warning reaches it.
  return fmt::format(
      "#!/bin/sh\n"
      "# ferry sweep: the array starting at point {} of {} (written by ferry sweep submit)\n"
      "exec {} sweep run {} --offset {}\n",
      offset, manifest_path(m.dir), util::shell_quote(ferry), util::shell_quote(m.dir), offset);
}

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
  Plan plan;
  plan.dir = m.dir;
  plan.manifest = manifest_path(m.dir);
  plan.points = indexes.size();
  plan.max_array_size = max_array_size;
  std::string name = m.dir.substr(m.dir.find_last_of('/') + 1);
  for (const ArrayChunk& chunk : split_arrays(indexes, max_array_size)) {
    PlannedArray a;
    a.offset = chunk.offset;
    a.count = chunk.tasks.size();
    a.tasks = array_list(chunk.tasks);
    a.after_previous = m.throttle > 0 && !plan.arrays.empty();
    a.script_path = fmt::format("{}/array-{}.sbatch", m.dir, chunk.offset);
    a.script = batch_script(m, chunk.offset, ferry);
    std::string array = "--array=" + a.tasks;
    if (m.throttle > 0) array += fmt::format("%{}", std::min<std::uint64_t>(m.throttle, a.count));
    a.sbatch = {"sbatch",
                "--parsable",
                "--job-name=sweep-" + name,
                array,
                "--output=" + m.dir + "/logs/%A_%a.out",
                "--open-mode=append",
                "--signal=B:USR1@60"};
    if (!time.empty() || !m.time.empty())
      a.sbatch.push_back("--time=" + (time.empty() ? m.time : time));
    a.sbatch.insert(a.sbatch.end(), m.sbatch_args.begin(), m.sbatch_args.end());
    a.sbatch.push_back(a.script_path);
    plan.arrays.push_back(std::move(a));
  }
  return plan;
}

void write_scripts(const Plan& plan) {
  util::AtomicFileSet files;
  files.make_directories(plan.dir + "/logs", "log directory");
  for (const PlannedArray& a : plan.arrays) files.add(a.script_path, a.script, 0755);
  files.commit();
}

void check_scheduler() {
  if (!util::on_path("sbatch"))
    throw Error(
        "no sbatch on PATH: ferry sweep submits Slurm job arrays (PBS's qsub -J is not "
        "built yet); --dry-run writes the plan without it",
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
  for (const PlannedArray& a : plan.arrays) {
    std::vector<std::string> line = a.sbatch;
    if (a.after_previous && !submission.arrays.empty())
      line.insert(line.end() - 1, "--dependency=afterany:" + submission.arrays.back().job_id);
    util::CommandOutput out = util::run_command(line, 300);
    std::optional<std::string> job_id;
    if (out.status == 0) job_id = parse_job_id(out.out);
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
