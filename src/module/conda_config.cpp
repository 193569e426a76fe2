// ferry conda-config: .condarc edited line by line (no YAML library: the file conda writes for
// `conda config --system` holds only top-level scalars and block lists), pinned appended once.
#include "module/module.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "module/module.hpp"
#include "util/util.hpp"

namespace ferry::module {
namespace {

std::string unquote(std::string_view text) {
  std::string_view s = util::trim(text);
  if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front())
    s = s.substr(1, s.size() - 2);
  return std::string(s);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// One top-level key with its lines, or a run of comment / blank lines (key empty).
struct Block {
  std::string key;
  std::vector<std::string> lines;
  std::string value;               // the scalar after "key:", trimmed (empty for a list)
  std::vector<std::string> items;  // "- item" lines, unquoted
  bool list = false, complex = false;
  std::size_t line_no = 0;
};

bool key_line(const std::string& line, std::string& key, std::string& rest) {
  std::size_t i = 0;
  while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_' ||
                             line[i] == '-' || line[i] == '.'))
    ++i;
  if (i == 0 || i >= line.size() || line[i] != ':' || (i + 1 < line.size() && line[i + 1] != ' '))
    return false;
  key = line.substr(0, i);
  rest = util::trim(std::string_view(line).substr(i + 1));
  return true;
}

std::vector<Block> parse(const std::string& text, const std::string& path) {
  std::vector<Block> blocks;
  std::size_t n = 0;
  auto refuse = [&](const std::string& why) {
    return Error(fmt::format(
        "{}:{}: {}; ferry conda-config edits only top-level 'key: value' and 'key:' with "
        "'  - item' lists (change it with conda config --system)",
        path, n, why));
  };
  for (std::string_view text_line : util::split_lines(text)) {
    std::string line(text_line);
    ++n;
    std::string t(util::trim(line));
    if (line.find('\t') != std::string::npos) throw refuse("a tab");
    if (t.empty() || t[0] == '#') {
      if (blocks.empty() || !blocks.back().key.empty()) blocks.push_back({});
      blocks.back().lines.push_back(line);
      continue;
    }
    if (line[0] != ' ') {
      std::string key, rest;
      if (!key_line(line, key, rest)) throw refuse(fmt::format("cannot read '{}'", t));
      for (const Block& b : blocks)
        if (b.key == key) throw refuse(fmt::format("'{}' twice", key));
      Block b;
      b.key = key;
      b.line_no = n;
      b.lines.push_back(line);
      if (!rest.empty() && rest[0] != '#') {
        b.value = rest;
        b.complex = rest[0] == '[' || rest[0] == '{' || rest[0] == '&' || rest[0] == '*' ||
                    rest[0] == '|' || rest[0] == '>';
      }
      blocks.push_back(std::move(b));
      continue;
    }
    // An indented line: part of the last key's value.
    auto last =
        std::find_if(blocks.rbegin(), blocks.rend(), [](const Block& b) { return !b.key.empty(); });
    if (last == blocks.rend() || &*last != &blocks.back() || !last->value.empty())
      throw refuse(fmt::format("cannot read '{}'", t));
    last->lines.push_back(line);
    if (t.starts_with("- ") && !last->complex) {
      last->list = true;
      last->items.push_back(unquote(t.substr(2)));
    } else {
      last->complex = true;  // a nested map: kept as it is, never edited
    }
  }
  return blocks;
}

void set_scalar(std::vector<Block>& blocks, const std::string& key, const std::string& value,
                const std::string& path) {
  for (Block& b : blocks) {
    if (b.key != key) continue;
    if (b.list || b.complex)
      throw Error(
          fmt::format("{}:{}: '{}' is not a plain value; ferry conda-config will not replace it",
                      path, b.line_no, key));
    if (lower(unquote(b.value)) == lower(value)) return;
    b.lines = {key + ": " + value};
    b.value = value;
    return;
  }
  Block b;
  b.key = key;
  b.value = value;
  b.lines = {key + ": " + value};
  blocks.push_back(std::move(b));
}

void prepend_channels(std::vector<Block>& blocks, const std::vector<std::string>& channels,
                      const std::string& path) {
  auto it = std::find_if(blocks.begin(), blocks.end(),
                         [](const Block& b) { return b.key == "channels"; });
  std::vector<std::string> items;
  if (it == blocks.end()) {
    items = {"defaults"};  // what `conda config --prepend channels` writes when there were none
  } else {
    if (it->complex || !it->value.empty())
      throw Error(fmt::format(
          "{}:{}: 'channels' is not a '  - item' list; ferry conda-config will not replace it",
          path, it->line_no));
    items = it->items;
  }
  std::vector<std::string> out = channels;
  for (const std::string& c : items)
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  if (it != blocks.end() && out == it->items) return;
  Block b;
  b.key = "channels";
  b.list = true;
  b.items = out;
  b.lines = {"channels:"};
  for (const std::string& c : out) b.lines.push_back("  - " + c);
  if (it == blocks.end())
    blocks.push_back(std::move(b));
  else
    *it = std::move(b);
}

