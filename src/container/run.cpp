// ferry run: the ch-run line for a command in an image, with the image's environment applied
// and the host's Python variables kept out.
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>

#include <filesystem>

#include <fmt/format.h>

#include "container/container.hpp"
#include "format/format.hpp"

namespace ferry::container {
namespace {

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A bind's target in the image: made when missing (ch-run needs it to exist).
void make_target(const std::string& image, const std::string& dst, const std::string& what) {
  std::string inside = image + dst;
  struct stat st {};
  if (::lstat(inside.c_str(), &st) == 0) return;
  std::error_code ec;
  std::filesystem::create_directories(inside, ec);
  if (ec)
    throw Error(fmt::format("{}: its target {} is missing in the image {} and cannot be made: {}",
                            what, dst, image, ec.message()),
                Error::Kind::usage);
}

// A system directory of the image: the host's must not be bound over it. /dev/shm and /var/tmp
// are users' places.
bool system_path(const std::string& path) {
  auto under = [&](const std::string& top) { return path == top || path.starts_with(top + "/"); };
  if (under("/dev/shm") || under("/var/tmp")) return false;
  for (const char* top : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/usr", "/etc",
                          "/opt", "/proc", "/sys", "/dev", "/boot", "/run", "/var", "/ch"})
    if (under(top)) return true;
  return path == "/";
}

}  // namespace

std::vector<std::string> environ_with_user() {
  std::vector<std::string> vars;
  bool user = false;
  for (char** e = environ; *e; ++e) {
    vars.emplace_back(*e);
    user |= vars.back().starts_with("USER=");
  }
  if (!user)
    if (const passwd* pw = ::getpwuid(::geteuid()))
      vars.push_back(std::string("USER=") + pw->pw_name);
  return vars;
}

void run(const RunOptions& options) {
  char buffer[PATH_MAX];
  if (!::getcwd(buffer, sizeof buffer)) util::throw_errno(".", "cannot read", errno);
  RunOptions o = options;
  if (const char* tmpdir = std::getenv("TMPDIR"); tmpdir && o.tmpdir.empty()) o.tmpdir = tmpdir;
  if (!o.join_tag.empty() && o.join_count == 0) {
    const char* local = std::getenv("LOCAL_WORLD_SIZE");
    auto count = local ? util::parse_decimal(local, 1u << 20) : std::nullopt;
    if (!count || *count == 0)
      throw Error(fmt::format("--join {}: LOCAL_WORLD_SIZE is not set (ferry rank and ferry "
                              "launch set it; ranks on a node share one container)",
                              o.join_tag),
                  Error::Kind::usage);
    o.join_count = static_cast<unsigned>(*count);
  }
  // ch-run's peers meet through /dev/shm by tag: the node's name keeps nodes that share it (a
  // test cluster's, a misconfigured site's) from joining across nodes.
  if (!o.join_tag.empty()) o.join_tag += "." + util::host_name();
  util::exec_command(run_argv(o, buffer), environ_with_user());
}

const std::vector<std::string>& unset_globs() {
  static const std::vector<std::string> globs = {
      "PYTHONPATH", "PYTHONHOME",  "PYTHONSTARTUP",   "PYTHONUSERBASE", "CONDA_*",
      "_CE_*",      "VIRTUAL_ENV", "LD_LIBRARY_PATH", "LD_PRELOAD"};
  return globs;
}

std::vector<std::string> run_argv(const RunOptions& o, const std::string& cwd) {
  if (!util::on_path(o.ch_run))
    throw Error(fmt::format("{}: not found: ferry run needs Charliecloud (Debian: "
                            "charliecloud-runtime)",
                            o.ch_run),
                Error::Kind::usage);
  std::string image = util::absolute_path(o.image);
  bool squash = is_squashfs_name(image) || format::is_squashfs_file(image);
  struct stat st {};
  if (squash ? ::stat(image.c_str(), &st) != 0 || !S_ISREG(st.st_mode) : !is_dir(image))
    throw Error(fmt::format("{}: not an image ({})", image,
                            squash ? "no such SquashFS file" : "a directory, or a .sqfs file"),
                Error::Kind::usage);
  if (!squash && o.set_env.empty() && !std::filesystem::exists(image + "/ch/environment"))
    throw Error(fmt::format("{}: no /ch/environment (build it with ferry image build, or name "
                            "one with --set-env FILE)",
                            image),
                Error::Kind::usage);
  if (o.command.empty()) throw Error("ferry run: no command (after --)", Error::Kind::usage);
  std::vector<std::string> argv = {o.ch_run};
  for (const std::string& glob : unset_globs()) argv.push_back("--unset-env=" + glob);
  argv.push_back(o.set_env.empty() ? "--set-env" : "--set-env=" + util::absolute_path(o.set_env));
  bool bind_cwd = !squash && !system_path(cwd);
  if (!squash && cwd != "/" && !bind_cwd)
    std::fprintf(stderr,
                 "ferry: run: the working directory %s is a system path: not bound over the "
                 "image's (starting in /)\n",
                 cwd.c_str());
  if (bind_cwd) {
    make_target(image, cwd, "the working directory");
    argv.push_back("--bind=" + cwd);
  }
  // ch-run unsets TMPDIR and binds its directory at /tmp; a host path to it (an argument made
  // from $TMPDIR) should work inside as well, so it is bound at its own path too. Not where it
  // cannot be: in a SquashFS image, under /tmp (inside ch-run's bind), or in an image directory
  // this user cannot add it to. There TMPDIR names /tmp.
  std::string tmpdir = o.tmpdir;
  while (tmpdir.size() > 1 && tmpdir.back() == '/') tmpdir.pop_back();
  if (!tmpdir.empty() && tmpdir[0] == '/' && tmpdir != "/tmp" && is_dir(tmpdir) &&
      !system_path(tmpdir) && !(bind_cwd && tmpdir == cwd)) {
    bool own_path = !squash && !tmpdir.starts_with("/tmp/");
    if (own_path) {
      try {
        make_target(image, tmpdir, "$TMPDIR");
      } catch (const Error&) {
        own_path = false;
      }
    }
    if (own_path) argv.push_back("--bind=" + tmpdir);
    argv.push_back("--set-env=TMPDIR=" + (own_path ? tmpdir : std::string("/tmp")));
  }
  for (const std::string& bind : o.binds) {
    std::size_t colon = bind.find(':');
    std::string src = util::absolute_path(bind.substr(0, colon));
    std::string dst = colon == std::string::npos ? src : bind.substr(colon + 1);
    if (dst.empty() || dst[0] != '/')
      throw Error(fmt::format("--bind {}: the target must be an absolute path", bind),
                  Error::Kind::usage);
    if (::stat(src.c_str(), &st) != 0)
      throw Error(fmt::format("--bind {}: {} does not exist here", bind, src), Error::Kind::usage);
    if (!squash) make_target(image, dst, "--bind " + bind);
    argv.push_back("--bind=" + src + ":" + dst);
  }
  if (!o.join_tag.empty()) {
    if (o.join_count == 0)
      throw Error(
          fmt::format("--join {}: how many ranks share the container is not known", o.join_tag),
          Error::Kind::usage);
    argv.push_back(fmt::format("--join-ct={}", o.join_count));
    argv.push_back("--join-tag=" + o.join_tag);
  }
  argv.push_back("--cd=" + (!o.cd.empty() ? o.cd : bind_cwd ? cwd : "/"));
  argv.push_back(image);
  argv.push_back("--");
  argv.insert(argv.end(), o.command.begin(), o.command.end());
  return argv;
}

}  // namespace ferry::container
