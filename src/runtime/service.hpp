// What the services ferry starts on an allocation (Dask, Ray) share: the coordinator's stop
// signals, the nodes' JSON lines, the sweep for leftovers, the cluster directories that status
// and stop find, and the tunnel line. Private to the runtime layer.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "job/job.hpp"

namespace ferry::runtime {

using Json = nlohmann::ordered_json;

// SIGINT, SIGTERM and SIGHUP (Ctrl-C, `ferry ... stop`, the job's end) ask a coordinator for a
// teardown: for the lifetime of this object they only set a flag, which its loops watch. The
// old handlers are back when it ends.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  // The signal that asked for a stop, or 0.
  static int received();
  static void request(int signal);

 private:
  struct sigaction m_old[3]{};
};

// CPUs this node gives the job's step: what Slurm allotted (SLURM_CPUS_ON_NODE), else the
// affinity. What Dask's workers share and what Ray is told it has.
unsigned granted_cpus(const job::Environ& env);

// A node's report: one JSON object on a line of stdout, flushed (the coordinator reads it through
// the launcher as it comes).
void say_event(const Json& event);
// This host's short name: how the nodes name themselves in their reports.
std::string this_host();

// The coordinator goes with the shell or salloc that started it: SIGTERM (a stop request) when
// its parent ends, and at once if it has already.
void stop_with_parent();
// A coordinator's exit status: 1 when the cluster failed, else its command's (status >= 0), else
// after a stop signal 0 for a held cluster and 128 + the signal for a command cut short.
int coordinator_status(bool failed, int command_status, bool has_command);

// One JSON object a line, as the nodes report; nullopt for anything else (a launcher's chatter).
std::optional<Json> json_line(const std::string& line);

bool process_alive(pid_t pid);

// `bytes` random bytes from the kernel, as hex: tokens.
std::string random_hex(std::size_t bytes);

// Kills (SIGKILL) every process of this user on this host, other than this one, whose
// environment holds `marker` (NAME=VALUE), and returns "pid command" for each.
std::vector<std::string> kill_marked(const std::string& marker);

// For a process that has made itself a child subreaper (PR_SET_CHILD_SUBREAPER), so that what its
// children started and left behind (Ray's dashboard leaves a forkserver) is reparented to it:
// kills (SIGKILL) and reaps every child it still has, and returns "pid command" for each.
std::vector<std::string> kill_children();

// Runs the check role everywhere the cluster ran: on every node (`on_nodes`, through the
// launcher) and here (`here`) when this host is not one of the allocation's; returns "host: pid
// command" for each process the checks had to kill.
std::vector<std::string> run_checks(const std::vector<std::string>& on_nodes,
                                    const std::vector<std::string>& here,
                                    const job::Allocation& allocation);

// The running cluster `ferry <service> status` and `stop` mean: dir when given (it must hold a
// cluster.json), else the one directory named `<prefix>*` under this job's directory (outside a
// job: under every job's) whose coordinator still runs. Throws a usage Error naming what it found
// when there is none, or several.
std::string find_cluster_dir(const std::string& dir, const job::Environ& env,
                             const std::string& prefix, const std::string& service);
// Whether the cluster directory `dir`'s coordinator (its cluster.json: host and pid) is running,
// or on another host (which this host cannot tell) and has not marked it ended.
bool cluster_running(const std::string& dir);
// Marks a cluster's directory, kept after its teardown (its logs), as ended, for the
// status and stop of other hosts.
void mark_cluster_ended(const std::string& dir);
// Whether a cluster directory (about to be made) belongs to a running cluster; what a
// coordinator killed with -9 left there is removed, and the name is free again.
bool cluster_dir_taken(const std::string& dir);
// SIGTERM to the cluster's coordinator (it must run on this host), and at most `seconds` for it
// to end. False when it still runs then.
bool stop_cluster(const std::string& dir, const std::string& service, double seconds);

// The ssh line that forwards `ports` (on the head's loopback) from the user's machine: through
// the login host the job was submitted from (or `login`), to the head by `head_address`.
std::string tunnel_line(const std::vector<unsigned>& ports, const std::string& login,
                        const std::string& head, const std::string& head_address,
                        const job::Environ& env);

}  // namespace ferry::runtime
