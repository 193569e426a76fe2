// ferry doctor [--json]: the facts a support ticket needs (doctor/doctor.hpp).
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "doctor/doctor.hpp"
#include "env/env.hpp"
#include "util/util.hpp"

namespace ferry::cli {

void add_doctor(CLI::App& app) {
  auto o = std::make_shared<job::SiteOptions>();
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "doctor",
      "What ferry finds here, for a support ticket: job, launchers, MPI, node-local storage, "
      "kernel, modules, Charliecloud, Python");
  add_site_options(cmd, *o);
  cmd->add_flag("--json", *json, "Print as JSON");
  cmd->callback([o, json] {
    // The job the other verbs would use; where that cannot be told (several of the user's jobs
    // on this host), doctor says so and goes on, unless --job named one.
    std::string job_error;
    try {
      enter_job(o->job);
    } catch (const Error& e) {
      if (!o->job.empty()) throw;
      job_error = e.what();
    }
    doctor::Options opts{.ferry_version = std::string(env::k_tool) + " (" + k_revision + ")",
                         .ferry_path = util::self_executable(),
                         .site = *o};
    doctor::Report r = doctor::examine(opts, job::current_environ());
    if (!job_error.empty()) r.job.error = job_error;
    if (*json) {
      print_json(r);
    } else {
      std::string text = doctor::render_text(r);
      std::fwrite(text.data(), 1, text.size(), stdout);
    }
  });
}

}  // namespace ferry::cli
