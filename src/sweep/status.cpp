// A sweep's status (its records, then squeue and sacct for the points without one), the choice of
// points to resubmit, and cancelling what is still queued.
#include <set>

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "sweep/sweep.hpp"

namespace ferry::sweep {
namespace {

using Json = nlohmann::json;

// Each point's array task in its last submission ("123_4"), and whether that submission was
// cancelled.
struct LastTask {
  std::string job;
  bool cancelled = false;
};
std::vector<LastTask> last_tasks(const Manifest& m) {
  std::vector<LastTask> out(m.grid.points.size());
  for (const Submission& s : m.submissions)
    for (const ArrayJob& a : s.arrays)
      for (std::uint64_t task : parse_array_list(a.tasks).value_or(std::vector<std::uint64_t>{}))
        if (a.offset + task < out.size())
          out[a.offset + task] = {task_job(m.scheduler, a.job_id, task), !s.cancelled.empty()};
  return out;
}

PointState from_record(const Json& record, PointStatus& p) {
  if (record.value("exit_code", Json()).is_number()) p.exit_code = record["exit_code"].get<int>();
  if (record.value("signal", Json()).is_number()) p.signal = record["signal"].get<int>();
  if (record.value("timeout", false)) return PointState::timeout;
  if (record.value("cancelled", false)) return PointState::cancelled;
  return p.exit_code == 0 ? PointState::done : PointState::failed;
}

// What sacct says of a task that ended before ferry could write its record.
std::optional<PointState> from_accounting(const std::string& state) {
  if (state == "CANCELLED" || state == "PREEMPTED") return PointState::cancelled;
  if (state == "TIMEOUT" || state == "DEADLINE") return PointState::timeout;
  if (state == "FAILED" || state == "NODE_FAIL" || state == "OUT_OF_MEMORY" || state == "BOOT_FAIL")
    return PointState::failed;
  return std::nullopt;
}

std::string state_of(const TaskStates* states, const std::string& job) {
  if (!states || job.empty()) return "";
  auto it = states->find(job);
  return it == states->end() ? "" : it->second;
}

std::optional<TaskStates> ask(const std::vector<std::string>& argv) {
  if (!util::on_path(argv[0])) return std::nullopt;
  util::CommandOutput out = util::run_command(argv, 60);
  if (out.status != 0) return std::nullopt;  // no controller, no accounting storage
  return argv[0] == "qstat" ? parse_pbs_task_states(out.out) : parse_task_states(out.out);
}

}  // namespace

TaskStates parse_task_states(std::string_view text) {
  TaskStates states;
  for (std::string_view line : util::split(text, '\n')) {
    line = util::trim(line);
    std::size_t bar = line.find('|');
    if (bar == std::string_view::npos) continue;
    std::string job(util::trim(line.substr(0, bar)));
    std::string_view state = util::trim(line.substr(bar + 1));
    state = state.substr(0, state.find(' '));  // "CANCELLED by 0"
    std::size_t open = job.find("_[");
    if (open != std::string::npos && job.back() == ']') {
      std::string_view list(job);
      list = list.substr(open + 2, list.size() - open - 3);
      for (std::uint64_t task : parse_array_list(list).value_or(std::vector<std::uint64_t>{}))
        states[fmt::format("{}_{}", job.substr(0, open), task)] = std::string(state);
    } else if (!job.empty()) {
      states[job] = std::string(state);
    }
  }
  return states;
}

SweepStatus combine_status(const Manifest& m, const std::vector<Json>& records,
                           const TaskStates* queue, const TaskStates* accounting) {
  SweepStatus s;
  s.dir = m.dir;
  s.points = m.grid.points.size();
  s.queue_known = queue != nullptr;
  std::vector<LastTask> last = last_tasks(m);
  for (std::uint64_t i = 0; i < s.points; ++i) {
    PointStatus p;
    p.index = i;
    p.job = last[i].job;
    std::string queued = state_of(queue, p.job), accounted = state_of(accounting, p.job);
    std::optional<PointState> ended = from_accounting(accounted);
    if (queued == "RUNNING" || queued == "COMPLETING")
      p.state = PointState::running;
    else if (!queued.empty() && queued != "COMPLETED" && !from_accounting(queued))
      p.state = PointState::pending;  // PENDING, CONFIGURING, SUSPENDED, REQUEUED...
    else if (i < records.size() && records[i].is_object())
      p.state = from_record(records[i], p);
    else if (ended)
      p.state = *ended;
    else if (last[i].cancelled)
      p.state = PointState::cancelled;
    switch (p.state) {
      case PointState::done: ++s.done; break;
      case PointState::failed: ++s.failed; break;
      case PointState::timeout: ++s.timeout; break;
      case PointState::cancelled: ++s.cancelled; break;
      case PointState::running: ++s.running; break;
      case PointState::pending: ++s.pending; break;
      case PointState::never_ran: ++s.never_ran; break;
    }
    s.results.push_back(std::move(p));
  }
  return s;
}

SweepStatus sweep_status(const std::string& dir) {
  Manifest m = read_manifest(util::absolute_path(dir));
  std::vector<Json> records;
  for (std::uint64_t i = 0; i < m.grid.points.size(); ++i) {
    std::string path = run_dir(m.dir, i) + "/result.json";
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      records.emplace_back();
      continue;
    }
    Json json = Json::parse(util::read_file(path), nullptr, false);
    if (json.is_discarded() || !json.is_object())
      throw Error(fmt::format("{}: not a result record", path));
    records.push_back(std::move(json));
  }
  std::optional<TaskStates> queue, accounting;
  if (!m.submissions.empty()) {
    std::vector<std::string> ids;
    for (const Submission& s : m.submissions)
      for (const ArrayJob& a : s.arrays) ids.push_back(a.job_id);
    if (m.scheduler == job::Scheduler::pbs) {
      // -x: finished jobs too (the server's job history), so one answer serves as both.
      std::vector<std::string> argv = {"qstat", "-t", "-x", "-f", "-F", "json"};
      argv.insert(argv.end(), ids.begin(), ids.end());
      queue = ask(argv);
      accounting = queue;
    } else {
      queue = ask({"squeue", "--noheader", "--array", "--me", "--format=%i|%T"});
      accounting = ask({"sacct", "--noheader", "--parsable2", "--allocations",
                        "--jobs=" + util::join(ids, ","), "--format=JobID,State"});
    }
  }
  return combine_status(m, records, queue ? &*queue : nullptr, accounting ? &*accounting : nullptr);
}

