// ferry conda-config: a shared conda installation's system settings (ROOT/.condarc) and pins
// (ROOT/conda-meta/pinned), merged into what is there: no key, comment or pin is ever dropped.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ferry::module {

struct CondaConfig {
  std::string root;
  std::optional<int> threads;         // default_threads
  std::vector<std::string> channels;  // put first in channels, in this order (conda's --prepend)
  bool strict_priority = false;       // channel_priority: strict
  bool no_auto_update = false;        // auto_update_conda: false
  std::vector<std::string> pins;      // lines of conda-meta/pinned, each appended once
};

struct ConfigWritten {
  std::string path, action;  // "written", "unchanged"
};

// Edits .condarc as lines: top-level `key: value` and `key:` followed by `  - item` lists are
// understood; comments, blank lines and other keys are kept as they are. A line it cannot read
// (nested maps it must change, flow lists, documents, tabs) is one Error naming file and line,
// and nothing is written. Both files are written beside their place and renamed.
std::string merge_condarc(const std::string& text, const CondaConfig& config, const std::string& path);
std::vector<ConfigWritten> write_conda_config(const CondaConfig& config);

}  // namespace ferry::module
