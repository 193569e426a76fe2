// ferry's entry point: the one place errors are caught and printed.
#include <cstdio>
#include <exception>
#include <string>

#include "cli/command_tree.hpp"
#include "cli/commands.hpp"
#include "env/env.hpp"
#include "util/util.hpp"

int main(int argc, char** argv) {
  CLI::App app{"ferry: get Python environments onto HPC allocations, fast and safely"};
  // "ferry 0.1.0 (git abc1234)": the first two words are the manifests' `tool` field, as before.
  app.set_version_flag("--version",
                       std::string(ferry::env::k_tool) + " (" + ferry::cli::k_revision + ")");
  app.require_subcommand(1);
  int exit_status = 0;  // set by the verbs that end with a status of their own
  ferry::cli::add_pack(app);
  ferry::cli::add_unpack(app);
  ferry::cli::add_inspect(app);
  ferry::cli::add_activate(app);
  ferry::cli::add_venv(app);
  ferry::cli::add_job_commands(app, exit_status);
  ferry::cli::add_stage(app, exit_status);
  ferry::cli::add_module(app);
  ferry::cli::add_dask(app, exit_status);
  ferry::cli::add_ray(app, exit_status);
  ferry::cli::add_sweep(app, exit_status);
  ferry::cli::add_container(app);
  ferry::cli::add_doctor(app);
  ferry::cli::add_docs(app);
  // A signal that is removing ferry's temporary trees ends the process itself (128 + signal):
  // the errors that removal causes in the work still running are not ferry's to print.
  try {
    app.parse(argc, argv);  // also runs the chosen verb
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "ferry: error: %s\n", e.what());
    return 2;
  } catch (const ferry::Error& e) {
    ferry::util::await_signal_exit();
    std::fprintf(stderr, "ferry: error: %s\n", e.what());
    return static_cast<int>(e.kind());
  } catch (const std::exception& e) {
    ferry::util::await_signal_exit();
    std::fprintf(stderr, "ferry: error: %s\n", e.what());
    return 1;
  }
  ferry::util::await_signal_exit();
  return exit_status;
}
