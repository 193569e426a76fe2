// ferry::module — environments as environment modules: Lmod (Lua) and Environment Modules (Tcl)
// modulefiles that reproduce an environment's activation with reversible commands only, so that
// `module unload` gives the shell back exactly as it was. Built on env and util.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "env/env.hpp"

namespace ferry::module {

enum class System { lmod, tcl };
NLOHMANN_JSON_SERIALIZE_ENUM(System, {{System::lmod, "lmod"}, {System::tcl, "tcl"}})

struct Package {
  std::string name, version;
};
FERRY_JSON_FIELDS(Package, name, version)

// What a modulefile needs to know about an environment (read from disk, nothing executed).
struct EnvInfo {
  std::string prefix;  // absolute
  env::Kind kind = env::Kind::prefix;
  std::string python_version;     // "3.11.7", or empty when none is found
  std::vector<Package> packages;  // sorted by name: conda-meta, else site-packages metadata
  std::vector<std::string> activate_scripts;  // etc/conda/activate.d/*.sh, sorted, absolute
  // Variables those scripts assign whole (`export NAME=...` whose value does not name $NAME): the
  // engines record such a change as a plain setenv, so the modulefile keeps their earlier value.
  std::vector<std::string> script_vars;
  // Variables they edit as lists (`export NAME=x:$NAME`): the engines reverse those themselves.
  std::vector<std::string> script_list_vars;
  std::optional<std::string>
      unpacked_from;  // .ferry/unpacked.json "archive", when ferry unpacked it
  // `conda env config vars set` values (conda-meta/state "env_vars"): conda sets them on
  // activation.
  std::vector<std::pair<std::string, std::string>> env_vars;
};

// Throws Error naming the prefix when it is not a conda env or a venv.
EnvInfo describe(const std::string& prefix);

// The packages shown first in whatis and help (python, numpy, torch, ...), in that order.
std::vector<Package> key_packages(const EnvInfo& info);

struct Naming {
  std::string name, version, family;
};
// Default NAME/VERSION: the prefix's basename / the Python major.minor (or "default").
Naming default_naming(const EnvInfo& info, const std::string& family);

// A module written for a conda root (`--conda-root`): the base env or one of ROOT/envs/*. Its
// modulefile also puts CONDA_ENVS_PATH (':'-separated) and CONDA_PKGS_DIRS (','-separated) in front
// of the user's own values: the user's directories first, when user_dirs names them, then ROOT's.
struct CondaRoot {
  std::string root;  // absolute
  // --user-dirs, split: literal text and the names of the environment variables between them,
  // expanded by the modulefile when it is loaded. Empty: no user directories.
  struct Part {
    std::string text;  // literal text, or the variable's name
    bool variable = false;
  };
  std::vector<Part> user_dirs;
  std::string user_dirs_pattern;  // as given, for help
};

// Splits a --user-dirs pattern ("$SCRATCH/conda", "/scratch/${USER}/conda"); throws a usage Error
// for anything else ('$' not before a name, ',' or ':', a relative path, control characters).
std::vector<CondaRoot::Part> parse_user_dirs(const std::string& pattern);

// Checks that root is a conda installation (conda-meta/ and bin/, and a conda package, condabin/
// or envs/; otherwise one Error) and returns its envs: ROOT/envs/* with conda-meta/, sorted,
// absolute. Hidden entries and directories that are not conda envs are left out.
std::vector<std::string> conda_root_envs(const std::string& root);

// The modulefile text; root is set for modules written by --conda-root.
std::string render(const EnvInfo& info, const Naming& naming, System system,
                   const CondaRoot* root = nullptr);

struct Options {
  std::vector<std::string> prefixes;
  System system = System::lmod;
  std::string dir;                  // the module tree (MODULEPATH entry); created when missing
  std::optional<std::string> name;  // NAME or NAME/VERSION, only with one prefix
  std::string family = "python";
  bool force = false;  // replace a different modulefile of the same name
  // --conda-root ROOT (instead of prefixes): conda/<conda version> for ROOT and
  // conda-envs/<env>/<python major.minor> for each conda env in ROOT/envs.
  std::optional<std::string> conda_root;
  std::optional<std::string> user_dirs;  // --user-dirs pattern, only with conda_root
};

// What became of a file ferry module or conda-config writes.
enum class WriteAction { written, unchanged, replaced };
NLOHMANN_JSON_SERIALIZE_ENUM(WriteAction, {{WriteAction::written, "written"},
                                           {WriteAction::unchanged, "unchanged"},
                                           {WriteAction::replaced, "replaced"}})

struct Written {
  std::string prefix;
  env::Kind kind = env::Kind::prefix;
  std::string module;  // NAME/VERSION
  std::string name;    // NAME: module load NAME takes its default version
  std::string path, python_version;
  WriteAction action = WriteAction::written;
  std::size_t packages = 0;
  std::vector<Package> key_packages;
  std::size_t activate_scripts = 0;
};
FERRY_JSON_FIELDS(Written, prefix, kind, module, path, action, python_version, packages,
                  key_packages, activate_scripts)

// Checks every prefix and target first (nothing is written when one fails), then writes each
// modulefile to a temporary file in its directory and renames it into place.
std::vector<Written> write_modulefiles(const Options& options);

// ferry conda-config: a shared conda installation's system settings (ROOT/.condarc) and pins
// (ROOT/conda-meta/pinned), merged into what is there: no key, comment or pin is ever dropped.
struct CondaConfig {
  std::string root;
  std::optional<int> threads;         // default_threads
  std::vector<std::string> channels;  // put first in channels, in this order (conda's --prepend)
  bool strict_priority = false;       // channel_priority: strict
  bool no_auto_update = false;        // auto_update_conda: false
  std::vector<std::string> pins;      // lines of conda-meta/pinned, each appended once
};

struct ConfigWritten {
  std::string path;
  WriteAction action = WriteAction::written;  // written or unchanged
};

// Edits .condarc as lines: top-level `key: value` and `key:` followed by `  - item` lists are
// understood; comments, blank lines and other keys are kept as they are. A line it cannot read
// (nested maps it must change, flow lists, documents, tabs) is one Error naming file and line,
// and nothing is written. Both files are written beside their place and renamed.
std::string merge_condarc(const std::string& text, const CondaConfig& config,
                          const std::string& path);
std::vector<ConfigWritten> write_conda_config(const CondaConfig& config);

}  // namespace ferry::module
