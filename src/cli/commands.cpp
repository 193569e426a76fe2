#include "cli/commands.hpp"
#include "cli/progress_bar.hpp"

#include <cstdio>
#include <filesystem>
#include <map>
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

// The archive formats conda-pack writes that ferry does not: one line each, naming the way out.
[[noreturn]] void refuse_format(const std::string& what) {
  throw Error(fmt::format("{}: ferry writes tar.zst (its default) and tar.gz (conda-pack's "
                          "default); for a SquashFS image, ferry image build",
                          what),
              Error::Kind::usage);
}

// --format infer (conda-pack's default): from the output's name; tar.zst when it says nothing.
format::Codec pack_codec(const std::string& format, const std::string& output) {
  static const char* refused[] = {"zip", "tar.bz2", "tbz2",     "tar.xz",    "txz",
                                  "tar", "parcel",  "squashfs", "no-archive"};
  for (const char* r : refused)
    if (format == r) refuse_format("--format " + format);
  if (format == "tar.gz" || format == "tgz") return format::Codec::gzip;
  if (format == "tar.zst" || format == "tzst") return format::Codec::zstd;
  // infer
  if (output.ends_with(".tar.gz") || output.ends_with(".tgz")) return format::Codec::gzip;
  for (const char* r : {".zip", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".squashfs", ".sqfs"})
    if (output.ends_with(r)) refuse_format("-o " + output);
  return format::Codec::zstd;
}

void add_pack(CLI::App& app) {
  auto opts = std::make_shared<env::PackOptions>();
  auto format = std::make_shared<std::string>("infer");
  auto level = std::make_shared<int>(0);
  auto threads = std::make_shared<int>(0);
  auto name = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto quiet = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "pack", "Pack a conda env, venv or install prefix into a relocatable archive");
  // conda-pack's options too, so that its users' lines work with `ferry pack` in its place.
  CLI::Option* positional =
      cmd->add_option("PREFIX", opts->prefix,
                      "Environment to pack (default: the active one, $VIRTUAL_ENV or "
                      "$CONDA_PREFIX)");
  CLI::Option* prefix =
      cmd->add_option("-p,--prefix", opts->prefix, "Environment to pack, as conda-pack's -p");
  CLI::Option* by_name = cmd->add_option(
      "-n,--name", *name, "Conda environment to pack, by name (conda's envs directories)");
  positional->excludes(prefix)->excludes(by_name);
  prefix->excludes(by_name);
  cmd->add_option("-o,--output", opts->output,
                  "Archive to write (default: NAME.tar.zst, or NAME.tar.gz, in this directory)");
  one_of(cmd->add_option("--format", *format,
                         "infer (from --output; default tar.zst), tar.zst or tar.gz (tgz)"),
         {"infer", "tar.zst", "tzst", "tar.gz", "tgz"},
         {"zip", "tar.bz2", "tbz2", "tar.xz", "txz", "tar", "parcel", "squashfs", "no-archive"});
  cmd->add_option("--level,--compress-level", *level,
                  "Compression level (zstd 1-19, default 3; gzip 1-12, default 6)");
  cmd->add_option("-j,--jobs", opts->jobs, "Threads (default: all cores)");
  cmd->add_option("--n-threads", *threads, "Threads, as conda-pack's (-1: all cores)")
      ->check(CLI::Range(-1, 1 << 16));
  cmd->add_option("--dest-prefix", opts->dest_prefix, "Relocate at pack time to this path");
  cmd->add_option("--exclude", opts->excludes, "Leave out files matching GLOB ('*' matches '/')")
      ->take_all();
  cmd->add_flag("--ignore-missing-files", opts->ignore_missing_files,
                "Pack even if conda-managed files are missing");
  cmd->add_flag("--ignore-editable-packages", opts->ignore_editable_packages,
                "Pack editable installs as they are");
  cmd->add_flag("-f,--force", opts->force, "Overwrite the output");
  cmd->add_flag("-q,--quiet", *quiet, "No progress bar and no summary (warnings still)");
  cmd->add_flag("--json", *json, "Print the result as JSON");
  cmd->callback([=] {
    env::PackOptions o = *opts;
    std::map<std::string, std::string> environ = job::current_environ();
    if (!name->empty()) {
      o.prefix = env::find_conda_env(*name, environ);
    } else if (o.prefix.empty()) {
      // conda-pack packs the active env when given none.
      for (const char* var : {"VIRTUAL_ENV", "CONDA_PREFIX"})
        if (auto it = environ.find(var); it != environ.end() && !it->second.empty()) {
          o.prefix = it->second;
          break;
        }
      if (o.prefix.empty())
        throw Error("no environment to pack: name it (PREFIX, -p PATH or -n NAME), or activate it",
                    Error::Kind::usage);
    }
    if (o.output.empty()) {
      std::string base =
          name->empty() ? std::filesystem::path(util::absolute_path(o.prefix)).filename().string()
                        : *name;
      if (base.empty() || base == "." || base == "..")
        throw Error(fmt::format("{}: no name to give the archive: name it with -o", o.prefix),
                    Error::Kind::usage);
      o.output = base + (*format == "tar.gz" || *format == "tgz" ? ".tar.gz" : ".tar.zst");
    }
    o.codec = pack_codec(*format, o.output);
    if (*level) o.level = *level;
    if (*threads) o.jobs = *threads < 0 ? 0 : static_cast<unsigned>(*threads);
    std::unique_ptr<ProgressBar> bar = progress_bar(!*json && !*quiet);
    o.progress = bar.get();
    env::PackResult r = env::pack(o);
    print_warnings(r.warnings);
    if (*json) {
      print_json(r);
      return;
    }
    if (*quiet) return;
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
  one_of(cmd->add_option("--shell", *shell, "bash, zsh or fish"), {"bash", "zsh", "fish"});
  cmd->callback([=] {
    env::Shell s = *shell == "fish"  ? env::Shell::fish
                   : *shell == "zsh" ? env::Shell::zsh
                                     : env::Shell::bash;
    std::fputs(env::activation_script(*dest, s).c_str(), stdout);
  });
}

}  // namespace ferry::cli
