// ferry doctor's text (doctor.hpp): a label, then what was found, one fact per line.
#include <fmt/format.h>

#include "doctor/doctor.hpp"

namespace ferry::doctor {
namespace {

std::string gib(std::uint64_t bytes) {
  return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (1024.0 * 1024 * 1024));
}

std::string program_line(const Program& p) {
  std::string line = p.name;
  if (!p.kind.empty()) line += " " + p.kind;
  if (!p.version.empty()) line += " " + p.version;
  line += " (" + p.path + ")";
  if (!p.error.empty()) line += ": " + p.error;
  return line;
}

std::string yes(bool b) { return b ? "yes" : "no"; }

}  // namespace

std::string render_text(const Report& r) {
  std::string out;
  auto row = [&](const std::string& label, const std::string& text) {
    out += fmt::format("{:<13}{}\n", label, text);
  };
  row("ferry", r.ferry + " (" + r.ferry_path + ")");
  if (!r.ferry_mpi.found) {
    row("ferry-mpi", r.ferry_mpi.path + ": " + r.ferry_mpi.error);
  } else if (!r.ferry_mpi.error.empty()) {
    row("ferry-mpi", r.ferry_mpi.path + ": " + r.ferry_mpi.error);
  } else {
    row("ferry-mpi", fmt::format("{}: {}, launched with {}", r.ferry_mpi.path, r.ferry_mpi.mpi,
                                 r.ferry_mpi.mpiexec));
  }

  const JobFacts& j = r.job;
  if (!j.error.empty()) {
    row("job", "cannot tell: " + j.error);
  } else if (j.scheduler == "none") {
    row("job", fmt::format("none (machine {}; {} CPUs, {} GPUs here)", j.machine, j.cpus, j.gpus));
  } else {
    row("job", fmt::format("{} job {}: {} host{} ({}), machine {}, launcher {}; {} CPUs, {} GPUs "
                           "here",
                           j.scheduler, j.job_id, j.hosts.size(), j.hosts.size() == 1 ? "" : "s",
                           job::compress_hostlist(j.hosts), j.machine, j.launcher, j.cpus, j.gpus));
  }

  auto programs = [&](const std::string& label, const std::vector<Program>& list) {
    if (list.empty()) row(label, "none on PATH");
    for (std::size_t i = 0; i < list.size(); ++i) row(i == 0 ? label : "", program_line(list[i]));
  };
  programs("schedulers", r.schedulers);
  programs("launchers", r.launchers);

  for (std::size_t i = 0; i < r.node_local.size(); ++i) {
    const NodeLocalDir& d = r.node_local[i];
    std::string text;
    if (d.path.empty()) {
      text = "(unset)";
    } else if (!d.exists) {
      text = d.path + ": not there";
    } else {
      text = fmt::format("{}: {}, {}, {}, {} free", d.path,
                         d.file_system.empty() ? "?" : d.file_system,
                         d.node_local ? "node-local" : "shared between nodes",
                         d.writable ? "writable" : "not writable", gib(d.free_bytes));
    }
    row(i == 0 ? "node-local" : "", fmt::format("{:<15}{}", d.place, text));
  }
  row("", r.suggested_dir.empty() ? "no node-local directory to stage to"
                                  : "stage to: ferry stage --to " + r.suggested_dir + "/ENV");

  const Kernel& k = r.kernel;
  row("kernel", fmt::format("{}: openat2 {}{}, unprivileged user namespaces {}, cgroup {}, "
                            "glibc {}",
                            k.release, yes(k.openat2),
                            k.openat2 ? "" : " (" + k.openat2_answer + ": the slower safe walk)",
                            yes(k.user_namespaces), k.cgroup, k.glibc));
  if (r.modules.system == "none") {
    row("modules", "none (no LMOD_CMD, MODULES_CMD or MODULESHOME)");
  } else {
    row("modules",
        fmt::format("{} {} ({})", r.modules.system, r.modules.version, r.modules.command));
  }
  row("charliecloud",
      r.charliecloud.path.empty() ? "ch-run not on PATH" : program_line(r.charliecloud));
  const PythonFacts& p = r.python;
  row("python", p.python.path.empty()
                    ? "python3 not on PATH"
                    : fmt::format("{} {} (prefix {})", p.python.path, p.python.version, p.prefix));
  if (p.active_kind == "none") {
    row("active env", "none");
  } else {
    row("active env", fmt::format("{} {}{}", p.active_kind, p.active_prefix,
                                  p.active_name.empty() ? "" : " (" + p.active_name + ")"));
  }
  return out;
}

}  // namespace ferry::doctor
