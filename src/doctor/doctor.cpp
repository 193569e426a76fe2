// ferry doctor's checks (doctor.hpp). Each is a few system calls or one `--version` with a
// timeout; a check that fails records why and the report goes on.
#include <gnu/libc-version.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <fmt/format.h>

#include "doctor/doctor.hpp"
#include "stage/stage.hpp"
#include "util/util.hpp"

namespace ferry::doctor {
namespace {

std::string lookup_or(const job::Environ& env, const std::string& name) {
  auto v = job::lookup(env, name);
  return v ? *v : "";
}

// The environment the --version commands get: ferry's, with USER (ch-run needs it; env -i and
// some batch shells have none) from the password database.
std::vector<std::string> probe_environment() {
  std::vector<std::string> vars;
  bool has_user = false;
  for (const auto& [name, value] : job::current_environ()) {
    vars.push_back(name + "=" + value);
    has_user = has_user || name == "USER";
  }
  if (!has_user) vars.push_back("USER=" + util::user_name());
  return vars;
}

// What argv said (stdout, then stderr); timed_out or a failure to start say so.
util::CommandOutput run_probe(const std::vector<std::string>& argv, double timeout) {
  static const std::vector<std::string> vars = probe_environment();
  try {
    return util::run_command(argv, timeout, &vars);
  } catch (const std::exception& e) {
    return {.status = 127, .timed_out = false, .out = "", .err = e.what()};
  }
}

std::string output_of(const std::vector<std::string>& argv, double timeout) {
  util::CommandOutput r = run_probe(argv, timeout);
  return r.timed_out ? "" : r.out + r.err;
}

// One line of a tool's words: tabs and runs of spaces as one space.
std::string one_line(const std::string& text) {
  return std::regex_replace(text.substr(0, text.find('\n')), std::regex("[ \t]+"), " ");
}

Program program(const std::string& name, const job::Environ& env, double timeout,
                const std::vector<std::string>& version_args = {"--version"}) {
  Program p{.name = name};
  p.path = util::find_on_path(name, lookup_or(env, "PATH"));
  if (p.path.empty()) return p;
  std::vector<std::string> argv{p.path};
  argv.insert(argv.end(), version_args.begin(), version_args.end());
  util::CommandOutput r = run_probe(argv, timeout);
  std::string text = r.out + r.err;
  p.version = version_in(text);
  p.kind = mpi_launcher_kind(text, p.path);
  if (p.version.empty())
    p.error = r.timed_out
                  ? fmt::format("no answer to {} in {} s", util::command_line(argv), timeout)
                  : r.last_error_line();
  return p;
}

FerryMpi ferry_mpi(const Options& o, double timeout) {
  FerryMpi m;
  m.path = stage::find_ferry_mpi(o.ferry_path);
  m.found = ::access(m.path.c_str(), X_OK) == 0;
  if (!m.found) {
    m.error = "not installed (ferry was built without an MPI): ferry stage uses sbcast";
    return m;
  }
  try {
    util::CommandOutput r = run_probe({m.path, "--mpi"}, timeout);
    std::istringstream lines(r.out);
    std::getline(lines, m.mpi);
    std::getline(lines, m.mpiexec);
    m.mpi = one_line(m.mpi);
    if (r.status != 0 || m.mpiexec.empty()) m.error = "does not start: " + r.last_error_line();
  } catch (const std::exception& e) {
    m.error = e.what();
  }
  return m;
}

// The built-in table's node-local places (its "local" entry has the table's default list).
std::vector<std::string> default_node_local() {
  for (const job::Machine& m : job::load_machines({}))
    if (m.name == "local") return m.node_local;
  return {};
}

// The job and machine, and the machine's node-local places (the default list where the machine
// is not known).
JobFacts job_facts(const Options& o, std::vector<std::string>& node_local) {
  JobFacts f;
  node_local = default_node_local();
  try {
    job::Site site = job::discover_site(o.site);
    f.scheduler = std::string(job::scheduler_name(site.allocation.scheduler));
    f.job_id = site.allocation.job_id;
    f.hosts = site.allocation.hosts;
    f.cpus = static_cast<unsigned>(site.cpus.allowed.size());
    f.gpus = static_cast<unsigned>(site.gpus.visible.size());
    if (site.machine) {
      f.machine = site.machine->name;
      f.launcher = std::string(job::launcher_name(site.machine->launcher));
      if (!site.machine->node_local.empty()) node_local = site.machine->node_local;
    }
  } catch (const std::exception& e) {
    f.error = e.what();
  }
  return f;
}

// $NAME and ${NAME} from env (USER from the password database where env has none); "" when one
// of them is unset or empty.
std::string expand(const std::string& place, const job::Environ& env) {
  static const std::regex var(R"(\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?)");
  std::string out;
  std::size_t at = 0;
  for (auto it = std::sregex_iterator(place.begin(), place.end(), var);
       it != std::sregex_iterator(); ++it) {
    std::string value = lookup_or(env, (*it)[1].str());
    if (value.empty() && (*it)[1].str() == "USER") value = util::user_name();
    if (value.empty()) return "";
    out += place.substr(at, static_cast<std::size_t>(it->position()) - at) + value;
    at = static_cast<std::size_t>(it->position() + it->length());
  }
  return out + place.substr(at);
}

// The type of the file system path is on: the mount point that is its longest prefix, in
// /proc/self/mountinfo (whose paths escape spaces as \040).
std::string mount_type(const std::string& path) {
  std::error_code ec;
  std::string real = std::filesystem::canonical(path, ec).string();
  if (ec) return "";
  std::ifstream in("/proc/self/mountinfo");
  std::string line, best_type;
  std::size_t best = 0;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string id, parent, dev, root, point;
    words >> id >> parent >> dev >> root >> point;
    point = std::regex_replace(point, std::regex(R"(\\040)"), " ");
    std::size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string type;
    tail >> type;
    bool under =
        real == point || point == "/" ||
        (real.rfind(point, 0) == 0 && real.size() > point.size() && real[point.size()] == '/');
    if (under && point.size() >= best) {
      best = point.size();
      best_type = type;
    }
  }
  return best_type;
}

NodeLocalDir node_local_dir(const std::string& place, const job::Environ& env) {
  NodeLocalDir d{.place = place, .path = expand(place, env)};
  if (d.path.empty()) return d;
  std::error_code ec;
  d.exists = std::filesystem::is_directory(d.path, ec);
  if (!d.exists) return d;
  d.writable = ::access(d.path.c_str(), W_OK | X_OK) == 0;
  d.file_system = mount_type(d.path);
  d.node_local = !stage::shared_file_system(d.path).has_value();
  struct statvfs fs {};
  if (::statvfs(d.path.c_str(), &fs) == 0)
    d.free_bytes = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  return d;
}

Kernel kernel() {
  Kernel k;
  struct utsname u {};
  if (::uname(&u) == 0) k.release = u.release;
  k.openat2_answer = util::openat2_answer();
  k.openat2 = k.openat2_answer.empty();
  std::ifstream userns("/proc/sys/user/max_user_namespaces");
  long max = 0;
  k.user_namespaces = userns >> max && max > 0;
  std::error_code ec;
  k.cgroup = std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers", ec) ? "v2" : "v1";
  k.glibc = gnu_get_libc_version();
  return k;
}

Modules modules(const job::Environ& env, double timeout) {
  Modules m;
  if (std::string lmod = lookup_or(env, "LMOD_CMD"); !lmod.empty()) {
    m.system = "lmod";
    m.command = lmod;
    m.version = lookup_or(env, "LMOD_VERSION");
    if (m.version.empty()) m.version = version_in(output_of({lmod, "--version"}, timeout));
  } else if (std::string cmd = lookup_or(env, "MODULES_CMD"); !cmd.empty()) {
    m.system = "environment-modules";
    m.command = cmd;
    m.version = version_in(output_of({cmd, "bash", "--version"}, timeout));
  } else if (!lookup_or(env, "MODULESHOME").empty()) {
    m.system = "unknown";
    m.command = lookup_or(env, "MODULESHOME");
  }
  return m;
}

PythonFacts python(const job::Environ& env, double timeout) {
  PythonFacts p;
  p.python = program("python3", env, timeout);
  if (!p.python.path.empty()) {
    std::string out = output_of(
        {p.python.path, "-c", "import sys; print(sys.version.split()[0]); print(sys.prefix)"},
        timeout);
    std::istringstream lines(out);
    std::getline(lines, p.python.version);
    std::getline(lines, p.prefix);
  }
  if (std::string venv = lookup_or(env, "VIRTUAL_ENV"); !venv.empty()) {
    p.active_kind = "venv";
    p.active_prefix = venv;
    p.active_name = std::filesystem::path(venv).filename().string();
  } else if (std::string conda = lookup_or(env, "CONDA_PREFIX"); !conda.empty()) {
    p.active_kind = "conda";
    p.active_prefix = conda;
    p.active_name = lookup_or(env, "CONDA_DEFAULT_ENV");
  }
  return p;
}

}  // namespace

