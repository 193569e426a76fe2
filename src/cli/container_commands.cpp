// The container verbs: image build (an env into a Charliecloud image) and run (a command in one).
// Each parses and calls the container library.
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "cli/progress_bar.hpp"
#include "container/container.hpp"

namespace ferry::cli {
namespace {

void add_image_build(CLI::App* image) {
  auto o = std::make_shared<container::BuildOptions>();
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = image->add_subcommand(
      "build", "An env (or a ferry archive) on a base root filesystem: a Charliecloud image");
  cmd->add_option("SOURCE", o->source, "The env directory or archive")->required();
  cmd->add_option("--base", o->base, "The base root filesystem: a directory or a SquashFS image")
      ->required();
  cmd->add_option("-o,--output", o->output,
                  "The image to make: a directory, or one SquashFS file when it ends in .sqfs")
      ->required();
  cmd->add_option("--at", o->at, "Where the env goes in the image (default /opt/env)");
  cmd->add_option("-j,--jobs", o->jobs, "Threads (default: all cores)");
  cmd->add_flag("--json", *json, "Print the result as JSON");
  cmd->callback([=] {
    container::BuildOptions options = *o;
    std::unique_ptr<ProgressBar> bar = progress_bar(!*json);
    options.progress = bar.get();
    container::BuildResult r = container::build_image(options);
    bar.reset();
    if (*json) {
      print_json(r);
      return;
    }
    std::printf("built %s\n  %s at %s on %s, %llu files, %.2f s\n  run: ferry run %s -- COMMAND\n",
                r.image.c_str(), r.source.c_str(), r.at.c_str(), r.base.c_str(),
                static_cast<unsigned long long>(r.files), r.seconds, r.image.c_str());
  });
}

void add_run(CLI::App& app) {
  auto o = std::make_shared<container::RunOptions>();
  CLI::App* cmd = app.add_subcommand(
      "run", "A command in a Charliecloud image, with the image's environment (ch-run)");
  cmd->add_option("IMAGE", o->image, "The image: a directory, or a SquashFS file")->required();
  cmd->add_option("COMMAND", o->command, "The command (after --)")->required();
  cmd->add_option("-b,--bind", o->binds, "Bind SRC at DST in the image (SRC[:DST], repeatable)");
  cmd->add_option("-c,--cd", o->cd, "Start there (default: the working directory, bound)");
  cmd->add_option("--set-env", o->set_env, "This file instead of the image's /ch/environment");
  cmd->add_option("--join", o->join_tag,
                  "Share one container with the other ranks on this node that give this tag "
                  "(ch-run --join; LOCAL_WORLD_SIZE of them): ferry launch --image does");
  cmd->callback([=] { container::run(*o); });
}

}  // namespace

void add_container(CLI::App& app) {
  CLI::App* image = app.add_subcommand("image", "Charliecloud images of environments");
  image->require_subcommand(1);
  add_image_build(image);
  add_run(app);
}

}  // namespace ferry::cli
