// ferry module: modulefiles (Lmod or Tcl) for environments (module.hpp).
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "module/module.hpp"

namespace ferry::cli {
namespace {

void add_conda_config(CLI::App& app) {
  auto config = std::make_shared<module::CondaConfig>();
  auto threads = std::make_shared<int>(0);
  CLI::App* cmd = app.add_subcommand(
      "conda-config",
      "Set a shared conda installation's system settings (ROOT/.condarc) and pins "
      "(ROOT/conda-meta/pinned), keeping everything already there");
  cmd->add_option("ROOT", config->root, "The conda installation")->required();
  CLI::Option* t = cmd->add_option("--threads", *threads, "default_threads: N");
  cmd->add_option("--channel", config->channels,
                  "Put this channel first in channels (repeat: in this order)");
  cmd->add_flag("--strict-priority", config->strict_priority, "channel_priority: strict");
  cmd->add_flag("--no-auto-update", config->no_auto_update, "auto_update_conda: false");
  cmd->add_option("--pin", config->pins,
                  "Append this match spec to conda-meta/pinned once, e.g. 'cudatoolkit <10.3'");
  cmd->callback([=] {
    if (t->count() > 0) config->threads = *threads;
    for (const module::ConfigWritten& w : module::write_conda_config(*config))
      std::printf("%s %s\n", util::name(w.action).c_str(), w.path.c_str());
  });
}

}  // namespace

void add_module(CLI::App& app) {
  auto opts = std::make_shared<module::Options>();
  auto lmod = std::make_shared<std::string>();
  auto tcl = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto conda_root = std::make_shared<std::string>();
  auto user_dirs = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "module",
      "Write Lmod or Tcl modulefiles for environments; module unload restores the shell exactly");
  cmd->add_option("PREFIX", opts->prefixes,
                  "Environments (conda envs, venvs, ferry-unpacked envs)");
  cmd->add_option(
      "--conda-root", *conda_root,
      "A conda installation: conda/VERSION for it and conda-envs/ENV/PYTHON for each of its envs/, "
      "which put CONDA_ENVS_PATH and CONDA_PKGS_DIRS first");
  cmd->add_option("--user-dirs", *user_dirs,
                  "With --conda-root: each user's directory, expanded at load, e.g. "
                  "'$SCRATCH/conda': its envs/ "
                  "and pkgs/ go before ROOT's");
  CLI::Option* l = cmd->add_option(
      "--lmod", *lmod, "Write Lua modulefiles for Lmod into DIR (DIR/NAME/VERSION.lua)");
  CLI::Option* t = cmd->add_option(
      "--tcl", *tcl, "Write Tcl modulefiles for Environment Modules into DIR (DIR/NAME/VERSION)");
  l->excludes(t);
  cmd->add_option("--name", *name,
                  "NAME or NAME/VERSION (one environment only); default: the directory's "
                  "name / the Python major.minor");
  cmd->add_option("--family", opts->family,
                  "Module family: one of it loaded at a time (default python; '' for none)");
  cmd->add_flag("-f,--force", opts->force, "Replace a different modulefile of the same name");
  cmd->add_flag("--json", *json, "Print the result as JSON");
  cmd->callback([=] {
    if (lmod->empty() == tcl->empty())
      throw Error("module: give one of --lmod DIR or --tcl DIR", Error::Kind::usage);
    opts->system = lmod->empty() ? module::System::tcl : module::System::lmod;
    opts->dir = lmod->empty() ? *tcl : *lmod;
    if (!name->empty()) opts->name = *name;
    if (!conda_root->empty()) opts->conda_root = *conda_root;
    if (!user_dirs->empty()) opts->user_dirs = *user_dirs;
    std::vector<module::Written> written = module::write_modulefiles(*opts);
    if (*json) {
      print_json({{"system", opts->system}, {"modules", written}});
      return;
    }
    for (const module::Written& w : written)
      std::printf("%s %s -> %s (%s env, %zu packages)\n", util::name(w.action).c_str(),
                  w.module.c_str(), w.path.c_str(), util::name(w.kind).c_str(), w.packages);
    std::printf("use it: module use %s; module load %s\n", opts->dir.c_str(),
                written.empty() ? "" : written.front().name.c_str());
  });
  add_conda_config(app);
}

}  // namespace ferry::cli
