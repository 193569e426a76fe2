// ferry's command line as data: the verbs, their options and the values those take, read from the
// CLI11 definition itself, so that the shell completions and the man pages cannot drift from what
// `ferry --help` says. Hidden verbs and options (CLI11's empty group) are left out.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace ferry::cli {

struct OptionDoc {
  std::vector<std::string> names;    // "-o", "--output": short ones first
  std::string value;                 // "TEXT", "UINT"...; empty for a flag
  std::vector<std::string> choices;  // its fixed values (one_of in commands.hpp)
  std::string description;
  bool required = false;
};

struct PositionalDoc {
  std::string name;  // "ARCHIVE"
  std::string description;
  std::vector<std::string> choices;  // its fixed values, if it has them
  bool required = false;
  bool many = false;  // takes more than one word
};

struct CommandDoc {
  std::vector<std::string> path;  // {"ferry", "job", "save"}
  std::string description;
  std::vector<OptionDoc> options;
  std::vector<PositionalDoc> positionals;
  std::vector<CommandDoc> commands;
  bool needs_command =
      false;  // a verb of verbs: `ferry job` alone does something, `ferry image` not

  std::string name() const;  // "ferry job save"
};

// The tree under `app` (the root: path {"ferry"}).
CommandDoc command_tree(CLI::App& app);

// Every command of the tree, parents before their children.
std::vector<const CommandDoc*> all_commands(const CommandDoc& root);

enum class Shell { bash, zsh, fish };
// The completion script for `shell`: verbs, options, and the values of options that have a fixed
// set (--format, --via, --shell); files where a verb takes them.
std::string completion_script(const CommandDoc& root, Shell shell, const std::string& version);

// The man page of one command, in roff: ferry(1) for the root, ferry-VERB(1), ferry-VERB-SUB(1).
std::string man_page_name(const CommandDoc& command);  // "ferry-job-save"
std::string man_page(const CommandDoc& command, const std::string& version,
                     const std::string& date);

// `ferry completion SHELL` and the hidden `ferry write-docs DIR` (build time: the man pages and
// the completion scripts that `make install` puts under PREFIX/share).
void add_docs(CLI::App& app);

}  // namespace ferry::cli
