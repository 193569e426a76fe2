// ferry::doctor — what a user pastes into a support ticket, and what centre staff check first:
// ferry and the ferry-mpi beside it, the job and the machine ferry takes this for, the scheduler's
// and MPI's launchers on PATH, the node-local directories a stage could go to, the kernel features
// ferry uses, the module system, Charliecloud, and the Python and env a user has active. Every
// check says what it found or why it could not tell; none stops the others (examine never throws).
// Built on stage (ferry-mpi, shared file systems), job (allocation, machine table), util.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "job/job.hpp"

namespace ferry::doctor {

// A program found on PATH (path empty: not found) and what its --version said.
struct Program {
  std::string name{}, path{}, version{};
  std::string kind{};   // what it is, where the name does not say: "MPICH (Hydra)", "Open MPI", ...
  std::string error{};  // its last error line, when it told no version
};
FERRY_JSON_FIELDS(Program, name, path, version, kind, error)

struct FerryMpi {
  std::string path;
  bool found = false;
  std::string mpi, mpiexec;  // what `ferry-mpi --mpi` says it was built with
  std::string error;         // why it is not usable
};
FERRY_JSON_FIELDS(FerryMpi, path, found, mpi, mpiexec, error)

struct JobFacts {
  std::string scheduler = "none";  // job::scheduler_name
  std::string job_id;
  std::vector<std::string> hosts;
  std::string machine;   // the machine-table entry recognised
  std::string launcher;  // the launcher that entry uses
  unsigned cpus = 0;     // this process may use
  unsigned gpus = 0;     // visible to the job on this node
  std::string error;     // why the job or the machine could not be read
};
FERRY_JSON_FIELDS(JobFacts, scheduler, job_id, hosts, machine, launcher, cpus, gpus, error)

// One candidate for `ferry stage --to`.
struct NodeLocalDir {
  std::string place;   // as the machine table writes it: "$TMPDIR", "/mnt/bb/$USER"
  std::string path{};  // expanded ("" when it names an unset variable)
  bool exists = false, writable = false;
  bool node_local = false;    // not on a shared file system
  std::string file_system{};  // "tmpfs", "ext4", "nfs", "lustre"...
  std::uint64_t free_bytes = 0;
};
FERRY_JSON_FIELDS(NodeLocalDir, place, path, exists, writable, node_local, file_system, free_bytes)

struct Kernel {
  std::string release;           // uname -r
  bool openat2 = false;          // else ferry unpacks with its slower safe walk
  std::string openat2_answer;    // ENOSYS (before 5.6, RHEL 8) or EPERM (a seccomp filter)
  bool user_namespaces = false;  // unprivileged: what Charliecloud's ch-run needs
  std::string cgroup;            // "v2", "v1"
  std::string glibc;
};
FERRY_JSON_FIELDS(Kernel, release, openat2, openat2_answer, user_namespaces, cgroup, glibc)

struct Modules {
  std::string system = "none";  // "lmod", "environment-modules", "none"
  std::string version, command;
};
FERRY_JSON_FIELDS(Modules, system, version, command)

struct PythonFacts {
  Program python;  // python3 on PATH
  std::string prefix;
  std::string active_kind = "none";  // "venv", "conda", "none"
  std::string active_prefix, active_name;
};
FERRY_JSON_FIELDS(PythonFacts, python, prefix, active_kind, active_prefix, active_name)

struct Report {
  std::string ferry;  // "ferry 0.1.0 (git abc1234)"
  std::string ferry_path;
  FerryMpi ferry_mpi;
  JobFacts job;
  std::vector<Program> schedulers;  // sbatch, qsub, bsub, flux found on PATH
  std::vector<Program> launchers;   // srun, mpiexec, mpirun, flux, jsrun found on PATH
  std::vector<NodeLocalDir> node_local;
  std::string suggested_dir;  // the first node-local, writable candidate ("" when none)
  Kernel kernel;
  Modules modules;
  Program charliecloud;
  PythonFacts python;
};
FERRY_JSON_FIELDS(Report, ferry, ferry_path, ferry_mpi, job, schedulers, launchers, node_local,
                  suggested_dir, kernel, modules, charliecloud, python)

struct Options {
  std::string ferry_version;   // ferry's --version line
  std::string ferry_path;      // this ferry binary (ferry-mpi is looked for beside it)
  job::SiteOptions site;       // --machine, --hostname, --sysfs-root
  double command_timeout = 5;  // seconds for each --version asked
};

Report examine(const Options& options, const job::Environ& env);

// The report as text: one aligned line per fact, what is missing said as such.
std::string render_text(const Report& report);

// What the mpiexec (or mpirun) at path is, from what its --version says: "MPICH (Hydra)",
// "Open MPI", "Intel MPI", "MVAPICH", or "Cray PALS" (its text or its place, /opt/cray/pals/...);
// "" when neither names one. And the version in such a text, where it has one.
std::string mpi_launcher_kind(const std::string& version_text, const std::string& path = "");
std::string version_in(const std::string& version_text);

}  // namespace ferry::doctor
