// ferry image build: a base root filesystem and an env made into one Charliecloud image, with the
// env's activation in /ch/environment.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>

#include "container/container.hpp"
#include "env/env.hpp"

namespace ferry::container {
namespace {

namespace fs = std::filesystem;

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}
bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A root filesystem has etc/ and a shell; `tree` is the base itself or its extracted copy.
void check_root(const std::string& base, const std::string& tree) {
  if (!is_dir(tree + "/etc") || (!exists(tree + "/bin/sh") && !exists(tree + "/usr/bin/sh")))
    throw Error(fmt::format("--base {}: not a root filesystem (no etc/ and bin/sh)", base),
                Error::Kind::usage);
}

void check_base(const std::string& base) {
  if (format::is_squashfs_file(base)) {
    if (!util::on_path("unsquashfs"))
      throw Error(fmt::format("--base {}: a SquashFS base needs unsquashfs (squashfs-tools)", base),
                  Error::Kind::usage);
    return;  // its tree is checked once extracted
  }
  if (!is_dir(base))
    throw Error(
        fmt::format(
            "--base {}: neither a directory nor a SquashFS image (a root filesystem is one)", base),
        Error::Kind::usage);
  check_root(base, base);
}

std::map<std::string, std::string> parse_env0(std::string_view text) {
  std::map<std::string, std::string> vars;
  for (std::string_view item : util::split(text, '\0')) {
    std::size_t eq = item.find('=');
    if (eq != std::string_view::npos && eq > 0)
      vars[std::string(item.substr(0, eq))] = std::string(item.substr(eq + 1));
  }
  return vars;
}

// What the env's activate.d scripts export, run in the image as activation would run them: the
// variables they add or change, the shell's own left out.
std::map<std::string, std::string> script_exports(const BuildOptions& o, const std::string& image,
                                                  const std::string& env_file) {
  std::string dir = image + o.at + "/etc/conda/activate.d";
  bool any = false;
  std::error_code ec;
  for (const auto& ent : fs::directory_iterator(dir, ec)) any |= ent.path().extension() == ".sh";
  if (!any) return {};
  if (!util::on_path(o.ch_run))
    throw Error(fmt::format("{}: not found: the env's activate.d scripts run inside the image, "
                            "which needs Charliecloud (Debian: charliecloud-runtime)",
                            o.ch_run),
                Error::Kind::usage);
  std::string script = fmt::format(
      "env -0; printf '\\0\\001ferry\\0'; for f in {}/etc/conda/activate.d/*.sh; do "
      "[ -f \"$f\" ] && . \"$f\"; done; env -0",
      util::shell_quote(o.at));
  std::vector<std::string> vars = environ_with_user();
  util::CommandOutput out = util::run_command(
      {o.ch_run, "--unset-env=*", "--set-env=" + env_file, image, "--", "/bin/sh", "-c", script},
      300, &vars);
  std::size_t cut = out.out.find(std::string("\0\001ferry\0", 8));
  if (out.status != 0 || cut == std::string::npos)
    throw Error(
        fmt::format("{}: the env's activate.d scripts failed in the image (exit status "
                    "{}): {}",
                    dir, out.status, out.last_error_line()));
  auto before = parse_env0(std::string_view(out.out).substr(0, cut));
  auto after = parse_env0(std::string_view(out.out).substr(cut + 8));
  std::map<std::string, std::string> changed;
  for (const auto& [name, value] : after) {
    if (name == "_" || name == "SHLVL" || name == "PWD" || name == "OLDPWD") continue;
    auto it = before.find(name);
    if (it == before.end() || it->second != value) changed[name] = value;
  }
  return changed;
}

}  // namespace

std::map<std::string, std::string> parse_environment(std::string_view text) {
  std::map<std::string, std::string> vars;
  for (std::string_view line : util::split(text, '\n')) {
    std::size_t eq = line.find('=');
    if (line.empty() || eq == std::string_view::npos || eq == 0) continue;
    std::string_view value = line.substr(eq + 1);
    if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'')
      value = value.substr(1, value.size() - 2);  // ch-run strips single quotes
    vars[std::string(line.substr(0, eq))] = std::string(value);
  }
  return vars;
}

std::string format_environment(const std::map<std::string, std::string>& vars) {
  std::string out;
  for (const auto& [name, value] : vars) {
    if (value.find('\n') != std::string::npos)
      throw Error(fmt::format("{}: a value with a newline cannot go in /ch/environment", name));
    out += name + "=" + value + "\n";
  }
  return out;
}

