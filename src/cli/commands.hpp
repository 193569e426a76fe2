// The CLI's verbs: each registers its options on the app and calls one library function. Errors
// are thrown, to main's one exit path; a verb that ends with a status of its own (one it passes on
// from its children, or a failure it has reported itself) sets exit_status, which main returns.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json_fwd.hpp>

#include "job/job.hpp"

namespace ferry::cli {

// "git abc1234", or "unknown revision" where ferry was not built from a git checkout or a
// `make dist` tarball: generated at build time by cmake/FerryRevision.cmake.
extern const char k_revision[];

// A result as --json prints it: its JSON form (beside the struct, in its layer's header), indented.
void print_json(const nlohmann::ordered_json& json);

// Restricts OPT's value to OFFERED, and records them for the shell completions and the man pages
// (command_tree.hpp). ALSO_ACCEPTED pass the check without being offered: values the verb refuses
// itself, with a better line than "not in {...}" (pack's zip or squashfs).
CLI::Option* one_of(CLI::Option* opt, const std::vector<std::string>& offered,
                    const std::vector<std::string>& also_accepted = {});
// What one_of recorded for OPT (empty: any value).
const std::vector<std::string>& offered_values(const CLI::Option* opt);

void add_pack(CLI::App& app);
void add_unpack(CLI::App& app);
void add_inspect(CLI::App& app);
void add_activate(CLI::App& app);
void add_venv(CLI::App& app);
// --job, --machine, --sysfs-root, --hostname: how a verb that reads the site may be told another
// one.
void add_site_options(CLI::App* cmd, job::SiteOptions& options);
// Enters job `id` (--job), or with none, when this shell is in no job, the user's one running
// job on this host (saying so on stderr): its variables become this process's, so discovery and
// every child (srun, mpiexec) see the job. Throws Error naming the job or listing the choices.
void enter_job(const std::string& id);
// job, hostlist, launch, rank (job_commands.cpp).
void add_job_commands(CLI::App& app, int& exit_status);
// stage and stage-node (stage_commands.cpp).
void add_stage(CLI::App& app, int& exit_status);
// module and conda-config (module_commands.cpp).
void add_module(CLI::App& app);
// dask and dask-node (dask_commands.cpp).
void add_dask(CLI::App& app, int& exit_status);
// ray and ray-node (ray_commands.cpp).
void add_ray(CLI::App& app, int& exit_status);
// sweep submit, run, status, resubmit and cancel (sweep_commands.cpp).
void add_sweep(CLI::App& app, int& exit_status);
// image build and run (container_commands.cpp).
void add_container(CLI::App& app);
// doctor (doctor_commands.cpp).
void add_doctor(CLI::App& app);

}  // namespace ferry::cli