std::string mpi_launcher_kind(const std::string& text, const std::string& path) {
  if (text.find("Intel(R) MPI") != std::string::npos) return "Intel MPI";
  if (text.find("Open MPI") != std::string::npos || text.find("OpenRTE") != std::string::npos)
    return "Open MPI";
  if (text.find("PALS") != std::string::npos || path.find("/pals/") != std::string::npos)
    return "Cray PALS";
  if (text.find("MVAPICH") != std::string::npos) return "MVAPICH";
  if (text.find("HYDRA") != std::string::npos || text.find("Hydra") != std::string::npos)
    return "MPICH (Hydra)";
  return "";
}

std::string version_in(const std::string& text) {
  // "Version: 4.0.2", "slurm 22.05.8", "mpirun (Open MPI) 4.1.4", "pbs_version = 2022.1.1".
  static const std::regex number(R"((^|[^0-9.])([0-9]+\.[0-9]+(\.[0-9]+)*([a-z][a-z0-9]*)?))");
  std::smatch m;
  if (std::regex_search(text, m, number)) return m[2].str();
  return "";
}

Report examine(const Options& o, const job::Environ& env) {
  Report r;
  double t = o.command_timeout;
  r.ferry = o.ferry_version;
  r.ferry_path = o.ferry_path;
  r.ferry_mpi = ferry_mpi(o, t);
  std::vector<std::string> places;
  r.job = job_facts(o, places);
  for (const char* name : {"sbatch", "qsub", "bsub", "flux"}) {
    Program p = name == std::string("bsub") ? program(name, env, t, {"-V"}) : program(name, env, t);
    p.kind.clear();
    if (!p.path.empty()) r.schedulers.push_back(p);
  }
  for (const char* name : {"srun", "mpiexec", "mpirun", "jsrun", "aprun"}) {
    Program p = program(name, env, t);
    if (!p.path.empty()) r.launchers.push_back(p);
  }
  for (const std::string& place : places) {
    r.node_local.push_back(node_local_dir(place, env));
    const NodeLocalDir& d = r.node_local.back();
    if (r.suggested_dir.empty() && d.exists && d.writable && d.node_local) r.suggested_dir = d.path;
  }
  r.kernel = kernel();
  r.modules = modules(env, t);
  r.charliecloud = program("ch-run", env, t);
  r.charliecloud.kind.clear();
  r.python = python(env, t);
  return r;
}

}  // namespace ferry::doctor
