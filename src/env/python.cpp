// What an environment's files say about its Python, read once for pack, venv and module alike:
// pyvenv.cfg, the version it records, and the lib/python3.X directory.
#include <filesystem>

#include "env/env.hpp"

namespace ferry::env {

PyvenvCfg parse_pyvenv_cfg(std::string_view text) { return util::key_value_lines(text, '='); }

PyvenvCfg read_pyvenv_cfg(const std::string& prefix) {
  return parse_pyvenv_cfg(util::read_file(prefix + "/pyvenv.cfg"));
}

std::string pyvenv_python_version(const PyvenvCfg& cfg) {
  for (const char* key : {"version", "version_info"})
    if (auto it = cfg.find(key); it != cfg.end()) return it->second;
  return "";
}

std::string python_version_of_tree(const std::string& prefix) {
  std::error_code ec;
  std::string best;
  for (const auto& ent : std::filesystem::directory_iterator(prefix + "/lib", ec)) {
    std::string name = ent.path().filename().string();
    if (name.starts_with("python3.") && std::filesystem::is_directory(ent.path(), ec) &&
        name.find_first_not_of("0123456789.", 6) == std::string::npos)
      best = name.substr(6);
  }
  return best;
}

std::string python_major_minor(std::string_view version) {
  std::size_t dot = version.find('.');
  return std::string(dot == std::string_view::npos ? version
                                                   : version.substr(0, version.find('.', dot + 1)));
}

}  // namespace ferry::env
