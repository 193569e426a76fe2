// ferry stage (and stage-node, the part that runs on each node): parse and call the stage library.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/progress_bar.hpp"
#include "stage/stage.hpp"

namespace ferry::cli {
namespace {

std::string mib(std::uint64_t bytes) {
  return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
}

void print_result(const stage::StageResult& r) {
  std::printf("%-16s %-9s %12s %9s %12s\n", "host", "status", "bytes", "seconds", "peak memory");
  for (const auto& n : r.nodes)
    std::printf("%-16s %-9s %12s %9.2f %12s\n", n.host.c_str(), util::name(n.status).c_str(),
                mib(n.bytes).c_str(), n.seconds, n.peak_bytes ? mib(n.peak_bytes).c_str() : "-");
  std::string phases;
  for (const auto& [k, v] : r.phases)
    phases += fmt::format("{}{} {:.2f} s", phases.empty() ? "" : ", ", k, v);
  if (r.ok) {
    std::printf("staged %s on %zu nodes in %.2f s via %s (%s)\n", r.dir.c_str(), r.nodes.size(),
                r.seconds, util::name(r.via).c_str(), phases.c_str());
    if (r.image)
      std::printf("  use it: srun ferry run %s -- COMMAND\n", util::shell_word(r.dir).c_str());
    else
      std::printf("  use it: eval \"$(ferry activate %s)\"   (or PATH=%s/bin:$PATH)\n",
                  util::shell_word(r.dir).c_str(), util::shell_word(r.dir).c_str());
  }
}

}  // namespace

void add_stage(CLI::App& app, int& exit_status) {
  auto o = std::make_shared<stage::StageOptions>();
  auto via = std::make_shared<std::string>("auto");
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "stage",
      "Put an environment archive (or a SquashFS image) on node-local storage on every node of "
      "this job, all or nothing");
  cmd->add_option("ARCHIVE", o->archive,
                  "Archive made by ferry pack (or any archive ferry unpack reads), or a SquashFS "
                  "image (ferry image build -o X.sqfs), copied whole")
      ->required();
  cmd->add_option("--to", o->dir,
                  "Directory on every node (absolute, node-local: /mnt/bb/$USER/env); for an "
                  "image, its file (/mnt/bb/$USER/X.sqfs) or the directory it goes in")
      ->required();
  one_of(cmd->add_option("--via", *via,
                         "auto (MPI when ferry-mpi is built, else sbcast), mpi or sbcast"),
         {"auto", "mpi", "sbcast"});
  cmd->add_option("-j,--jobs", o->jobs, "Threads per node (default: all cores)");
  cmd->add_option("--timeout", o->timeout, "Seconds before a stuck stage fails (default 1800)");
  cmd->add_option(
      "--start-timeout", o->start_timeout,
      "MPI path: seconds for the ranks to start on every node before the launcher is stopped "
      "(default 60)");
  auto job_id = std::make_shared<std::string>();
  cmd->add_option("--job", *job_id,
                  "Stage to this job's nodes (Slurm or PBS id) from a shell outside it (default: "
                  "this shell's job, else your one running job on this host)");
  cmd->add_flag("--json", *json, "Print the per-node report as JSON");
  cmd->callback([=, &exit_status] {
    enter_job(*job_id);
    stage::StageOptions opts = *o;
    opts.via = util::from_name<stage::Via>(*via).value();  // one of them: checked above
    std::unique_ptr<ProgressBar> bar = progress_bar(!*json);
    opts.progress = bar.get();
    opts.ferry = util::self_executable();
    opts.ferry_mpi = stage::find_ferry_mpi(opts.ferry);
    stage::StageResult r = stage::stage(opts, job::current_environ());
    if (*json) {
      print_json(r);
    } else {
      print_result(r);
    }
    if (!r.ok) {
      // One line per failed host, then the exit status.
      bool any = false;
      for (const auto& n : r.nodes)
        if (n.status == stage::NodeStatus::failed || n.status == stage::NodeStatus::lost) {
          std::fprintf(stderr, "ferry: error: %s: %s\n", n.host.c_str(), n.error.c_str());
          any = true;
        }
      if (!any)
        std::fprintf(stderr, "ferry: error: stage of %s to %s failed\n", r.archive.c_str(),
                     r.dir.c_str());
      exit_status = 1;
    }
  });

  // The node side, started by ferry stage through srun; not for people. Its words are the stage
  // library's to read (decode_node_options), as ferry stage wrote them.
  CLI::App* n =
      app.add_subcommand("stage-node", "The per-node part of ferry stage (started by it)");
  n->group("");  // hidden from --help
  n->set_help_flag();
  n->prefix_command();  // every word to remaining()
  n->callback([=, &exit_status] {
    stage::NodeOptions node = stage::decode_node_options(n->remaining());
    if (node.step == stage::NodeOptions::Step::prepare) {
      std::printf("%s\n", stage::report_line(stage::prepare_node(node)).c_str());
      return;
    }
    if (node.step == stage::NodeOptions::Step::sweep) {
      stage::sweep_node(node.dir, node.archive);
      std::printf("%s\n", stage::report_line(stage::NodeReport::swept(stage::node_name())).c_str());
      return;
    }
    std::fflush(stdout);
    exit_status = stage::run_node(node);
  });
}

}  // namespace ferry::cli