// The mode a rewritten file keeps: the existing file's, else 0644.
mode_t mode_for(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0644;
}

std::string read_if_there(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return "";
    util::throw_errno(path, "cannot read", errno);
  }
  if (!S_ISREG(st.st_mode)) throw Error(fmt::format("{}: not a regular file", path));
  return util::read_file(path);
}

}  // namespace

std::string merge_condarc(const std::string& text, const CondaConfig& config,
                          const std::string& path) {
  std::vector<Block> blocks = parse(text, path);
  if (config.threads) set_scalar(blocks, "default_threads", std::to_string(*config.threads), path);
  if (!config.channels.empty()) prepend_channels(blocks, config.channels, path);
  if (config.strict_priority) set_scalar(blocks, "channel_priority", "strict", path);
  if (config.no_auto_update) set_scalar(blocks, "auto_update_conda", "false", path);
  std::string out;
  for (const Block& b : blocks)
    for (const std::string& l : b.lines) out += l + "\n";
  // Unchanged input keeps its exact bytes (a missing final newline included).
  if (out == text + "\n" && (text.empty() || text.back() != '\n')) return text;
  return out;
}

std::vector<ConfigWritten> write_conda_config(const CondaConfig& config) {
  if (config.threads && (*config.threads < 1 || *config.threads > 1024))
    throw Error("--threads: between 1 and 1024", Error::Kind::usage);
  for (const std::string& c : config.channels)
    if (c.empty() || c.find_first_of(" \t\n\r#'\"") != std::string::npos || c[0] == '-' ||
        c[0] == '[' || c[0] == '{')
      throw Error(
          fmt::format("--channel '{}': a channel name or URL (no spaces, quotes or '#')", c),
          Error::Kind::usage);
  for (const std::string& p : config.pins)
    if (util::trim(p).empty() || p.find_first_of("\n\r") != std::string::npos ||
        util::trim(p)[0] == '#')
      throw Error(fmt::format("--pin '{}': one match spec, e.g. 'cudatoolkit <10.3'", p),
                  Error::Kind::usage);
  if (!config.threads && config.channels.empty() && !config.strict_priority &&
      !config.no_auto_update && config.pins.empty())
    throw Error(
        "conda-config: nothing to set (--threads, --channel, --strict-priority, --no-auto-update, "
        "--pin)",
        Error::Kind::usage);
  conda_root_envs(config.root);  // throws unless ROOT is a conda installation
  std::string root = util::absolute_path(config.root);
  while (root.size() > 1 && root.back() == '/') root.pop_back();

  std::vector<ConfigWritten> out;
  std::vector<std::pair<std::string, std::string>> writes;  // path, new text
  std::string condarc = root + "/.condarc";
  std::string old = read_if_there(condarc);
  std::string merged = merge_condarc(old, config, condarc);
  bool rc_changed =
      merged != old || (old.empty() && ::access(condarc.c_str(), F_OK) != 0 && !merged.empty());
  if (rc_changed) writes.emplace_back(condarc, merged);
  out.push_back({condarc, rc_changed ? WriteAction::written : WriteAction::unchanged});
  if (!config.pins.empty()) {
    std::string pinned = root + "/conda-meta/pinned";
    std::string text = read_if_there(pinned);
    std::vector<std::string> have;
    for (std::string_view line : util::split_lines(text)) have.emplace_back(util::trim(line));
    std::string added;
    for (const std::string& p : config.pins) {
      std::string pin(util::trim(p));
      if (std::find(have.begin(), have.end(), pin) != have.end()) continue;
      have.push_back(pin);
      added += pin + "\n";
    }
    if (!added.empty())
      writes.emplace_back(pinned, text + (text.empty() || text.back() == '\n' ? "" : "\n") + added);
    out.push_back({pinned, added.empty() ? WriteAction::unchanged : WriteAction::written});
  }
  // Every file beside its place first, then the renames.
  util::AtomicFileSet files;
  for (const auto& [path, text] : writes) files.add(path, text, mode_for(path));
  files.commit();
  return out;
}

}  // namespace ferry::module
