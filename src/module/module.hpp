// ferry::module — environments as environment modules: Lmod (Lua) and Environment Modules (Tcl)
// modulefiles that reproduce an environment's activation with reversible commands only, so that
// `module unload` gives the shell back exactly as it was. Built on env and util.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "env/env.hpp"

namespace ferry::module {

enum class System { lmod, tcl };

struct Package {
  std::string name, version;
};

// What a modulefile needs to know about an environment (read from disk, nothing executed).
struct EnvInfo {
  std::string prefix;          // absolute
  env::Kind kind = env::Kind::prefix;
  std::string python_version;  // "3.11.7", or empty when none is found
  std::vector<Package> packages;      // sorted by name: conda-meta, else site-packages metadata
  std::vector<std::string> activate_scripts;  // etc/conda/activate.d/*.sh, sorted, absolute
  // Variables those scripts assign whole (`export NAME=...` whose value does not name $NAME): the
  // engines record such a change as a plain setenv, so the modulefile keeps their earlier value.
  std::vector<std::string> script_vars;
  // Variables they edit as lists (`export NAME=x:$NAME`): the engines reverse those themselves.
  std::vector<std::string> script_list_vars;
  std::optional<std::string> unpacked_from;   // .ferry/unpacked.json "archive", when ferry unpacked it
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

// The modulefile text.
std::string render(const EnvInfo& info, const Naming& naming, System system);

struct Options {
  std::vector<std::string> prefixes;
  System system = System::lmod;
  std::string dir;                  // the module tree (MODULEPATH entry); created when missing
  std::optional<std::string> name;  // NAME or NAME/VERSION, only with one prefix
  std::string family = "python";
  bool force = false;               // replace a different modulefile of the same name
};

struct Written {
  std::string prefix, kind, name, version, path, python_version;
  std::string action;  // "written", "unchanged" or "replaced"
  std::vector<Package> key_packages;
  std::size_t packages = 0;
  std::size_t activate_scripts = 0;
};

// Checks every prefix and target first (nothing is written when one fails), then writes each
// modulefile to a temporary file in its directory and renames it into place.
std::vector<Written> write_modulefiles(const Options& options);

}  // namespace ferry::module