void to_json(nlohmann::ordered_json& json, const PointStatus& p) {
  json["index"] = p.index;
  json["state"] = p.state;
  json["exit_code"] = p.exit_code ? nlohmann::ordered_json(*p.exit_code) : nullptr;
  json["signal"] = p.signal ? nlohmann::ordered_json(*p.signal) : nullptr;
  json["job"] = p.job;
}

std::vector<std::uint64_t> parse_index_list(std::string_view list, std::uint64_t points) {
  std::optional<std::vector<std::uint64_t>> ids =
      list.find('%') == std::string_view::npos ? parse_array_list(list) : std::nullopt;
  if (!ids)
    throw Error(fmt::format("--index '{}': expected a list such as 3,5-7", util::printable(list)),
                Error::Kind::usage);
  for (std::uint64_t id : *ids)
    if (id >= points)
      throw Error(fmt::format("--index {}: the sweep has points 0-{}", id, points - 1),
                  Error::Kind::usage);
  return *ids;
}

std::vector<std::uint64_t> choose_points(const SweepStatus& status, bool failed, bool missing,
                                         const std::vector<std::uint64_t>& indexes) {
  std::set<std::uint64_t> chosen(indexes.begin(), indexes.end());
  for (const PointStatus& p : status.results) {
    bool queued = p.state == PointState::running || p.state == PointState::pending;
    if (queued && chosen.count(p.index))
      throw Error(fmt::format("point {} is {} (job {}): cancel it first, or leave it out", p.index,
                              util::name(p.state), p.job),
                  Error::Kind::usage);
    if (failed && (p.state == PointState::failed || p.state == PointState::timeout ||
                   p.state == PointState::cancelled))
      chosen.insert(p.index);
    if (missing && p.state == PointState::never_ran) chosen.insert(p.index);
  }
  return {chosen.begin(), chosen.end()};
}

std::vector<std::string> cancel_sweep(const std::string& dir) {
  SweepStatus status = sweep_status(dir);
  Manifest m = read_manifest(util::absolute_path(dir));
  if (!status.queue_known)
    throw Error(fmt::format("{}: {} does not answer, so what is queued is not known", dir,
                            m.scheduler == job::Scheduler::pbs ? "qstat" : "squeue"));
  std::set<std::string> queued;
  for (const PointStatus& p : status.results)
    if (p.state == PointState::running || p.state == PointState::pending)
      queued.insert(array_of_task(m.scheduler, p.job));
  if (queued.empty()) return {};
  std::vector<std::string> ids(queued.begin(), queued.end());
  std::vector<std::string> argv = {m.scheduler == job::Scheduler::pbs ? "qdel" : "scancel"};
  argv.insert(argv.end(), ids.begin(), ids.end());
  util::CommandOutput out = util::run_command(argv, 120);
  if (out.status != 0)
    throw Error(fmt::format("`{}` failed (exit status {}): {}", util::command_line(argv),
                            out.status, out.last_error_line()));
  std::string now = iso_time(std::chrono::system_clock::now());
  for (Submission& s : m.submissions)
    for (const ArrayJob& a : s.arrays)
      if (queued.count(a.job_id)) s.cancelled = now;
  util::write_file_atomically(manifest_path(m.dir), manifest_json(m).dump(2) + "\n", 0644);
  return ids;
}

}  // namespace ferry::sweep
