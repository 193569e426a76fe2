// What PBS (OpenPBS, PBS Professional) prints: max_array_size, qsub's job ids, qstat's states.
#include <cctype>
#include <climits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sweep/sweep.hpp"

namespace ferry::sweep {
namespace {

// "123[4].server" -> {"123", "4", ".server"}; "124.server" -> {"124", nullopt, ".server"}.
struct PbsId {
  std::string sequence;
  std::optional<std::string> index;  // inside the brackets ("" for the array itself)
  std::string server;                // from its '.', or empty
};
std::optional<PbsId> split_pbs_id(std::string_view id) {
  PbsId out;
  std::size_t end = 0;
  while (end < id.size() && std::isdigit(static_cast<unsigned char>(id[end]))) ++end;
  if (end == 0) return std::nullopt;
  out.sequence = id.substr(0, end);
  id.remove_prefix(end);
  if (!id.empty() && id[0] == '[') {
    std::size_t close = id.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view inside = id.substr(1, close - 1);
    if (!inside.empty() && !util::parse_decimal(inside, UINT_MAX)) return std::nullopt;
    out.index = std::string(inside);
    id.remove_prefix(close + 1);
  }
  if (!id.empty() && id[0] != '.') return std::nullopt;
  for (char c : id)
    if (std::isspace(static_cast<unsigned char>(c))) return std::nullopt;
  out.server = id;
  return out;
}

std::string pbs_state_word(const nlohmann::json& job) {
  std::string state = job.value("job_state", "");
  if (state == "R") return "RUNNING";
  if (state == "E") return "COMPLETING";
  if (state == "Q" || state == "H" || state == "W" || state == "T" || state == "S" ||
      state == "U" || state == "M")
    return "PENDING";
  if (state != "F" && state != "X") return "";
  // Exit_status: the script's exit status; 256 + N when signal N ended it (qdel, the walltime);
  // negative when PBS could not start it (JOB_EXEC_*).
  const nlohmann::json& exit = job.contains("Exit_status") ? job["Exit_status"] : nlohmann::json();
  long status = 0;
  if (exit.is_number_integer())
    status = exit.get<long>();
  else if (exit.is_string())
    status = std::strtol(exit.get<std::string>().c_str(), nullptr, 10);
  if (status >= 256) return "CANCELLED";
  if (status < 0) return "FAILED";
  return "COMPLETED";
}

}  // namespace

std::optional<std::uint64_t> parse_pbs_max_array_size(std::string_view qstat_server) {
  auto values = util::key_value_lines(qstat_server, '=');
  auto it = values.find("max_array_size");
  if (it == values.end()) return std::nullopt;
  std::optional<unsigned> size = util::parse_decimal(it->second, 100000000);
  if (!size || *size == 0) return std::nullopt;
  return *size;
}

std::optional<std::string> parse_pbs_job_id(std::string_view qsub_output) {
  std::string_view line = util::trim(qsub_output);
  std::optional<PbsId> id = split_pbs_id(line);
  if (!id || (id->index && !id->index->empty())) return std::nullopt;
  return std::string(line);
}

TaskStates parse_pbs_task_states(std::string_view qstat_json) {
  TaskStates states;
  nlohmann::json json = nlohmann::json::parse(qstat_json, nullptr, false);
  if (json.is_discarded() || !json.is_object() || !json.contains("Jobs") ||
      !json["Jobs"].is_object())
    return states;
  for (const auto& [id, job] : json["Jobs"].items()) {
    if (!job.is_object() || job.value("job_state", "") == "B") continue;
    std::string word = pbs_state_word(job);
    if (!word.empty()) states[id] = word;
  }
  return states;
}

std::string task_job(job::Scheduler scheduler, const std::string& job_id, std::uint64_t task) {
  if (scheduler != job::Scheduler::pbs) return fmt::format("{}_{}", job_id, task);
  std::optional<PbsId> id = split_pbs_id(job_id);
  if (!id || !id->index) return job_id;  // a plain job: its one task
  return fmt::format("{}[{}]{}", id->sequence, task, id->server);
}

std::string array_of_task(job::Scheduler scheduler, const std::string& task_job) {
  if (scheduler != job::Scheduler::pbs) return task_job.substr(0, task_job.find('_'));
  std::optional<PbsId> id = split_pbs_id(task_job);
  if (!id || !id->index) return task_job;
  return fmt::format("{}[]{}", id->sequence, id->server);
}

}  // namespace ferry::sweep
