// The command's words with a point's values put in: {NAME}, {index}, {dir}, {{ and }}.
#include <fmt/format.h>

#include "sweep/sweep.hpp"

namespace ferry::sweep {
namespace {

[[noreturn]] void bad_word(std::string_view word, const std::string& what) {
  throw Error(fmt::format("command word '{}': {}", util::printable(word), what),
              Error::Kind::usage);
}

// Calls put(text) for the literal pieces and field(name) for each {name}, checking the braces.
template <class Literal, class Field>
void scan_word(std::string_view word, Literal put, Field field) {
  for (std::size_t i = 0; i < word.size(); ++i) {
    char c = word[i];
    if (c == '{' && i + 1 < word.size() && word[i + 1] == '{') {
      put('{');
      ++i;
    } else if (c == '}' && i + 1 < word.size() && word[i + 1] == '}') {
      put('}');
      ++i;
    } else if (c == '{') {
      std::size_t close = word.find('}', i);
      if (close == std::string_view::npos)
        bad_word(word, "a '{' without its '}' (write {{ for a literal brace)");
      field(word.substr(i + 1, close - i - 1));
      i = close;
    } else if (c == '}') {
      bad_word(word, "a '}' without its '{' (write }} for a literal brace)");
    } else {
      put(c);
    }
  }
}

std::string known_names(const std::vector<std::string>& names) {
  std::vector<std::string> all;
  for (const std::string& n : names) all.push_back("{" + n + "}");
  all.emplace_back("{index}");
  all.emplace_back("{dir}");
  return util::join(all, ", ");
}

std::size_t position_of(const std::vector<std::string>& names, std::string_view word,
                        std::string_view name) {
  for (std::size_t k = 0; k < names.size(); ++k)
    if (names[k] == name) return k;
  bad_word(word, fmt::format("unknown parameter {{{}}} (known: {})", util::printable(name),
                             known_names(names)));
}

}  // namespace

void check_command(const std::vector<std::string>& command, const std::vector<std::string>& names) {
  if (command.empty()) throw Error("no command to run (give it after --)", Error::Kind::usage);
  for (const std::string& word : command)
    scan_word(
        word, [](char) {},
        [&](std::string_view name) {
          if (name != "index" && name != "dir") position_of(names, word, name);
        });
}

std::vector<std::string> expand_command(const std::vector<std::string>& command, const Grid& grid,
                                        std::size_t index, const std::string& run_dir) {
  check_command(command, grid.names);
  std::vector<std::string> out;
  for (const std::string& word : command) {
    std::string expanded;
    scan_word(
        word, [&](char c) { expanded += c; },
        [&](std::string_view name) {
          if (name == "index")
            expanded += std::to_string(index);
          else if (name == "dir")
            expanded += run_dir;
          else
            expanded += grid.points.at(index)[position_of(grid.names, word, name)];
        });
    out.push_back(std::move(expanded));
  }
  return out;
}

}  // namespace ferry::sweep
