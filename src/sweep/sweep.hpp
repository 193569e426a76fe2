// ferry::sweep — parameter sweeps as scheduler job arrays (on job, and env for activation).
//
// A sweep is a command template and a list of points (one value per parameter each). It lives in
// a directory DIR:
//
//   DIR/sweep.json          the manifest (below), written atomically before anything is submitted
//   DIR/runs/INDEX/         one per point: the command's working directory, its `log` (stdout and
//                           stderr, appended) and `result.json` (written atomically when it ends);
//                           a rerun first moves the last record to history/N.json
//   DIR/array-OFFSET.sbatch the batch script of the array whose first point is OFFSET (PBS:
//                           DIR/array-OFFSET-FIRST.pbs, FIRST its first task)
//   DIR/logs/%A_%a.out      what ferry itself says in each array task
//
// The manifest is one JSON object:
//   {"sweep": 1, "command": [word...], "parameters": [name...],
//    "points": [{name: value, ...}, ...]   (in index order),
//    "env": DIR or "", "image": IMAGE or "", "options": {"scheduler": "slurm" or "pbs",
//    "throttle": K or 0, "time": T or "", "submit_args": [...]},
//    "submissions": [{"time": ISO-8601, "cancelled": ISO-8601 or "",
//                     "arrays": [{"offset", "count", "tasks", "job_id"}...]}...]}
// An array's tasks are written as Slurm's --array list ("0-11", "3,7-8"); task T runs point
// offset + T. job_id is what the scheduler printed ("123"; PBS: "123[].server", or "124.server"
// for a plain job of one task).
// Two manifests are the same sweep when command, parameters and points are equal; resubmitting
// the same sweep keeps its submissions and appends one. Values are kept byte for byte (they are
// never given to a shell) and must be UTF-8, as JSON requires.
//
// Order of points: the Cartesian product of the parameters as given, the last varying fastest
// (Hydra's sweeper, itertools.product); --zip pairs the i-th values instead; a --from file lists
// the points in its row order.
//
// Writing values on the command line: NAME=V1,V2,... splits at commas; `\,` is a literal comma
// and `\\` a literal backslash; any other backslash is kept as it is (so 'a\b' stays a\b).
// NAME=a,,b has three values, the middle one empty, and NAME= one empty value.
//
// Templating: in each word of the command, {NAME} is the point's value, {index} its index and
// {dir} its directory DIR/runs/INDEX; {{ and }} are literal braces. A word stays one argv word.
//
// Arrays: Slurm's task ids stay below the site's MaxArraySize (`scontrol show config`), so points
// are grouped by offset = index - index % MaxArraySize, each group one `sbatch --array=LIST[%K]`;
// a task runs point offset + SLURM_ARRAY_TASK_ID (PBS_ARRAY_INDEX under PBS). With a throttle K
// each array after the first waits for the one before (--dependency=afterany), so that no more
// than K tasks of the sweep run at once. Slurm is asked for SIGUSR1 to the batch shell 60 s
// before the time limit (--signal=B:USR1@60; the script execs ferry, so ferry is that shell).
// The warning is only noted: a SIGTERM after it (the limit) records a timeout, a SIGTERM without
// it (scancel, preemption) a cancellation; either stops the command's process group (SIGTERM,
// then SIGKILL).
//
// PBS (OpenPBS, PBS Professional): `qsub -J X-Y` takes one range (X < Y), no list, so each run of
// consecutive task ids in a group is one array, and a run of one task is a plain job whose script
// names its task (--task). The group size is the server's max_array_size (`qstat -Bf`). The
// throttle is -W max_run_subjobs=K, the chaining -W depend=afterany:<id>, the time -l walltime,
// and -V passes the submitting environment on as sbatch does by default. PBS sends no warning
// before the walltime, so the script tells ferry the limit (--time-limit) and a SIGTERM in the
// last k_limit_slack_seconds of it counts as the timeout. --time is written as sbatch's --time
// ("30", "1:00:00", "2-00:00:00") for either scheduler.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "job/job.hpp"
#include "util/util.hpp"

