#include "cli/commands.hpp"
#include "cli/progress_bar.hpp"

#include <cstdio>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "env/env.hpp"

namespace ferry::cli {
namespace {

void print_warnings(const std::vector<std::string>& warnings) {
  for (const auto& w : warnings) std::fprintf(stderr, "ferry: warning: %s\n", w.c_str());
}

std::string human_bytes(std::uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", v, units[u]);
}

}  // namespace

void print_json(const nlohmann::ordered_json& json) { std::printf("%s\n", json.dump(2).c_str()); }

void add_venv(CLI::App& app) {
  auto opts = std::make_shared<env::VenvOptions>();
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "venv", "Make (or reuse) a venv with --system-site-packages on a base Python, atomically");
  cmd->add_option("PATH", opts->path, "Venv to make or reuse")->required();
  cmd->add_option("--base", opts->base,
                  "Base Python prefix (conda env, unpacked env, any prefix with bin/python3); "
                  "default: $CONDA_PREFIX, $VIRTUAL_ENV's base, python3 on PATH");
  cmd->add_flag("-f,--force", opts->force, "Replace a venv at PATH made on another base");
  cmd->add_flag("--json", *json, "Print the result as JSON");
  cmd->callback([=] {
    env::VenvResult r = env::make_venv(*opts);
    print_warnings(r.warnings);
    if (*json) {
      print_json(r);
      return;
    }
    std::printf(
        "%s venv %s\n  base:     %s (Python %s, from %s; its packages show through)\n"
        "  activate: %s\n        or: eval \"$(ferry activate %s)\"\n",
        r.action == env::VenvAction::reused ? "reusing" : util::name(r.action).c_str(),
        r.path.c_str(), r.base.c_str(), r.python_version.c_str(), r.base_from.c_str(),
        r.activate.c_str(), util::shell_word(r.path).c_str());
  });
}

void add_pack(CLI::App& app) {
  auto opts = std::make_shared<env::PackOptions>();
  auto format = std::make_shared<std::string>("tar.zst");
  auto level = std::make_shared<int>(0);
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "pack", "Pack a conda env, venv or install prefix into a relocatable archive");
  cmd->add_option("PREFIX", opts->prefix, "Environment to pack")->required();
  cmd->add_option("-o,--output", opts->output, "Archive to write")->required();
  cmd->add_option("--format", *format, "tar.zst (default) or tar.gz")
      ->check(CLI::IsMember({"tar.zst", "tar.gz"}));
  cmd->add_option("--level", *level,
                  "Compression level (zstd 1-19, default 3; gzip 1-12, default 6)");
  cmd->add_option("-j,--jobs", opts->jobs, "Threads (default: all cores)");
  cmd->add_option("--dest-prefix", opts->dest_prefix, "Relocate at pack time to this path");
  cmd->add_option("--exclude", opts->excludes, "Leave out files matching GLOB ('*' matches '/')")
      ->take_all();
  cmd->add_flag("--ignore-missing-files", opts->ignore_missing_files,
                "Pack even if conda-managed files are missing");
  cmd->add_flag("--ignore-editable-packages", opts->ignore_editable_packages,
                "Pack editable installs as they are");
  cmd->add_flag("-f,--force", opts->force, "Overwrite the output");
  cmd->add_flag("--json", *json, "Print the result as JSON");
  cmd->callback([=] {
    env::PackOptions o = *opts;
    o.codec = *format == "tar.gz" ? format::Codec::gzip : format::Codec::zstd;
    if (*level) o.level = *level;
    std::unique_ptr<ProgressBar> bar = progress_bar(!*json);
    o.progress = bar.get();
    env::PackResult r = env::pack(o);
    print_warnings(r.warnings);
    if (*json) {
      print_json(r);
      return;
    }
    std::printf(
        "packed %s environment %s\n  -> %s (%s)\n  %llu files, %s -> %s, %llu text + %llu "
        "binary relocation records, %.2f s\n",
        util::name(r.kind).c_str(), r.prefix.c_str(), r.output.c_str(), r.format.c_str(),
        static_cast<unsigned long long>(r.files), human_bytes(r.bytes).c_str(),
        human_bytes(r.bytes_out).c_str(), static_cast<unsigned long long>(r.text_records),
        static_cast<unsigned long long>(r.binary_records), r.seconds);
  });
}

