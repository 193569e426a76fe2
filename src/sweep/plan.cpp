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
  const char* path = std::getenv("PATH");
  bool found = false;
  for (std::string_view part : util::split(path ? path : "", ':'))
    if (!part.empty() && ::access((std::string(part) + "/scontrol").c_str(), X_OK) == 0)
      found = true;
  if (!found) return k_default_max_array_size;
  // A client without a reachable controller (a login node of another cluster, a test machine):
  // the default, and sbatch itself refuses an array that is too large.
  util::CommandOutput out = util::run_command({"scontrol", "show", "config"}, 60);
  if (out.status != 0) return k_default_max_array_size;
  return parse_max_array_size(out.out).value_or(k_default_max_array_size);
}

std::vector<ArrayChunk> split_arrays(std::uint64_t points, std::uint64_t max_array_size) {
  if (max_array_size == 0)
    throw Error("MaxArraySize is 0: job arrays are disabled on this cluster");
  std::vector<ArrayChunk> chunks;
  for (std::uint64_t offset = 0; offset < points; offset += max_array_size)
    chunks.push_back({offset, std::min(max_array_size, points - offset)});
  return chunks;
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
  if (m.dir.find('%') != std::string::npos)
    throw Error(fmt::format("{}: a '%' in the sweep directory would be read as part of sbatch's "
                            "--output pattern: choose another",
                            m.dir),
                Error::Kind::usage);
  Plan plan;
  plan.dir = m.dir;
  plan.manifest = manifest_path(m.dir);
  plan.points = m.grid.points.size();
  plan.max_array_size = max_array_size;
  std::string name = m.dir.substr(m.dir.find_last_of('/') + 1);
  for (const ArrayChunk& chunk : split_arrays(plan.points, max_array_size)) {
    PlannedArray a;
    a.offset = chunk.offset;
    a.count = chunk.count;
    a.script_path = fmt::format("{}/array-{}.sbatch", m.dir, chunk.offset);
    a.script = batch_script(m, chunk.offset, ferry);
    std::string array = fmt::format("--array=0-{}", chunk.count - 1);
    if (m.throttle > 0)
      array += fmt::format("%{}", std::min<std::uint64_t>(m.throttle, chunk.count));
    a.sbatch = {"sbatch",
                "--parsable",
                "--job-name=sweep-" + name,
                array,
                "--output=" + m.dir + "/logs/%A_%a.out",
                "--open-mode=append",
                "--signal=B:USR1@60"};
    if (!m.time.empty()) a.sbatch.push_back("--time=" + m.time);
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
  m.submissions.push_back({iso_time(std::chrono::system_clock::now()), {}});
  Submission& submission = m.submissions.back();
  for (const PlannedArray& a : plan.arrays) {
    util::CommandOutput out = util::run_command(a.sbatch, 300);
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
      throw Error(fmt::format("`{}` {}; {}", util::command_line(a.sbatch), why,
                              done.empty() ? std::string("nothing was submitted")
                                           : "submitted before it: " + util::join(done, ", ")));
    }
    submission.arrays.push_back({a.offset, a.count, *job_id});
    // On record at once: a later failure must not lose a job that is already queued.
    util::write_file_atomically(manifest_path(m.dir), manifest_json(m).dump(2) + "\n", 0644);
  }
  return submission;
}

}  // namespace ferry::sweep
