// ferry inspect and ferry activate.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>

#include "env/env.hpp"

namespace ferry::env {

Inspection inspect(const std::string& archive) {
  Inspection in;
  in.archive = util::absolute_path(archive);
  {
    util::MappedFile map(in.archive);
    in.archive_bytes = map.bytes().size();
    format::FrameIndex index = format::index_frames(map.bytes(), in.archive);
    in.frames = index.frames.size();
    in.format = index.layout == format::ArchiveLayout::ferry_zstd   ? "ferry tar.zst"
                : index.layout == format::ArchiveLayout::ferry_gzip ? "ferry tar.gz"
                                                                    : "foreign";
  }
  bool saw_conda_unpack = false;
  format::read_members(in.archive, [&](const format::Member& m) {
    std::string path = m.entry.path;
    while (path.starts_with("./")) path.erase(0, 2);
    if (path == format::k_manifest_path && m.entry.type == format::EntryType::file) {
      format::Manifest man = format::Manifest::parse(m.data, in.archive);
      in.has_manifest = true;
      in.kind = man.kind;
      in.source_prefix = man.source_prefix;
      in.python_version = man.python_version;
      in.tool = man.tool;
      in.placeholders = man.placeholders;
      in.warnings = man.warnings;
      in.counts() = man.counts();
      for (const auto& f : man.files) {
        if (f.mode == format::RelocMode::text) ++in.text_records;
        if (f.mode == format::RelocMode::binary || f.mode == format::RelocMode::rpath)
          ++in.binary_records;
      }
      return false;  // the manifest says everything else
    }
    if (path.starts_with(".ferry")) return true;
    switch (m.entry.type) {
      case format::EntryType::file:
        ++in.files;
        in.bytes += m.data.size();
        break;
      case format::EntryType::directory: ++in.directories; break;
      case format::EntryType::symlink: ++in.symlinks; break;
      case format::EntryType::hardlink: ++in.hardlinks; break;
    }
    if (path == "bin/conda-unpack") saw_conda_unpack = true;
    return true;
  });
  if (!in.has_manifest) in.kind = saw_conda_unpack ? "conda (conda-pack)" : "plain";
  return in;
}

std::map<std::string, std::string> activated_environ(const std::string& prefix,
                                                     std::map<std::string, std::string> vars,
                                                     const std::string& tree) {
  auto path = vars.find("PATH");
  vars["PATH"] =
      prefix + "/bin" + (path == vars.end() || path->second.empty() ? "" : ":" + path->second);
  vars.erase("PYTHONHOME");
  switch (detect_kind(tree.empty() ? prefix : tree)) {
    case Kind::venv:
      vars["VIRTUAL_ENV"] = prefix;
      vars.erase("CONDA_PREFIX");
      vars.erase("CONDA_DEFAULT_ENV");
      break;
    case Kind::conda:  // as `conda activate /path/to/env` sets them
      vars["CONDA_PREFIX"] = prefix;
      vars["CONDA_DEFAULT_ENV"] = prefix;
      vars.erase("VIRTUAL_ENV");
      break;
    case Kind::prefix: break;  // an install prefix: its bin/ first is all there is
  }
  return vars;
}

std::string activation_script(const std::string& dest_arg, Shell shell) {
  std::string dest = util::absolute_path(dest_arg);
  struct stat st {};
  if (::stat((dest + "/bin").c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw Error(fmt::format("{}: not an unpacked environment (no bin/ directory)", dest),
                Error::Kind::usage);
  Kind kind = detect_kind(dest);
  std::string q = util::shell_quote(dest);
  std::string name = std::filesystem::path(dest).filename().string();
  std::string out;
  if (shell == Shell::fish) {
    out += fmt::format("set -gx PATH {}/bin $PATH;\n", q);
    if (kind == Kind::venv)
      out += fmt::format("set -gx VIRTUAL_ENV {};\n", q);
    else
      out += fmt::format("set -gx CONDA_PREFIX {};\nset -gx CONDA_DEFAULT_ENV {};\n", q, q);
    out += "set -e PYTHONHOME;\n";
    return out;
  }
  out += fmt::format("export PATH={}/bin\"${{PATH:+:$PATH}}\"\n", q);
  if (kind == Kind::venv) {
    out += fmt::format("export VIRTUAL_ENV={}\n", q);
  } else {
    out += fmt::format("export CONDA_PREFIX={}\nexport CONDA_DEFAULT_ENV={}\n", q, q);
  }
  out += "unset PYTHONHOME\n";
  out += "hash -r 2>/dev/null || true\n";
  // conda runs the env's activate.d scripts on activation; so does this.
  out += fmt::format(
      "for _ferry_f in {}/etc/conda/activate.d/*.sh; do [ -f \"$_ferry_f\" ] && . "
      "\"$_ferry_f\"; done; unset _ferry_f\n",
      q);
  (void)name;
  return out;
}

}  // namespace ferry::env
