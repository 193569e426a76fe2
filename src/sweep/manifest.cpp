// DIR/sweep.json: what a sweep runs, written before anything is submitted; the run directories.
#include <ctime>

#include <fmt/format.h>
#include <sys/stat.h>
#include <nlohmann/json.hpp>

#include "sweep/sweep.hpp"

namespace ferry::sweep {
namespace {

using Json = nlohmann::ordered_json;

bool same_sweep(const Manifest& a, const Manifest& b) {
  return a.command == b.command && a.grid.names == b.grid.names && a.grid.points == b.grid.points;
}

[[noreturn]] void bad_manifest(const std::string& dir, const std::string& what) {
  throw Error(fmt::format("{}: {}", manifest_path(dir), what));
}

std::vector<std::string> strings(const Json& json, const std::string& dir, const char* key) {
  const Json& list = json.at(key);
  std::vector<std::string> out;
  for (const Json& item : list) {
    if (!item.is_string()) bad_manifest(dir, fmt::format("'{}' holds a non-string", key));
    out.push_back(item.get<std::string>());
  }
  return out;
}

}  // namespace

std::string iso_time(std::chrono::system_clock::time_point time) {
  auto since = time.time_since_epoch();
  std::time_t seconds = std::chrono::duration_cast<std::chrono::seconds>(since).count();
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since).count() % 1000;
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
}

std::string manifest_path(const std::string& dir) { return dir + "/sweep.json"; }
std::string run_dir(const std::string& dir, std::size_t index) {
  return fmt::format("{}/runs/{}", dir, index);
}

Json manifest_json(const Manifest& m) {
  Json json;
  json["sweep"] = 1;
  json["command"] = m.command;
  json["parameters"] = m.grid.names;
  Json points = Json::array();
  for (const auto& point : m.grid.points) {
    Json object = Json::object();
    for (std::size_t k = 0; k < m.grid.names.size(); ++k) object[m.grid.names[k]] = point[k];
    points.push_back(std::move(object));
  }
  json["points"] = std::move(points);
  json["env"] = m.env_dir;
  json["image"] = m.image;
  json["options"] = {{"scheduler", std::string(job::scheduler_name(m.scheduler))},
                     {"throttle", m.throttle},
                     {"time", m.time},
                     {"submit_args", m.submit_args}};
  json["submissions"] = m.submissions;
  return json;
}

Manifest parse_manifest(std::string_view text, const std::string& dir) {
  Json json = Json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object() || json.value("sweep", 0) != 1)
    bad_manifest(dir, "not a ferry sweep manifest");
  Manifest m;
  m.dir = dir;
  try {
    m.command = strings(json, dir, "command");
    m.grid.names = strings(json, dir, "parameters");
    for (const Json& object : json.at("points")) {
      std::vector<std::string> point;
      for (const std::string& name : m.grid.names) point.push_back(object.at(name));
      m.grid.points.push_back(std::move(point));
    }
    m.env_dir = json.at("env").get<std::string>();
    m.image = json.value("image", "");
    const Json& options = json.at("options");
    m.throttle = options.at("throttle").get<unsigned>();
    m.time = options.at("time").get<std::string>();
    std::string scheduler = options.value("scheduler", "slurm");
    if (scheduler == "pbs")
      m.scheduler = job::Scheduler::pbs;
    else if (scheduler != "slurm")
      bad_manifest(
          dir, fmt::format("scheduler '{}': expected slurm or pbs", util::printable(scheduler)));
    // sbatch_args: what manifests written before PBS called them.
    m.submit_args =
        strings(options, dir, options.contains("sbatch_args") ? "sbatch_args" : "submit_args");
    for (const Json& s : json.at("submissions")) {
      Submission submission;
      submission.time = s.at("time").get<std::string>();
      submission.cancelled = s.value("cancelled", "");
      for (const Json& a : s.at("arrays")) {
        ArrayJob job{a.at("offset").get<std::uint64_t>(), a.at("count").get<std::uint64_t>(),
                     a.value("tasks", ""), a.at("job_id").get<std::string>()};
        if (!parse_array_list(job.tasks))
          bad_manifest(dir, fmt::format("job {}: its tasks '{}' are not an array list", job.job_id,
                                        util::printable(job.tasks)));
        submission.arrays.push_back(std::move(job));
      }
      m.submissions.push_back(std::move(submission));
    }
  } catch (const nlohmann::json::exception& e) {
    bad_manifest(dir, fmt::format("malformed: {}", e.what()));
  }
  return m;
}

Manifest read_manifest(const std::string& dir) {
  std::string path = manifest_path(dir);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw Error(fmt::format("{}: no sweep here (no sweep.json)", dir));
  return parse_manifest(util::read_file(path), dir);
}

Manifest write_manifest(const Manifest& manifest) {
  Manifest m = manifest;
  struct stat st {};
  if (::stat(manifest_path(m.dir).c_str(), &st) == 0) {
    Manifest old = read_manifest(m.dir);
    if (!same_sweep(old, m))
      throw Error(
          fmt::format("{}: holds another sweep (its sweep.json has another command or other "
                      "points): choose another directory",
                      m.dir),
          Error::Kind::usage);
    m.submissions = old.submissions;
  }
  util::AtomicFileSet files;
  files.make_directories(m.dir, "sweep directory");
  for (std::size_t i = 0; i < m.grid.points.size(); ++i)
    files.make_directories(run_dir(m.dir, i), "run directory");
  files.add(manifest_path(m.dir), manifest_json(m).dump(2) + "\n", 0644);
  files.commit();
  return m;
}

}  // namespace ferry::sweep
