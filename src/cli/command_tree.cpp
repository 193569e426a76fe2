// Reads the CLI11 definition into CommandDoc (command_tree.hpp).
#include <functional>
#include <map>

#include "cli/command_tree.hpp"
#include "cli/commands.hpp"

namespace ferry::cli {
namespace {

bool hidden(const std::string& group) { return group.empty(); }

// "TEXT:{a,b}" or "UINT:INT in [1 - 9]": the type, without what the checks add.
std::string value_name(const CLI::Option* opt) {
  std::string t = opt->get_type_name();
  return t.substr(0, t.find(':'));
}

CommandDoc read_command(CLI::App* app, std::vector<std::string> path) {
  CommandDoc doc;
  doc.path = std::move(path);
  doc.description = app->get_description();
  doc.needs_command = app->get_require_subcommand_min() > 0;
  for (CLI::Option* opt : app->get_options({})) {
    if (hidden(opt->get_group())) continue;
    if (!opt->nonpositional()) {
      doc.positionals.push_back({.name = opt->get_name(true),
                                 .description = opt->get_description(),
                                 .choices = offered_values(opt),
                                 .required = opt->get_required(),
                                 .many = opt->get_items_expected_max() > 1});
      continue;
    }
    OptionDoc o;
    for (const std::string& s : opt->get_snames()) o.names.push_back("-" + s);
    for (const std::string& l : opt->get_lnames()) o.names.push_back("--" + l);
    if (opt->get_type_size_max() > 0) {
      o.value = value_name(opt);
      o.choices = offered_values(opt);
    }
    o.description = opt->get_description();
    o.required = opt->get_required();
    doc.options.push_back(std::move(o));
  }
  for (CLI::App* sub : app->get_subcommands([](CLI::App*) { return true; })) {
    if (hidden(sub->get_group()) || sub->get_name().empty()) continue;
    std::vector<std::string> sub_path = doc.path;
    sub_path.push_back(sub->get_name());
    doc.commands.push_back(read_command(sub, std::move(sub_path)));
  }
  return doc;
}

// The options one_of restricted: few, and alive as long as the app.
std::map<const CLI::Option*, std::vector<std::string>>& offered_by_option() {
  static std::map<const CLI::Option*, std::vector<std::string>> offered;
  return offered;
}

}  // namespace

CLI::Option* one_of(CLI::Option* opt, const std::vector<std::string>& offered,
                    const std::vector<std::string>& also_accepted) {
  std::vector<std::string> accepted = offered;
  accepted.insert(accepted.end(), also_accepted.begin(), also_accepted.end());
  offered_by_option()[opt] = offered;
  return opt->check(CLI::IsMember(accepted));
}

const std::vector<std::string>& offered_values(const CLI::Option* opt) {
  static const std::vector<std::string> any;
  auto it = offered_by_option().find(opt);
  return it == offered_by_option().end() ? any : it->second;
}

std::string CommandDoc::name() const {
  std::string n;
  for (const std::string& p : path) n += (n.empty() ? "" : " ") + p;
  return n;
}

CommandDoc command_tree(CLI::App& app) { return read_command(&app, {"ferry"}); }

std::vector<const CommandDoc*> all_commands(const CommandDoc& root) {
  std::vector<const CommandDoc*> out;
  std::function<void(const CommandDoc&)> walk = [&](const CommandDoc& c) {
    out.push_back(&c);
    for (const CommandDoc& sub : c.commands) walk(sub);
  };
  walk(root);
  return out;
}

}  // namespace ferry::cli
