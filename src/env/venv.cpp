// ferry venv: make (or reuse) a venv with --system-site-packages on top of a base Python, as
// ezpz's ezpz_setup_venv_from_conda does, without its failure modes (research/launch.md §1.7):
//  - no uv (installed there with curl | sh, which compute nodes cannot reach): the base's own
//    interpreter runs `-m venv`;
//  - the base is named, or found once from the active env, and checked to run; not "whatever
//    python3 is on PATH after the last module load";
//  - reuse goes by what the venv is (pyvenv.cfg home and version), not by its name: a venv made on
//    another base (same basename, an older module) is refused, not silently used;
//  - never half-made: built in a temporary sibling, checked, renamed into place under a lock, so a
//    killed job, or every rank running the same setup line, leaves nothing or a working venv.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "env/env.hpp"

namespace ferry::env {
namespace {

namespace fs = std::filesystem;

struct Ran {
  int status = 0;
  std::string output;  // stdout and stderr together
  // The last non-empty line: Python's one-line summary of a traceback.
  std::string last_line() const {
    std::string s = output;
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    std::size_t nl = s.rfind('\n');
    return nl == std::string::npos ? s : s.substr(nl + 1);
  }
};

// Runs argv without a shell, stdin from /dev/null; the helper dies with ferry (util::run_command).
Ran run(const std::vector<std::string>& argv) {
  util::CommandOutput c = util::run_command(argv);
  Ran r;
  r.status = c.status;
  r.output = c.out + c.err;
  return r;
}

// Every Python runs with -I: a PYTHONHOME or PYTHONPATH left by a module, or a venv.py in the
// working directory, must not decide what we probe or build.
Ran run_python(const std::string& python, const std::vector<std::string>& args) {
  std::vector<std::string> argv{python, "-I"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

// A helper's output as lines, each without surrounding blanks (the first and last too).
std::vector<std::string> output_lines(const std::string& output) {
  std::vector<std::string> lines;
  for (std::string_view line : util::split(util::trim(output), '\n'))
    lines.emplace_back(util::trim(line));
  return lines;
}

bool same_dir(const std::string& a, const std::string& b) {
  std::error_code ec;
  bool same = fs::equivalent(a, b, ec);
  return ec ? util::absolute_path(a) == util::absolute_path(b) : same;
}

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

struct Base {
  std::string prefix, from, python, version, base_prefix;
  bool has_pip = false;
  std::vector<std::string> warnings;
};

// --base, else the active env. A $VIRTUAL_ENV is not a base: `python -m venv` run from a venv
// makes a venv on that venv's base anyway, so name the base that really is used (and say so).
Base choose_base(const std::optional<std::string>& given) {
  Base b;
  const char* conda = std::getenv("CONDA_PREFIX");
  const char* venv = std::getenv("VIRTUAL_ENV");
  const char* path = std::getenv("PATH");
  if (given) {
    b.prefix = util::absolute_path(*given);
    b.from = "--base";
  } else if (conda && *conda) {
    b.prefix = util::absolute_path(conda);
    b.from = "$CONDA_PREFIX";
  } else if (venv && *venv) {
    std::string dir = util::absolute_path(venv);
    std::string cfg = dir + "/pyvenv.cfg";
    std::string home = ::access(cfg.c_str(), R_OK) == 0 ? read_pyvenv_cfg(dir)["home"] : "";
    if (home.empty())
      throw Error(fmt::format("{}: no home in pyvenv.cfg ($VIRTUAL_ENV): pass --base PREFIX", cfg),
                  Error::Kind::usage);
    b.prefix = fs::path(util::absolute_path(home)).parent_path().string();
    b.from = "$VIRTUAL_ENV";
    b.warnings.push_back(
        fmt::format("$VIRTUAL_ENV={} is a venv: the new venv is made on its base "
                    "{} and does not see that venv's own packages",
                    venv, b.prefix));
  } else {
    // The prefix of python3 on PATH, as it reports it: PATH may hold a shim (pyenv) or a venv's
    // bin.
    for (std::string_view dir : util::split(path ? path : "", ':')) {
      std::string python = std::string(dir.empty() ? "." : dir) + "/python3";
      if (!is_executable_file(python)) continue;
      Ran r = run_python(python, {"-c", "import sys; print(sys.base_prefix)"});
      if (r.status != 0)
        throw Error(fmt::format("{}: python3 on PATH does not run: {}", python, r.last_line()));
      b.prefix = util::absolute_path(std::string(util::trim(r.output)));
      b.from = "python3 on PATH";
      break;
    }
    if (b.prefix.empty())
      throw Error("no base Python: no --base, $CONDA_PREFIX, $VIRTUAL_ENV or python3 on PATH",
                  Error::Kind::usage);
  }
  return b;
}

constexpr const char* k_probe =
    "import sys, importlib.util as u\n"
    "print(sys.prefix); print(sys.base_prefix); print('%d.%d.%d' % sys.version_info[:3])\n"
    "print(int(u.find_spec('venv') is not None)); print(int(u.find_spec('pip') is not None))\n";

// Refuses, in one line, a base that is not a prefix with a working bin/python3 that has venv.
void probe_base(Base& b) {
  std::string from =
      b.from == "--base" ? "" : fmt::format(" (the base from {}; pass --base)", b.from);
  struct stat st {};
  if (::stat(b.prefix.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw Error(fmt::format("{}: base Python prefix not found{}", b.prefix, from),
                Error::Kind::usage);
  b.python = b.prefix + "/bin/python3";
  if (!is_executable_file(b.python))
    throw Error(fmt::format("{}: not a Python prefix: no bin/python3{}", b.prefix, from),
                Error::Kind::usage);
  Ran r = run_python(b.python, {"-c", k_probe});
  std::vector<std::string> out = output_lines(r.output);
  if (r.status != 0 || out.size() != 5)
    throw Error(fmt::format("{}: does not run: {}", b.python, r.last_line()));
  b.base_prefix = out[1];
  b.version = out[2];
  b.has_pip = out[4] == "1";
  // A venv's venv sees only the bottom base's packages: say which base to name instead.
  if (out[0] != b.base_prefix)
    throw Error(fmt::format("{}: is a venv itself: a venv on it would not see its packages; "
                            "use --base {} (its base)",
                            b.prefix, b.base_prefix),
                Error::Kind::usage);
  if (out[3] != "1") throw Error(fmt::format("{}: has no venv module", b.python));
}

// Why the venv at path cannot be reused on base b; nullopt when it can. Same home (the base's bin
// directory) and same major.minor: the venv's python is a symlink to the base's, so a patch-level
// update of the base keeps it working, while 3.11 -> 3.12 would leave its site-packages unread.
std::optional<std::string> why_not_reusable(const std::string& path, const Base& b) {
  PyvenvCfg cfg = read_pyvenv_cfg(path);
  std::string home = cfg["home"];
  if (home.empty()) return std::string("has no home in its pyvenv.cfg");
  if (!same_dir(home, b.prefix + "/bin"))
    return fmt::format("was made on {}, not on {}", fs::path(home).parent_path().string(),
                       b.prefix);
  if (cfg["include-system-site-packages"] != "true")
    return "was made without --system-site-packages";
  std::string version = pyvenv_python_version(cfg);
  if (python_major_minor(version) != python_major_minor(b.version))
    return fmt::format("was made for Python {}, and {} has {}", version, b.prefix, b.version);
  Ran r = run_python(path + "/bin/python",
                     {"-c", "import sys; print(sys.prefix); print(sys.base_prefix)"});
  std::vector<std::string> out = output_lines(r.output);
  if (r.status != 0 || out.size() != 2)
    return fmt::format("has a python that does not run ({})", r.last_line());
  if (!same_dir(out[0], path) || out[1] != b.base_prefix)
    return fmt::format("has a python that reports prefix {} on {}", out[0], out[1]);
  return std::nullopt;
}

void write_file(const std::string& path, std::string_view data, mode_t mode) {
  util::UniqueFd fd(
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd) util::throw_errno(path, "cannot write", errno);
  util::write_all(fd.get(), data, path);
}

// venv writes its directory into bin/activate* and pyvenv.cfg's `command`: there it is still the
// temporary name, so point those at the final path before the rename makes it true.
void retarget(const std::string& tmp, const std::string& dest) {
  std::vector<std::string> files{tmp + "/pyvenv.cfg"};
  std::error_code ec;
  for (const auto& ent : fs::directory_iterator(tmp + "/bin", ec))
    if (ent.is_regular_file(ec) && !ent.is_symlink(ec)) files.push_back(ent.path().string());
  for (const auto& f : files) {
    std::string out;
    if (relocation::replace_text(util::read_file(f), tmp, dest, out)) write_file(f, out, 0644);
  }
}

// Made --without-pip (ensurepip is missing from some Debian Pythons, and a copy of pip per venv is
// thousands of files on a parallel file system): the base's pip, seen through the system
// site-packages, does the work. But a bare `pip` on PATH would then be the base's own script,
// which installs into the base; these make `pip` after activation install into the venv.
void write_pip_wrappers(const std::string& tmp, const std::string& version) {
  const std::string script =
      "#!/bin/sh\n"
      "# ferry venv: the base's pip, run by this venv's python, installs into this venv.\n"
      "exec \"$(dirname -- \"$0\")/python\" -m pip \"$@\"\n";
  for (std::string name :
       {std::string("pip"), std::string("pip3"), "pip" + python_major_minor(version)}) {
    std::string p = tmp + "/bin/" + name;
    if (::access(p.c_str(), F_OK) != 0) write_file(p, script, 0755);
  }
}

void build_venv(const std::string& tmp, const std::string& dest, const Base& b) {
  std::string name = fs::path(dest).filename().string();
  // --prompt: else the shell prompt would show the temporary directory's name.
  Ran r = run_python(
      b.python, {"-m", "venv", "--system-site-packages", "--without-pip", "--prompt", name, tmp});
  if (r.status != 0)
    throw Error(fmt::format("{}: `{} -m venv` failed: {}", dest, b.python, r.last_line()));
  retarget(tmp, dest);
  if (b.has_pip) write_pip_wrappers(tmp, b.version);
  // Check the new interpreter before anyone can see it.
  r = run_python(tmp + "/bin/python",
                 {"-c", "import sys; print(sys.prefix); print(sys.base_prefix)"});
  std::vector<std::string> out = output_lines(r.output);
  if (r.status != 0 || out.size() != 2 || !same_dir(out[0], tmp) || out[1] != b.base_prefix)
    throw Error(fmt::format("{}: the new venv's python does not work: {}", dest, r.last_line()));
}

}  // namespace

VenvResult make_venv(const VenvOptions& o) {
  util::Stopwatch clock;
  // The base first: a bad base must leave nothing behind, not even a parent directory.
  Base b = choose_base(o.base);
  probe_base(b);
  VenvResult res;
  // PATH as the kernel reaches it (W/link/../v is the v beside link's target).
  util::SiblingPath where = util::sibling_path(o.path);
  res.path = where.path;
  res.activate = "source " + util::shell_word(res.path + "/bin/activate");
  res.base = b.prefix;
  res.base_from = b.from;
  res.python_version = b.version;
  res.has_pip = b.has_pip;
  res.warnings = b.warnings;
  if (!b.has_pip)
    res.warnings.push_back(
        fmt::format("{} has no pip, so neither has the venv; add one with "
                    "{}/bin/python -m ensurepip",
                    b.prefix, res.path));
  const std::string& parent = where.parent;
  const std::string& name = where.name;
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw Error(fmt::format("{}: cannot create directory: {}", parent, ec.message()));
  if (::access(parent.c_str(), W_OK) != 0)
    throw Error(
        fmt::format("{}: cannot make the venv {} here: {}", parent, name, std::strerror(errno)));

  util::StagedTree tree(where);
  struct stat st {};
  bool exists = ::lstat(res.path.c_str(), &st) == 0;
  bool replace = false;
  if (exists) {
    if (!S_ISDIR(st.st_mode))
      throw Error(fmt::format("{}: exists and is not a directory", res.path));
    if (::access((res.path + "/pyvenv.cfg").c_str(), F_OK) == 0) {
      std::optional<std::string> why = why_not_reusable(res.path, b);
      if (!why && !o.force) {
        res.action = VenvAction::reused;
        res.seconds = clock.seconds();
        return res;
      }
      if (why && !o.force)
        throw Error(fmt::format("{}: a venv that {}: use --force to replace it, or another path",
                                res.path, *why),
                    Error::Kind::usage);
      replace = true;
    } else if (!fs::is_empty(res.path, ec)) {
      // --force replaces venvs only: a typo must not swap away someone's project directory.
      throw Error(
          fmt::format("{}: exists and is not a venv (no pyvenv.cfg): refusing to replace it",
                      res.path),
          Error::Kind::usage);
    }
  }

  build_venv(tree.stage(), res.path, b);
  // A venv replaced is swapped atomically; the old one ends up in the temporary and goes with it.
  tree.commit(replace);
  res.action = replace ? VenvAction::replaced : VenvAction::created;
  res.seconds = clock.seconds();
  return res;
}

}  // namespace ferry::env
