// ferry module: every modulefile checked, then written beside its place and renamed into it.
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "module/module.hpp"
#include "util/util.hpp"

namespace ferry::module {
namespace {

void check_component(const std::string& what, const std::string& value) {
  bool bad = value.empty() || value == "." || value == ".." || value.front() == '.' ||
             value.find('/') != std::string::npos;
  for (char c : value) bad = bad || static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  if (bad)
    throw Error(fmt::format("--name: {} '{}' must be a non-empty file name not starting with '.'",
                            what, value),
                Error::Kind::usage);
}

struct Target {
  EnvInfo info;
  Naming naming;
  std::string path, text;
  WriteAction action = WriteAction::written;
};

}  // namespace

std::vector<Written> write_modulefiles(const Options& options) {
  if (options.conda_root && !options.prefixes.empty())
    throw Error("ferry module: give environments or --conda-root, not both", Error::Kind::usage);
  if (options.conda_root && options.name)
    throw Error(
        "--name: not with --conda-root (its modules are conda/VERSION and conda-envs/ENV/VERSION)",
        Error::Kind::usage);
  if (options.user_dirs && !options.conda_root)
    throw Error("--user-dirs: only with --conda-root", Error::Kind::usage);
  if (!options.conda_root && options.prefixes.empty())
    throw Error("ferry module: no environment given (PREFIX... or --conda-root ROOT)",
                Error::Kind::usage);
  if (options.name && options.prefixes.size() > 1)
    throw Error(
        "--name: only with a single environment (each of several gets its own default name)",
        Error::Kind::usage);
  if (!options.family.empty()) check_component("family", options.family);
  std::string dir = util::absolute_path(options.dir);

  // --conda-root: ROOT itself as conda/<conda version>, each ROOT/envs/ENV as
  // conda-envs/ENV/<python>.
  std::optional<CondaRoot> root;
  std::vector<std::string> prefixes = options.prefixes;
  if (options.conda_root) {
    root.emplace();
    if (options.user_dirs) {
      root->user_dirs = parse_user_dirs(*options.user_dirs);
      root->user_dirs_pattern = *options.user_dirs;
    }
    std::vector<std::string> envs = conda_root_envs(*options.conda_root);
    root->root = util::absolute_path(*options.conda_root);
    while (root->root.size() > 1 && root->root.back() == '/') root->root.pop_back();
    prefixes = {root->root};
    prefixes.insert(prefixes.end(), envs.begin(), envs.end());
  }

  // 1. Read every environment and decide every file before touching the disk.
  std::vector<Target> targets;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < prefixes.size(); ++i) {
    Target t;
    t.info = describe(prefixes[i]);
    t.naming = default_naming(t.info, options.family);
    if (options.name) {
      std::size_t slash = options.name->find('/');
      t.naming.name = options.name->substr(0, slash);
      if (slash != std::string::npos) t.naming.version = options.name->substr(slash + 1);
    }
    check_component("NAME", t.naming.name);
    check_component("VERSION", t.naming.version);
    if (root && i == 0) {
      if (t.info.kind != env::Kind::conda)
        throw Error(fmt::format("{}: not a conda root (not a conda environment)", root->root));
      t.naming.name = "conda";
      t.naming.version = "default";
      for (const Package& p : t.info.packages)
        if (p.name == "conda") t.naming.version = p.version;
      check_component("VERSION", t.naming.version);
    } else if (root) {
      t.naming.name = "conda-envs/" + t.naming.name;  // module avail groups them under conda-envs/
    }
    t.path = fmt::format("{}/{}/{}{}", dir, t.naming.name, t.naming.version,
                         options.system == System::lmod ? ".lua" : "");
    if (!seen.insert(t.path).second)
      throw Error(
          fmt::format("{}: two environments would get this modulefile; give one its own --name",
                      t.path),
          Error::Kind::usage);
    t.text = render(t.info, t.naming, options.system, root ? &*root : nullptr);
    struct stat st {};
    if (::lstat(t.path.c_str(), &st) == 0) {
      if (!S_ISREG(st.st_mode))
        throw Error(fmt::format("{}: exists and is not a regular file", t.path));
      if (util::read_file(t.path) == t.text) {
        t.action = WriteAction::unchanged;
      } else if (!options.force) {
        throw Error(fmt::format("{}: a different modulefile exists (--force replaces it)", t.path));
      } else {
        t.action = WriteAction::replaced;
      }
    }
    targets.push_back(std::move(t));
  }

  // 2. Write every file beside its place (a dot file: neither Lmod nor Modules reads it), then
  // 3. rename them all; what this run made is undone unless all are in.
  util::AtomicFileSet files;
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
    throw Error(fmt::format("{}: not a directory", dir));
  for (const Target& t : targets) {
    if (t.action == WriteAction::unchanged) continue;
    files.make_directories(std::filesystem::path(t.path).parent_path().string(),
                           "the module directory");
    files.add(t.path, t.text, 0644);
  }
  files.commit();

  std::vector<Written> out;
  for (const Target& t : targets) {
    Written w;
    w.prefix = t.info.prefix;
    w.kind = t.info.kind;
    w.module = t.naming.name + "/" + t.naming.version;
    w.name = t.naming.name;
    w.path = t.path;
    w.python_version = t.info.python_version;
    w.action = t.action;
    w.key_packages = key_packages(t.info);
    w.packages = t.info.packages.size();
    w.activate_scripts = t.info.activate_scripts.size();
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace ferry::module