namespace {

// The image's tree in root: the base copied, the env unpacked and relocated, /ch/environment.
void fill_image(const BuildOptions& o, const std::string& temp, BuildResult& r) {
  // A SquashFS base is extracted (as root, with its owners; as another user its device nodes
  // cannot be made and the extraction fails, as cp -a of such a directory base does), a
  // directory copied.
  bool squashed = format::is_squashfs_file(r.base);
  util::CommandOutput copy =
      squashed ? util::run_command({"unsquashfs", "-f", "-no-progress", "-quiet", "-d", temp,
                                    "-processors",
                                    std::to_string(o.jobs ? o.jobs : util::default_jobs()), r.base})
               : util::run_command({"cp", "-a", "--reflink=auto", r.base + "/.", temp + "/"});
  if (copy.status != 0)
    throw Error(fmt::format("--base {}: cannot {} it: {}", r.base, squashed ? "extract" : "copy",
                            copy.last_error_line()));
  if (squashed) check_root(r.base, temp);

  // An env directory is packed first: unpack is what relocates.
  std::string archive = r.source;
  if (is_dir(r.source)) {
    env::PackOptions pack;
    pack.prefix = r.source;
    pack.output = temp + "/.ferry-env.tar.zst";
    pack.jobs = o.jobs;
    env::pack(pack);
    archive = pack.output;
  }
  env::UnpackOptions unpack;
  unpack.archive = archive;
  unpack.dest = temp + r.at;
  unpack.relocate_to = r.at;
  unpack.jobs = o.jobs;
  unpack.progress = o.progress;
  r.files = env::unpack(unpack).files;
  if (archive != r.source) ::unlink(archive.c_str());

  std::string env_file = temp + "/ch/environment";
  std::map<std::string, std::string> vars;
  if (exists(env_file))
    vars = parse_environment(util::read_file(env_file));
  else
    vars["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  vars = env::activated_environ(r.at, std::move(vars), temp + r.at);
  std::error_code ec;
  fs::create_directories(temp + "/ch", ec);
  if (ec) throw Error(fmt::format("{}/ch: cannot create: {}", r.image, ec.message()));
  util::write_file_atomically(env_file, format_environment(vars), 0644);
  for (auto& [name, value] : script_exports(o, temp, env_file)) vars[name] = value;
  util::write_file_atomically(env_file, format_environment(vars), 0644);
  r.environment = vars;
}

}  // namespace

bool is_squashfs_name(const std::string& path) { return path.ends_with(".sqfs"); }

BuildResult build_image(const BuildOptions& o) {
  util::Stopwatch clock;
  BuildResult r;
  r.base = util::absolute_path(o.base);
  r.source = util::absolute_path(o.source);
  r.at = o.at;
  bool dots = false;
  for (std::string_view part : util::split(r.at, '/')) dots |= part == "." || part == "..";
  if (r.at.empty() || r.at[0] != '/' || r.at == "/" || dots || r.at.back() == '/')
    throw Error(fmt::format("--at {}: must be an absolute path below / (no . or .. in it)", o.at),
                Error::Kind::usage);
  check_base(r.base);
  if (!exists(r.source))
    throw Error(fmt::format("{}: no such env or archive", r.source), Error::Kind::usage);
  util::SiblingPath where = util::sibling_path(o.output);
  r.image = where.path;
  if (exists(r.image))
    throw Error(fmt::format("-o {}: already exists (an image is built whole, elsewhere)", r.image),
                Error::Kind::usage);
  bool squash = is_squashfs_name(r.image);
  if (squash && !util::on_path("mksquashfs"))
    throw Error("mksquashfs: not found: a .sqfs image needs squashfs-tools", Error::Kind::usage);
  util::StagedTree tree(where);
  if (!squash) {
    fill_image(o, tree.stage(), r);
  } else {
    // The tree beside the SquashFS file, in the same temporary: both go if anything fails.
    std::string file = tree.stage(util::TempSibling::Kind::file);
    std::string root = file.substr(0, file.rfind('/')) + "/root";
    if (::mkdir(root.c_str(), 0755) != 0) util::throw_errno(root, "cannot create", errno);
    fill_image(o, root, r);
    util::CommandOutput out =
        util::run_command({"mksquashfs", root, file, "-noappend", "-quiet", "-no-progress", "-comp",
                           "zstd", "-Xcompression-level", "3", "-processors",
                           std::to_string(o.jobs ? o.jobs : util::default_jobs())});
    if (out.status != 0)
      throw Error(fmt::format("{}: mksquashfs failed (exit status {}): {}", r.image, out.status,
                              out.last_error_line()));
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  tree.commit();
  r.seconds = clock.seconds();
  return r;
}

}  // namespace ferry::container