void add_unpack(CLI::App& app) {
  auto opts = std::make_shared<env::UnpackOptions>();
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "unpack", "Unpack an archive (ferry's or conda-pack's) into DEST, relocated, atomically");
  cmd->add_option("ARCHIVE", opts->archive, "Archive to unpack")->required();
  cmd->add_option("DEST", opts->dest, "Directory to create")->required();
  cmd->add_option("-j,--jobs", opts->jobs, "Threads (default: all cores)");
  cmd->add_flag("-f,--force", opts->force, "Replace DEST if it holds something else");
  cmd->add_flag("--json", *json, "Print the result as JSON");
  cmd->callback([=] {
    env::UnpackOptions o = *opts;
    std::unique_ptr<ProgressBar> bar = progress_bar(!*json);
    o.progress = bar.get();
    env::UnpackResult r = env::unpack(o);
    print_warnings(r.warnings);
    if (*json) {
      print_json(r);
      return;
    }
    if (r.already_present) {
      std::printf("%s already holds this archive: nothing to do\n", r.dest.c_str());
      return;
    }
    std::printf(
        "unpacked %s\n  -> %s\n  %llu files, %s, %llu relocated, %.2f s\n  activate: eval "
        "\"$(ferry activate %s)\"\n",
        r.archive.c_str(), r.dest.c_str(), static_cast<unsigned long long>(r.files),
        human_bytes(r.bytes).c_str(), static_cast<unsigned long long>(r.relocated_files), r.seconds,
        r.dest.c_str());
  });
}

void add_inspect(CLI::App& app) {
  auto archive = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("inspect", "Show what an archive holds");
  cmd->add_option("ARCHIVE", *archive, "Archive to inspect")->required();
  cmd->add_flag("--json", *json, "Print as JSON");
  cmd->callback([=] {
    env::Inspection in = env::inspect(*archive);
    if (*json) {
      print_json(in);
      return;
    }
    std::printf("archive:        %s\nformat:         %s (%s, %llu frames)\nkind:           %s\n",
                in.archive.c_str(), in.format.c_str(), human_bytes(in.archive_bytes).c_str(),
                static_cast<unsigned long long>(in.frames), in.kind.c_str());
    if (!in.source_prefix.empty()) std::printf("source prefix:  %s\n", in.source_prefix.c_str());
    if (!in.python_version.empty()) std::printf("python:         %s\n", in.python_version.c_str());
    std::printf("files:          %llu (%s), %llu directories, %llu symlinks, %llu hardlinks\n",
                static_cast<unsigned long long>(in.files), human_bytes(in.bytes).c_str(),
                static_cast<unsigned long long>(in.directories),
                static_cast<unsigned long long>(in.symlinks),
                static_cast<unsigned long long>(in.hardlinks));
    if (in.has_manifest)
      std::printf("relocation:     %llu text, %llu binary records\n",
                  static_cast<unsigned long long>(in.text_records),
                  static_cast<unsigned long long>(in.binary_records));
    for (const auto& p : in.placeholders) std::printf("placeholder:    %s\n", p.c_str());
  });
}

void add_activate(CLI::App& app) {
  auto dest = std::make_shared<std::string>();
  auto shell = std::make_shared<std::string>("bash");
  CLI::App* cmd = app.add_subcommand(
      "activate",
      "Print shell lines that activate an unpacked env: eval \"$(ferry activate DEST)\"");
  cmd->add_option("DEST", *dest, "Unpacked environment")->required();
  cmd->add_option("--shell", *shell, "bash, zsh or fish")
      ->check(CLI::IsMember({"bash", "zsh", "fish"}));
  cmd->callback([=] {
    env::Shell s = *shell == "fish"  ? env::Shell::fish
                   : *shell == "zsh" ? env::Shell::zsh
                                     : env::Shell::bash;
    std::fputs(env::activation_script(*dest, s).c_str(), stdout);
  });
}

}  // namespace ferry::cli