namespace ferry::sweep {

// ---------------------------------------------------------------------------------------------
// Points

struct Parameter {
  std::string name;
  std::vector<std::string> values;
};

// True for a word of the form NAME=..., NAME being letters, digits, '_', '.' and '-' (not first).
bool is_parameter_word(std::string_view word);
// "NAME=V1,V2,..." with the escapes above. Errors (usage) name the word.
Parameter parse_parameter(std::string_view word);

// The points, each holding one value per name, in the order of names.
struct Grid {
  std::vector<std::string> names;
  std::vector<std::vector<std::string>> points;
};

// The Cartesian product, the last parameter varying fastest.
Grid product(const std::vector<Parameter>& parameters);
// The i-th values together; every list must be as long as the first, else a usage error listing
// the lengths ("--zip: the lists differ in length: lr has 3, bs has 2").
Grid zip(const std::vector<Parameter>& parameters);
// Rows of a file: CSV (first line the names; RFC 4180 quotes) or JSON (a list of objects with the
// same keys; strings as they are, numbers and booleans as JSON writes them). JSON when the file's
// first non-blank byte is '[', else CSV.
Grid read_points(const std::string& path);
Grid parse_points_csv(std::string_view text, std::string_view subject);
Grid parse_points_json(std::string_view text, std::string_view subject);
// Checks names (no duplicates, none named index or dir, the allowed characters) and that the grid
// is not empty: usage errors.
void check_grid(const Grid& grid);

// ---------------------------------------------------------------------------------------------
// Templating

// The words with {NAME}, {index}, {dir}, {{ and }} replaced. A {NAME} that is not a parameter, a
// lone brace, an unclosed one: Error (usage) naming it and the word.
std::vector<std::string> expand_command(const std::vector<std::string>& command, const Grid& grid,
                                        std::size_t index, const std::string& run_dir);
// The same checks without a point: what submit runs before it writes anything.
void check_command(const std::vector<std::string>& command, const std::vector<std::string>& names);

// ---------------------------------------------------------------------------------------------
// The manifest

struct ArrayJob {
  std::uint64_t offset = 0, count = 0;
  std::string tasks{};  // Slurm's --array list, without the throttle
  std::string job_id{};
};
FERRY_JSON_FIELDS(ArrayJob, offset, count, tasks, job_id)

struct Submission {
  std::string time{};
  std::string cancelled{};  // when ferry sweep cancel stopped what was left of it, or empty
  std::vector<ArrayJob> arrays{};
};
FERRY_JSON_FIELDS(Submission, time, cancelled, arrays)

struct Manifest {
  std::string dir;  // absolute
  std::vector<std::string> command;
  Grid grid;
  std::string env_dir;  // absolute, or empty
  std::string image;    // a Charliecloud image each point runs in (ferry run), or empty
  job::Scheduler scheduler = job::Scheduler::slurm;  // slurm or pbs
  unsigned throttle = 0;                             // 0: no limit
  std::string time;                                  // sbatch --time's form, or empty
  std::vector<std::string> submit_args;              // more sbatch (or qsub) arguments
  std::vector<Submission> submissions;
};

// "2024-05-01T12:00:00.123Z": the times manifests and results record.
std::string iso_time(std::chrono::system_clock::time_point time);

std::string manifest_path(const std::string& dir);               // DIR/sweep.json
std::string run_dir(const std::string& dir, std::size_t index);  // DIR/runs/INDEX
nlohmann::ordered_json manifest_json(const Manifest& manifest);
Manifest parse_manifest(std::string_view text, const std::string& dir);
Manifest read_manifest(const std::string& dir);
// Writes DIR/sweep.json atomically and makes DIR/runs/INDEX for every point. A DIR holding another
// sweep is refused (usage error); the same sweep keeps its submissions. Returns what was written.
Manifest write_manifest(const Manifest& manifest);

// ---------------------------------------------------------------------------------------------
// The array plan

// MaxArraySize from `scontrol show config` ("MaxArraySize            = 1001"), or PBS's
// max_array_size from `qstat -Bf` ("    max_array_size = 10000"); nullopt when the text has no
// such line.
std::optional<std::uint64_t> parse_max_array_size(std::string_view scontrol_config);
std::optional<std::uint64_t> parse_pbs_max_array_size(std::string_view qstat_server);
constexpr std::uint64_t k_default_max_array_size = 1001;       // Slurm's default
constexpr std::uint64_t k_default_pbs_max_array_size = 10000;  // PBS's default
// This site's, asked of the scheduler where its command is on PATH, else (or when it fails or
// says nothing of it) the scheduler's default.
std::uint64_t site_max_array_size(job::Scheduler scheduler = job::Scheduler::slurm);

// A time limit written as sbatch's --time: "M", "M:S", "H:M:S", "D-H", "D-H:M", "D-H:M:S", in
// seconds; nullopt for anything else (and for Slurm's "UNLIMITED", which has no walltime).
std::optional<std::uint64_t> parse_time_limit(std::string_view time);
// "--time 'x': ..." usage error unless parse_time_limit takes it (empty: no limit, 0).
std::uint64_t check_time_limit(std::string_view time);
// PBS's -l walltime form: 5400 -> "01:30:00" (hours past 99 stay whole: "100:00:00").
std::string pbs_walltime(std::uint64_t seconds);
// A SIGTERM this close to the time limit a PBS script names is the limit's (PBS's MoM checks
// walltime every few seconds; ferry starts a moment after the job).
constexpr double k_limit_slack_seconds = 15;

struct ArrayChunk {
  std::uint64_t offset = 0;
  std::vector<std::uint64_t> tasks;  // ascending, each below max_array_size
};
// The points (ascending, no repeats) grouped by offset = index - index % max_array_size, in order
// (12 points, 5 -> offsets 0, 5, 10 with tasks 0-4, 0-4, 0-1).
std::vector<ArrayChunk> split_arrays(const std::vector<std::uint64_t>& indexes,
                                     std::uint64_t max_array_size);
// Task ids as Slurm's --array list, runs joined: {0,1,2,5,7,8} -> "0-2,5,7-8".
std::string array_list(const std::vector<std::uint64_t>& ids);
// The reverse; nullopt for anything that is not such a list (a throttle "%K" is ignored).
std::optional<std::vector<std::uint64_t>> parse_array_list(std::string_view list);

struct PlannedArray {
  std::uint64_t offset = 0, count = 0;
  std::string tasks;            // the --array list, without the throttle
  bool after_previous = false;  // submitted depending on (afterany) the array before
  std::string script_path, script;
  std::vector<std::string> submit;  // the sbatch (or qsub) command line, script path last
};
FERRY_JSON_FIELDS(PlannedArray, offset, count, tasks, after_previous, script_path, script, submit)

struct Plan {
  std::string dir, manifest, scheduler;
  std::uint64_t points = 0, max_array_size = 0;
  std::vector<PlannedArray> arrays;
};
FERRY_JSON_FIELDS(Plan, dir, manifest, scheduler, points, max_array_size, arrays)

// ferry: the absolute path of the ferry the tasks run. Every point, or those of `indexes`
// (ascending, no repeats: a resubmission); `time`, when given, instead of the manifest's. The
// manifest's scheduler says which command lines and scripts.
Plan plan_arrays(const Manifest& manifest, std::uint64_t max_array_size, const std::string& ferry);
Plan plan_arrays(const Manifest& manifest, const std::vector<std::uint64_t>& indexes,
                 std::uint64_t max_array_size, const std::string& ferry,
                 const std::string& time = "");
// Writes each array's script (atomically, 0755).
void write_scripts(const Plan& plan);
// The scheduler a submission uses: `requested` ("slurm", "pbs") or, when empty, Slurm where
// sbatch is on PATH, else PBS where qsub is, else Slurm (which check_scheduler then refuses).
job::Scheduler choose_scheduler(std::string_view requested);
// Its submit command on PATH (and, for PBS, a qstat that says pbs_version: Torque's and Grid
// Engine's qsub take other options), else a usage error: what submit checks before it writes
// anything.
void check_scheduler(job::Scheduler scheduler);
// Runs each line in turn (an array after_previous depending on the job id of the one before),
// recording each job id in the manifest (atomically) as soon as it is known, so a failure
// part-way leaves the arrays submitted so far on record. Returns the submission.
Submission submit(const Plan& plan);
// The job id sbatch printed: "123" or "123;cluster" (--parsable), or "Submitted batch job 123";
// nullopt for anything else.
std::optional<std::string> parse_job_id(std::string_view sbatch_output);
// The job id qsub printed: "123[].server" (an array), "124.server", or without the server.
std::optional<std::string> parse_pbs_job_id(std::string_view qsub_output);

// ---------------------------------------------------------------------------------------------
// The task side: ferry sweep run

struct RunResult {
  std::uint64_t index = 0;
  std::vector<std::string> command;
  std::optional<int> exit_code, signal;
  bool timeout = false;    // stopped at the time limit (SIGTERM after Slurm's warning)
  bool cancelled = false;  // stopped otherwise (scancel, preemption, Ctrl-C)
  std::string start, end;  // ISO-8601, UTC
  double seconds = 0;
  std::string host, job_id, array_job_id, array_task_id;
};

struct RunOptions {
  std::uint64_t offset = 0;
  std::optional<std::uint64_t> task;  // instead of SLURM_ARRAY_TASK_ID or PBS_ARRAY_INDEX
  std::uint64_t time_limit = 0;       // seconds (PBS), 0: unknown or none
  double grace_seconds = 10;
};

// Runs point offset + task (SLURM_ARRAY_TASK_ID or PBS_ARRAY_INDEX) of the sweep in DIR: its
// command in
// DIR/runs/INDEX (ferry changes its own directory there) in a process group of its own, stdout
// and stderr appended to its log, the sweep's env (if any) activated as `ferry activate` would
// (env::activated_environ), or inside the sweep's image (`ferry run IMAGE -- COMMAND`: the
// image's environment, the point's directory bound). SIGTERM or SIGINT meanwhile stop the command's
// group (SIGTERM, up to grace_seconds, SIGKILL), as a timeout when SIGUSR1 (Slurm's warning) came
// first or the time limit is within k_limit_slack_seconds, else as a cancellation, recorded at
// once (exit_code and signal null) and again when the command has ended. Moves an earlier record
// to history/, writes result.json atomically, returns it.
RunResult run_point(const std::string& dir, const RunOptions& options, const job::Environ& env);
// result.json's form (exit_code and signal: the one that applies, the other null).
void to_json(nlohmann::ordered_json& json, const RunResult& result);

// ---------------------------------------------------------------------------------------------
// Status: the result records, and the scheduler for what has none

enum class PointState { done, failed, timeout, cancelled, running, pending, never_ran };
NLOHMANN_JSON_SERIALIZE_ENUM(PointState, {{PointState::done, "done"},
                                          {PointState::failed, "failed"},
                                          {PointState::timeout, "timeout"},
                                          {PointState::cancelled, "cancelled"},
                                          {PointState::running, "running"},
                                          {PointState::pending, "pending"},
                                          {PointState::never_ran, "never ran"}})

struct PointStatus {
  std::uint64_t index = 0;
  PointState state = PointState::never_ran;
  std::optional<int> exit_code, signal;
  std::string job;  // the array task of its last submission ("123_4"), or empty
};

void to_json(nlohmann::ordered_json& json, const PointStatus& point);

// Array tasks ("123_4") and the scheduler's state of each ("RUNNING", "CANCELLED"), from
// `squeue --noheader --array --format=%i|%T` or `sacct --noheader --parsable2 --format=JobID,State`
// (a state's words after the first, "CANCELLED by 0", are dropped; lines of a whole pending array,
// "123_[5-11%2]", become one entry per task).
using TaskStates = std::map<std::string, std::string>;
TaskStates parse_task_states(std::string_view text);
// The same from PBS's `qstat -t -x -f -F json IDS` (queued and finished jobs alike), states in
// Slurm's words: R RUNNING, E COMPLETING, Q H W T S U M PENDING, F and X COMPLETED (CANCELLED
// when the exit status says a signal ended it, >= 256; FAILED when PBS could not start it, < 0).
// Array parents (B) are left out.
TaskStates parse_pbs_task_states(std::string_view qstat_json);
// The scheduler's name of task T of an array job: Slurm "123_4"; PBS "123[4].server", and a
// plain job ("124.server", one task) its own id.
std::string task_job(job::Scheduler scheduler, const std::string& job_id, std::uint64_t task);
// The reverse's job part: the array a task_job belongs to ("123_4" -> "123",
// "123[4].server" -> "123[].server").
std::string array_of_task(job::Scheduler scheduler, const std::string& task_job);

struct SweepStatus {
  std::string dir;
  std::uint64_t points = 0, done = 0, failed = 0, timeout = 0, cancelled = 0, running = 0,
                pending = 0, never_ran = 0;
  bool queue_known = false;  // squeue answered (else running and pending cannot be told)
  std::vector<PointStatus> results;
};
FERRY_JSON_FIELDS(SweepStatus, dir, points, done, failed, timeout, cancelled, running, pending,
                  never_ran, queue_known, results)

// Each point: queued in its last submission (squeue) -> pending or running; else its record;
// else what sacct says of that task (where accounting answers); else cancelled when its
// submission was, else never ran. records[i]: point i's result.json, or null.
SweepStatus combine_status(const Manifest& manifest, const std::vector<nlohmann::json>& records,
                           const TaskStates* queue, const TaskStates* accounting);
// The above from DIR, asking squeue and sacct (this user's jobs; PBS: qstat) when the sweep was
// submitted.
SweepStatus sweep_status(const std::string& dir);

// ferry sweep resubmit's choice, from a status: failed (failed, timeout and cancelled records),
// missing (no record and not queued), and explicit indexes (even done points: asked for). A
// queued point is refused (usage error naming it and its job); none chosen: an empty list.
std::vector<std::uint64_t> choose_points(const SweepStatus& status, bool failed, bool missing,
                                         const std::vector<std::uint64_t>& indexes);
// "3,5-7" -> {3, 5, 6, 7}, each below `points`; usage errors name the option.
std::vector<std::uint64_t> parse_index_list(std::string_view list, std::uint64_t points);

// ferry sweep cancel: scancel (qdel) every array of the sweep that still has tasks queued, and
// marks those submissions cancelled in the manifest. Returns the job ids cancelled.
std::vector<std::string> cancel_sweep(const std::string& dir);

}  // namespace ferry::sweep
