// The coordinator of a stage (runs in the batch script): picks the way, starts the node side
// through the allocation's launcher, decides commit or abort, and collects one report per node.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <memory>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "env/env.hpp"
#include "stage/stage.hpp"

namespace ferry::stage {
namespace {

namespace fs = std::filesystem;

struct Deadline {
  util::Stopwatch clock;
  double limit;
  double left() const { return std::max(0.0, limit - clock.seconds()); }
};

// Lines from a step's stdout that are reports; anything else (a launcher's chatter) is skipped.
std::optional<NodeReport> as_report(const std::string& line) {
  if (line.empty() || line.front() != '{') return std::nullopt;
  try {
    return parse_report_line(line);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::vector<std::string> srun_per_node(const std::vector<std::string>& hosts) {
  std::string n = std::to_string(hosts.size());
  // --overlap: a step that is dying (a node went down under it) still holds its CPUs as far as
  // slurmctld knows; the cleanup steps must not wait for them.
  return {"srun",
          "-N",
          n,
          "-n",
          n,
          "--ntasks-per-node=1",
          "--nodelist=" + job::compress_hostlist(hosts),
          "--overlap",
          "--kill-on-bad-exit=0",
          "--quiet"};
}

// A node-side step: the launcher's words, then `ferry stage-node` with the node's options.
std::vector<std::string> node_step(std::vector<std::string> launcher, const std::string& ferry,
                                   const NodeOptions& node) {
  launcher.insert(launcher.end(), {ferry, "stage-node"});
  std::vector<std::string> words = encode_node_options(node);
  launcher.insert(launcher.end(), words.begin(), words.end());
  return launcher;
}

std::string copy_path(const std::string& dir, const std::string& job_id) {
  fs::path d(dir);
  return (d.parent_path() / fmt::format(".{}.ferry-archive-{}", d.filename().string(), job_id))
      .string();
}

// The reports of a one-shot step (prepare, sweep), one per host; missing hosts are lost.
std::map<std::string, NodeReport> one_shot(const std::vector<std::string>& argv,
                                           const std::vector<std::string>& hosts, double seconds) {
  util::CommandOutput out = util::run_command(argv, seconds);
  std::map<std::string, NodeReport> reports;
  for (std::string_view line : util::split_lines(out.out))
    if (auto r = as_report(std::string(line))) reports[r->host] = *r;
  for (const auto& h : hosts)
    if (!reports.count(h))
      reports[h] = NodeReport::lost(
          h, out.timed_out ? fmt::format("no answer within {:.0f} s", seconds)
                           : fmt::format("no answer ({})", out.last_error_line().empty()
                                                               ? "the step failed"
                                                               : out.last_error_line()));
  return reports;
}

// Sweeps each host in its own srun step, all at once (a dead node must not hold up the others);
// returns the hosts that answered.
std::set<std::string> sweep_each(const StageOptions& o, const std::string& dir,
                                 const std::string& copy, const std::vector<std::string>& hosts,
                                 double seconds);

// Stops an srun step for good: two SIGINTs within a second cancel the step (one only prints its
// status), then a bounded wait, then SIGKILL.
void cancel_step(util::Subprocess& srun) {
  srun.kill(SIGINT);
  ::usleep(200000);
  srun.kill(SIGINT);
  if (!srun.wait_for(10)) {
    srun.kill(SIGKILL);
    srun.wait();
  }
}

bool is_final(NodeStatus status) {
  return status == NodeStatus::unpacked || status == NodeStatus::present ||
         status == NodeStatus::aborted || status == NodeStatus::failed;
}

// stage_sbcast's passes share one Sbcasting: the inputs, the result so far, the nodes with work
// to do, and their final words.
struct Sbcasting {
  const StageOptions& o;
  const job::Allocation& alloc;
  const Deadline& deadline;
  StageResult res;
  std::string copy{};          // the archive's copy beside DIR on every node
  std::uint64_t identity = 0;  // the archive's, or the image's hash
  std::vector<std::string> todo{}, present{};
  bool all_ready = false;                    // every node extracted: the word was "commit"
  std::map<std::string, NodeReport> last{};  // each node's final report
};

// 1. Every node: make DIR's parent, clear what a dead stage left, say whether DIR already holds
//    this archive (a rerun after a partial failure redoes only what is missing). false: the stage
//    ends here (a node refused, or none has work).
bool prepare_nodes(Sbcasting& s) {
  const std::vector<std::string>& hosts = s.alloc.hosts;
  StageResult& res = s.res;
  util::Stopwatch phase;
  NodeOptions check;
  check.step = NodeOptions::Step::prepare;
  check.archive = s.copy;
  check.dir = res.dir;
  check.image = res.image;
  check.identity = s.identity;
  auto prepare = node_step(srun_per_node(hosts), s.o.ferry, check);
  auto prepared = one_shot(prepare, hosts, s.deadline.left());
  res.phases.emplace_back("prepare", phase.seconds());
  bool refused = false;
  for (const auto& h : hosts) {
    const NodeReport& r = prepared[h];
    if (r.status == NodeStatus::ok) {
      s.todo.push_back(h);
      continue;
    }
    res.nodes.push_back(r);
    if (r.status == NodeStatus::present)
      s.present.push_back(h);
    else
      refused = true;
  }
  if (refused) {
    for (const auto& h : s.todo) res.nodes.push_back(NodeReport::aborted(h));
    return false;
  }
  if (s.todo.empty()) {
    res.ok = true;
    return false;
  }
  return true;
}

// 2. sbcast (to every node of the job: it cannot pick nodes). It leaves partial files on failure
//    and says so only in its exit status: both are checked and cleaned. false: it failed.
bool broadcast_copy(Sbcasting& s) {
  const StageOptions& o = s.o;
  StageResult& res = s.res;
  util::Stopwatch phase;
  util::CommandOutput sb =
      util::run_command({"sbcast", "--force", res.archive, s.copy}, s.deadline.left());
  res.phases.emplace_back("broadcast", phase.seconds());
  if (sb.status != 0) {
    std::string why =
        sb.timed_out ? fmt::format("sbcast took longer than the --timeout of {:.0f} s", o.timeout)
                     : fmt::format(
                           "sbcast could not write the archive copy {} ({}): is the disk "
                           "full or not writable?",
                           s.copy, sb.last_error_line());
    sweep_each(o, res.dir, s.copy, s.alloc.hosts, 30);
    // sbcast names the node it failed on as "(node2)"; the others are only aborted.
    std::set<std::string> named;
    for (const auto& h : s.todo)
      if (sb.err.find("(" + h + ")") != std::string::npos) named.insert(h);
    for (const auto& h : s.todo)
      res.nodes.push_back(named.empty() || named.count(h) ? NodeReport::failed(h, why)
                                                          : NodeReport::aborted(h));
    return false;
  }
  if (!s.present.empty())
    sweep_each(o, res.dir, s.copy, s.present, 30);  // nodes that had the env already
  return true;
}

// 3. One task per node extracts and reports; when every node is ready the word is "commit",
//    otherwise "abort" (srun --input=all gives every task the same stdin). A task that dies
//    ends the step (--kill-on-bad-exit): no waiting for the timeout on a crashed node.
void extract_and_commit(Sbcasting& s) {
  const std::vector<std::string>& todo = s.todo;
  StageResult& res = s.res;
  util::Stopwatch phase;
  auto step = srun_per_node(todo);
  std::replace(step.begin(), step.end(), std::string("--kill-on-bad-exit=0"),
               std::string("--kill-on-bad-exit=1"));
  step.insert(step.end() - 1, "--input=all");
  NodeOptions extract;
  extract.archive = s.copy;
  extract.dir = res.dir;
  extract.jobs = s.o.jobs;
  extract.remove_archive = true;
  extract.image = res.image;
  extract.identity = s.identity;
  util::Subprocess srun(node_step(step, s.o.ferry, extract));
  std::map<std::string, NodeReport> first;
  while (first.size() < todo.size()) {
    auto line = srun.read_line(s.deadline.left());
    if (!line) break;
    if (auto r = as_report(*line)) {
      first[r->host] = *r;
      if (r->status == NodeStatus::failed) break;
    }
  }
  s.all_ready = first.size() == todo.size() &&
                std::all_of(first.begin(), first.end(),
                            [](auto& kv) { return kv.second.status != NodeStatus::failed; });
  std::string word = s.all_ready ? "commit" : "abort";
  res.phases.emplace_back("extract", phase.seconds());
  phase = {};
  srun.write(word + "\n");
  srun.close_stdin();
  for (auto& [h, r] : first)
    if (r.status == NodeStatus::failed) s.last[h] = r;
  while (s.last.size() < todo.size()) {
    auto line = srun.read_line(std::min(60.0, std::max(10.0, s.deadline.left())));
    if (!line) break;
    if (auto r = as_report(*line); r && is_final(r->status)) s.last[r->host] = *r;
  }
  if (s.last.size() < todo.size() || !srun.wait_for(10)) cancel_step(srun);
  res.phases.emplace_back("commit", phase.seconds());
}

// 4. Every node without a final word may hold a temporary tree or the copy: ask each on its own.
//    One that answers is cleaned (it was aborted); one that does not is the node that is down.
void account_for_nodes(Sbcasting& s) {
  const StageOptions& o = s.o;
  StageResult& res = s.res;
  std::vector<std::string> silent;
  for (const auto& h : s.todo)
    if (!s.last.count(h)) silent.push_back(h);
  std::set<std::string> answered;
  if (!silent.empty()) answered = sweep_each(o, res.dir, s.copy, silent, 20);
  for (const auto& h : s.todo) {
    if (auto it = s.last.find(h); it != s.last.end()) {
      res.nodes.push_back(it->second);
    } else if (answered.count(h) && !s.all_ready) {
      res.nodes.push_back(NodeReport::aborted(h));
    } else if (answered.count(h)) {
      res.nodes.push_back(NodeReport::lost(
          h,
          "its task ended without a report after the commit (it is cleaned, but DIR is missing "
          "there)"));
    } else if (s.deadline.left() <= 0) {
      res.nodes.push_back(NodeReport::lost(
          h, fmt::format("no report within {:.0f} s (--timeout): is the node down?", o.timeout)));
    } else {
      res.nodes.push_back(NodeReport::lost(
          h, "its task died without a report and the node does not answer: is it down?"));
    }
  }
  res.ok = s.all_ready && std::all_of(res.nodes.begin(), res.nodes.end(),
                                      [](const NodeReport& r) { return r.staged(); });
}

StageResult stage_sbcast(const StageOptions& o, const job::Allocation& alloc,
                         const Deadline& deadline, StageResult res) {
  Sbcasting s{o, alloc, deadline, std::move(res)};
  s.copy = copy_path(s.res.dir, alloc.job_id);
  util::Stopwatch hashing;
  s.identity = s.res.image ? image_identity(s.res.archive) : env::archive_identity(s.res.archive);
  if (s.res.image) s.res.phases.emplace_back("hash", hashing.seconds());
  if (prepare_nodes(s) && broadcast_copy(s)) {  // what each node holds; the copy on every node
    extract_and_commit(s);                      // all or nothing
    account_for_nodes(s);                       // each node's outcome, the silent ones swept
  }
  return std::move(s.res);
}

// Sweeps each host in its own srun step, all at once (a dead node must not hold up the others);
// returns the hosts that answered.
std::set<std::string> sweep_each(const StageOptions& o, const std::string& dir,
                                 const std::string& copy, const std::vector<std::string>& hosts,
                                 double seconds) {
  std::vector<std::unique_ptr<util::Subprocess>> steps;
  for (const auto& h : hosts) {
    NodeOptions sweep;
    sweep.step = NodeOptions::Step::sweep;
    sweep.archive = copy;
    sweep.dir = dir;
    auto argv = node_step(srun_per_node({h}), o.ferry, sweep);
    steps.push_back(std::make_unique<util::Subprocess>(argv));
  }
  Deadline deadline{{}, seconds};
  std::set<std::string> answered;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    while (auto line = steps[i]->read_line(deadline.left()))
      if (auto r = as_report(*line); r && r->status == NodeStatus::swept) answered.insert(hosts[i]);
    if (!steps[i]->wait_for(steps[i]->timed_out() ? 0 : 5)) cancel_step(*steps[i]);
  }
  return answered;
}

// The launcher leads a process group of its own, so that a hung one is stopped with everything
// it started (Hydra's srun and proxies). Ctrl-C and SIGTERM that reach ferry while it runs go to
// that group too, and end ferry as before: as if the launcher were still in ferry's group.
volatile sig_atomic_t g_launcher_group = 0;
void forward_to_launcher(int signal) {
  if (g_launcher_group > 0) ::kill(-g_launcher_group, signal);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(signal, &dfl, nullptr);
  ::raise(signal);
}
class ForwardSignals {
 public:
  explicit ForwardSignals(pid_t group) {
    g_launcher_group = group;
    struct sigaction sa {};
    sa.sa_handler = forward_to_launcher;
    ::sigaction(SIGINT, &sa, &m_int);
    ::sigaction(SIGTERM, &sa, &m_term);
  }
  ~ForwardSignals() {
    ::sigaction(SIGINT, &m_int, nullptr);
    ::sigaction(SIGTERM, &m_term, nullptr);
    g_launcher_group = 0;
  }
  ForwardSignals(const ForwardSignals&) = delete;
  ForwardSignals& operator=(const ForwardSignals&) = delete;

 private:
  struct sigaction m_int {
  }, m_term{};
};

// stage_mpi's passes share one MpiStaging: the inputs, the result so far, the launcher's command
// and process, and what the ranks said.
struct MpiStaging {
  const StageOptions& o;
  const job::Allocation& alloc;
  const job::Environ& env;
  const Deadline& deadline;
  StageResult res;
  std::vector<std::string> argv{};  // the launcher's words, then ferry-mpi's
  util::Stopwatch launched{};
  std::optional<util::Subprocess> mpi{};
  std::optional<ForwardSignals> forward{};
  std::map<std::string, NodeReport> reports{};  // by the host name the rank gave
  double inside = 0;  // ferry-mpi's own time; the rest is mpiexec starting and ending the ranks
  int rc = 0;         // the launcher's exit status
  std::vector<std::string> lost{};  // hosts without a report

  void finish_progress() {
    if (o.progress) o.progress->finish();
  }
};

// The launcher's command: ferry-mpi names its MPI and the mpiexec it was built with (or
// FERRY_MPIEXEC), one rank per node, then ferry-mpi's own options.
void mpi_command(MpiStaging& m) {
  const StageOptions& o = m.o;
  util::CommandOutput info = util::run_command({o.ferry_mpi, "--mpi"}, 30);
  std::string version = info.out.substr(0, info.out.find('\n'));
  std::string mpiexec = info.out.substr(info.out.find('\n') + 1);
  mpiexec = mpiexec.substr(0, mpiexec.find('\n'));
  if (auto forced = job::lookup(m.env, "FERRY_MPIEXEC"); forced && !forced->empty())
    mpiexec = *forced;
  if (info.status != 0 || mpiexec.empty())
    throw Error(
        fmt::format("{}: cannot tell which MPI it uses ({})", o.ferry_mpi, info.last_error_line()));
  std::string n = std::to_string(m.alloc.hosts.size());
  std::vector<std::string>& argv = m.argv;
  argv = {mpiexec};
  if (version.find("Open MPI") != std::string::npos) {
    argv.insert(argv.end(),
                {"-np", n, "--map-by", "ppr:1:node", "--bind-to", "none"});  // all cores
    if (job::lookup(m.env, "FERRY_MPI_WINDOW"))
      argv.insert(argv.end(), {"-x", "FERRY_MPI_WINDOW"});  // not passed by default
  } else {
    argv.insert(argv.end(), {"-n", n, "-ppn", "1"});
  }
  argv.push_back(o.ferry_mpi);
  std::vector<std::string> words = encode_mpi_options({.archive = m.res.archive,
                                                       .dir = m.res.dir,
                                                       .jobs = o.jobs,
                                                       .progress = o.progress != nullptr});
  argv.insert(argv.end(), words.begin(), words.end());
}

// With a sink, the bytes rank 0 reports sent: it counts the frames, not the seek table.
void start_progress(MpiStaging& m) {
  if (!m.o.progress) return;
  std::uint64_t frames_bytes = m.res.archive_bytes;
  try {
    auto index = format::index_frames(util::MappedFile(m.res.archive).bytes(), m.res.archive);
    if (!index.frames.empty())
      frames_bytes = index.frames.back().offset + index.frames.back().compressed_size;
  } catch (const Error&) {  // ferry-mpi reports a broken archive itself
  }
  m.o.progress->begin("stage", frames_bytes);
}

// The launcher leads a process group of its own, and Ctrl-C and SIGTERM go to that group.
void start_launcher(MpiStaging& m) {
  m.launched = {};
  util::SubprocessOptions launch;
  launch.own_group = true;
  launch.keep_stderr = true;
  m.mpi.emplace(m.argv, launch);
  m.forward.emplace(m.mpi->pid());
}

// A launcher that ended, or did not start every rank in time, before the ranks said they started:
// stopped, and its error thrown.
[[noreturn]] void fail_start(MpiStaging& m, double start_limit) {
  util::Subprocess& mpi = *m.mpi;
  // Ranks that did start are still waiting in their first collective: none has touched DIR.
  bool hung = mpi.timed_out();
  std::optional<int> ended = hung ? std::nullopt : mpi.wait_for(5);
  std::string said = mpi.last_error_line();
  for (char& c : said)  // one line, whatever the launcher wrote
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  mpi.stop_group(5);
  m.finish_progress();
  std::string what =
      hung ? fmt::format("the ranks did not start on every node within {:g} s (--start-timeout)",
                         start_limit)
           : fmt::format("it ended{} before the ranks started on every node",
                         ended ? fmt::format(" with status {}", *ended) : "");
  throw Error(fmt::format("{}: {}; {}", m.argv[0], what,
                          said.empty() ? "it printed no error" : "it said: " + said));
}

// What the ranks print, until the launcher's output ends: started, progress, phases, reports.
void read_ranks(MpiStaging& m) {
  const StageOptions& o = m.o;
  util::Subprocess& mpi = *m.mpi;
  std::uint64_t sent = 0;
  // Start-up has its own, short bound: a launcher that cannot start every rank may not give up
  // (Hydra waits forever once the srun it started has died), and no node has done anything yet.
  bool started = false;
  double start_limit = std::min(o.start_timeout, o.timeout);
  while (true) {
    double wait =
        started ? m.deadline.left()
                : std::min(m.deadline.left(), std::max(0.0, start_limit - m.launched.seconds()));
    auto line = mpi.read_line(wait);
    if (!line && !started) fail_start(m, start_limit);
    if (!line) break;
    if (line->starts_with("{\"started\"")) {
      started = true;
      continue;
    }
    if (line->starts_with("{\"progress\"")) {  // bytes broadcast so far
      try {
        auto now = nlohmann::json::parse(*line).at("progress").get<std::uint64_t>();
        if (now > sent) {
          if (o.progress) o.progress->advance(now - sent);
          sent = now;
        }
      } catch (const std::exception&) {
      }
      continue;
    }
    if (line->starts_with("{\"phases\"")) {
      try {
        auto j = nlohmann::json::parse(*line);
        for (const auto& p : j.at("phases"))
          m.res.phases.emplace_back(p.at(0).get<std::string>(), p.at(1).get<double>());
        m.inside = j.at("total").get<double>();
      } catch (const std::exception&) {
      }
      continue;
    }
    if (auto r = as_report(*line)) {
      if (r->host == "*") {  // rank 0 could not start the stage at all (e.g. not a ferry archive)
        for (const auto& h : m.alloc.hosts) m.reports[h] = NodeReport::failed(h, r->error);
        continue;
      }
      m.reports[r->host] = *r;
    }
  }
  m.finish_progress();
}

// The launcher's exit status, and whatever it started and left behind killed.
void end_launcher(MpiStaging& m) {
  util::Subprocess& mpi = *m.mpi;
  if (mpi.timed_out()) cancel_step(mpi);
  m.rc = mpi.wait_for(30).value_or(-1);
  if (m.rc < 0) {
    mpi.kill(SIGKILL);
    m.rc = mpi.wait();
  }
  mpi.kill_group(SIGKILL);  // what the launcher started and left behind
  if (m.inside > 0)
    m.res.phases.insert(m.res.phases.begin(), {"launch", m.launched.seconds() - m.inside});
}

// One outcome per host, from its report (under its name or its short name); lost without one.
void collect_outcomes(MpiStaging& m) {
  StageResult& res = m.res;
  std::vector<std::string>& lost = m.lost;
  for (const auto& h : m.alloc.hosts) {
    auto it = m.reports.find(h);
    if (it == m.reports.end())
      it = std::find_if(m.reports.begin(), m.reports.end(), [&](auto& kv) {
        return kv.first.substr(0, kv.first.find('.')) == h.substr(0, h.find('.'));
      });
    if (it != m.reports.end()) {
      res.nodes.push_back(it->second);
      continue;
    }
    res.nodes.push_back(NodeReport::lost(
        h,
        m.mpi->timed_out()
            ? fmt::format("no report within {:.0f} s (--timeout): is the node down?", m.o.timeout)
            : fmt::format("no report: {} ended with status {} (a node or rank died?)", m.argv[0],
                          m.rc)));
    lost.push_back(h);
  }
  res.ok = m.rc == 0 && lost.empty() &&
           std::all_of(res.nodes.begin(), res.nodes.end(),
                       [](const NodeReport& r) { return r.staged(); });
}

// When the MPI job died, its ranks left temporary trees and nobody reported. Ask every node on
// its own (Slurm): one that answers is cleaned and was only aborted; one that does not is the node
// that went down.
void sweep_lost(MpiStaging& m) {
  if (m.lost.empty() || m.alloc.scheduler != job::Scheduler::slurm) return;
  auto answers = sweep_each(m.o, m.res.dir, "", m.lost, 20);
  for (auto& r : m.res.nodes)
    if (r.status == NodeStatus::lost && answers.count(r.host))
      r = NodeReport::aborted(r.host);
    else if (r.status == NodeStatus::lost)
      r.error = fmt::format(
          "the MPI job died ({} ended with status {}) and the node does not answer: is it down?",
          m.argv[0], m.rc);
}

// The MPI path: ferry-mpi once per node through the MPI's own launcher (it reads the allocation
// from Slurm or PBS itself); rank 0 prints every node's report.
StageResult stage_mpi(const StageOptions& o, const job::Allocation& alloc, const job::Environ& env,
                      const Deadline& deadline, StageResult res) {
  MpiStaging m{o, alloc, env, deadline, std::move(res)};
  mpi_command(m);  // mpiexec, one rank per node, ferry-mpi's options
  m.res.via = Via::mpi;
  start_progress(m);    // the bar counts the frames' bytes
  start_launcher(m);    // in a process group of its own; signals forwarded to it
  read_ranks(m);        // until the launcher's output ends; a failed start throws
  end_launcher(m);      // its exit status, and what it left behind killed
  collect_outcomes(m);  // one per node: its report, or lost
  sweep_lost(m);        // the lost ones asked on their own
  return std::move(m.res);
}

}  // namespace

std::string find_ferry_mpi(const std::string& ferry) {
  std::filesystem::path bin = std::filesystem::path(ferry).parent_path();
  std::filesystem::path beside = bin / "ferry-mpi";
  std::filesystem::path installed = bin.parent_path() / "libexec" / "ferry" / "ferry-mpi";
  if (::access(beside.c_str(), X_OK) == 0) return beside.string();
  return installed.lexically_normal().string();
}

StageResult stage(const StageOptions& o, const job::Environ& env) {
  util::Stopwatch clock;
  if (!(o.timeout > 0))
    throw Error(fmt::format("--timeout {}: must be more than 0 seconds", o.timeout),
                Error::Kind::usage);
  if (!(o.start_timeout > 0))
    throw Error(fmt::format("--start-timeout {}: must be more than 0 seconds", o.start_timeout),
                Error::Kind::usage);
  Deadline deadline{{}, o.timeout};
  StageResult res;
  res.archive = util::absolute_path(o.archive);
  if (o.dir.empty() || o.dir.front() != '/')
    throw Error(fmt::format("--to {}: must be an absolute path (the same on every node)", o.dir),
                Error::Kind::usage);
  res.dir = o.dir;
  struct stat st {};
  if (::stat(res.archive.c_str(), &st) != 0)
    util::throw_errno(res.archive, "cannot open archive", errno);
  res.archive_bytes = static_cast<std::uint64_t>(st.st_size);
  // A SquashFS image is copied whole, to a file: --to names it, or the directory it goes in.
  res.image = format::is_squashfs_file(res.archive);
  if (res.image) res.dir = image_target(o.dir, res.archive);
  job::Allocation alloc = job::discover_allocation(env, {util::host_name(), nullptr});
  if (alloc.scheduler == job::Scheduler::none)
    throw Error("ferry stage runs inside a job (no Slurm, PBS, LSF or Flux allocation found)",
                Error::Kind::usage);

  // auto: MPI when ferry-mpi is built and the archive is ferry's own (the MPI path streams its
  // frames) or an image (streamed as it is); sbcast for everything else (a conda-pack tar.gz,
  // say).
  Via via = o.via;
  if (via == Via::automatic) {
    bool framed = res.image ||
                  format::index_frames(util::MappedFile(res.archive).bytes(), res.archive).layout !=
                      format::ArchiveLayout::foreign;
    bool have_mpi = !o.ferry_mpi.empty() && ::access(o.ferry_mpi.c_str(), X_OK) == 0;
    via = framed && have_mpi ? Via::mpi : Via::sbcast;
  }
  if (via == Via::sbcast && alloc.scheduler != job::Scheduler::slurm)
    throw Error(fmt::format("--via sbcast needs Slurm (this is a {} job); use --via mpi",
                            job::scheduler_name(alloc.scheduler)),
                Error::Kind::usage);
  if (via == Via::mpi) {
    if (o.ferry_mpi.empty() || ::access(o.ferry_mpi.c_str(), X_OK) != 0)
      throw Error(
          fmt::format("--via mpi: {} is not there (ferry was built without an MPI)", o.ferry_mpi),
          Error::Kind::usage);
    res = stage_mpi(o, alloc, env, deadline, res);
  } else {
    res.via = Via::sbcast;
    res = stage_sbcast(o, alloc, deadline, res);
  }
  res.seconds = clock.seconds();
  return res;
}

}  // namespace ferry::stage
