// `ferry completion SHELL` and the hidden `ferry write-docs DIR`: the command line's own
// definition, written for the shells and for man (command_tree.hpp).
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/command_tree.hpp"
#include "cli/commands.hpp"
#include "env/env.hpp"
#include "util/util.hpp"

namespace ferry::cli {
namespace {

std::string version() {
  std::string tool = env::k_tool;  // "ferry 0.1.0"
  return tool.substr(tool.find(' ') + 1);
}

}  // namespace

void add_docs(CLI::App& app) {
  auto shell = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "completion", "Print the shell completion script (eval \"$(ferry completion bash)\")");
  one_of(cmd->add_option("SHELL", *shell, "bash, zsh or fish")->required(),
         {"bash", "zsh", "fish"});
  cmd->callback([shell, &app] {
    Shell s = *shell == "zsh" ? Shell::zsh : *shell == "fish" ? Shell::fish : Shell::bash;
    std::string script = completion_script(command_tree(app), s, "ferry " + version());
    std::fwrite(script.data(), 1, script.size(), stdout);
  });

  // DIR mirrors PREFIX/share, where `make install` copies it.
  auto dir = std::make_shared<std::string>();
  auto date = std::make_shared<std::string>();
  CLI::App* docs = app.add_subcommand("write-docs",
                                      "Write the man pages and completions under DIR (build time)");
  docs->group("");  // hidden: CMake runs it
  docs->add_option("DIR", *dir, "")->required();
  docs->add_option("--date", *date, "");
  docs->callback([dir, date, &app] {
    CommandDoc root = command_tree(app);
    std::string man = *dir + "/man/man1";
    std::filesystem::create_directories(man);
    for (const CommandDoc* c : all_commands(root))
      util::write_file_atomically(man + "/" + man_page_name(*c) + ".1",
                                  man_page(*c, version(), *date), 0644);
    const std::pair<Shell, const char*> scripts[] = {
        {Shell::bash, "bash-completion/completions/ferry"},
        {Shell::zsh, "zsh/site-functions/_ferry"},
        {Shell::fish, "fish/vendor_completions.d/ferry.fish"}};
    for (const auto& [kind, file] : scripts) {
      std::filesystem::path path = std::filesystem::path(*dir) / file;
      std::filesystem::create_directories(path.parent_path());
      util::write_file_atomically(path.string(),
                                  completion_script(root, kind, "ferry " + version()), 0644);
    }
  });
}

}  // namespace ferry::cli
