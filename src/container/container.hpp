// ferry::container — environments as Charliecloud images (on env, format and util).
//
// An image is a root filesystem directory: a base system (a minimal Debian, a centre's image)
// with the env unpacked at `at` (default /opt/env) and relocated to that path, and
// /ch/environment, the file `ch-run --set-env` reads: the base's own lines, then the env's
// activation over them (its bin first on PATH, CONDA_PREFIX or VIRTUAL_ENV) and the variables
// its etc/conda/activate.d scripts export, found by running them inside the image.
//
// Running: `ch-run` with, in this order, the host variables that break a container's Python
// unset (PYTHONPATH, PYTHONHOME, PYTHONSTARTUP, PYTHONUSERBASE, CONDA_*, VIRTUAL_ENV,
// LD_LIBRARY_PATH, LD_PRELOAD), then the image's /ch/environment (or --set-env FILE), then the
// binds: the working directory (and the start directory, --cd, defaults to it; not when it is a
// system path such as /usr/..., whose host copy must not cover the image's), the job's $TMPDIR
// and each --bind.
// A bind target missing in a directory image is made there first. A SquashFS image cannot be
// changed: the working directory is not bound into it (--cd defaults to /), and a --bind target
// must already be there (ch-run says so when it is not).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/util.hpp"

namespace ferry::container {

struct BuildOptions {
  std::string source;  // an env directory or a ferry archive
  std::string base;    // the base root filesystem: a directory or a SquashFS image
  std::string output;  // the image to make (must not exist): a directory, or SquashFS (.sqfs)
  std::string at = "/opt/env";
  unsigned jobs = 0;
  std::string ch_run = "ch-run";  // runs the activate.d scripts inside the image
  util::ProgressSink* progress = nullptr;
};

struct BuildResult {
  std::string image, base, at, source;
  std::map<std::string, std::string> environment;  // /ch/environment, as written
  std::uint64_t files = 0;
  double seconds = 0;
};
FERRY_JSON_FIELDS(BuildResult, image, base, at, source, environment, files, seconds)

// Copies the base into a temporary sibling of output (cp -a; unsquashfs for a SquashFS base),
// unpacks the env into it (packing an env directory first), writes /ch/environment, makes it one
// SquashFS file when output ends in .sqfs (mksquashfs, zstd), and renames it into place: nothing
// is left at output unless all of it worked. A base without etc/ and bin/sh is refused (usage
// error).
BuildResult build_image(const BuildOptions& options);

// /ch/environment's lines (NAME=VALUE each, as ch-run reads them) and back. Values must not hold
// a newline: Error naming the variable.
std::map<std::string, std::string> parse_environment(std::string_view text);
std::string format_environment(const std::map<std::string, std::string>& vars);

// Whether a path names a SquashFS image (.sqfs); format::is_squashfs_file says whether a file is
// one.
bool is_squashfs_name(const std::string& path);

struct RunOptions {
  std::string image;  // a directory, or a SquashFS file (read-only: its bind targets must exist)
  std::vector<std::string> binds;  // SRC[:DST]
  std::string cd;                  // default: the working directory (bound)
  std::string set_env;             // a file instead of the image's /ch/environment
  // One container for the ranks on a node (ch-run --join, for shared memory and CMA between
  // them): the peer group's tag, unique to one launch, and its size (run(): LOCAL_WORLD_SIZE).
  std::string join_tag;
  unsigned join_count = 0;
  // The job's node-local temporary directory ($TMPDIR; run() reads it). ch-run binds it at /tmp
  // and unsets TMPDIR; ferry run also binds it at its own path and sets TMPDIR to that (a
  // directory image), so that host paths into it work inside, or sets TMPDIR=/tmp (SquashFS).
  std::string tmpdir;
  std::vector<std::string> command;
  std::string ch_run = "ch-run";
};

// The host variables ferry run removes before the image's environment applies (ch-run globs).
const std::vector<std::string>& unset_globs();
// The ch-run command line. Checks the image (a directory with /ch/environment, unless set_env),
// the binds' sources, and makes missing bind targets in the image: usage errors name them.
std::vector<std::string> run_argv(const RunOptions& options, const std::string& cwd);
// Replaces ferry with that ch-run (in the working directory, USER set, as ch-run needs): the
// command's exit status is ferry's. With a join tag and no count, the count is LOCAL_WORLD_SIZE
// (ferry rank sets it): usage error when it is unset. The tag gets the host name appended.
[[noreturn]] void run(const RunOptions& options);
// ferry's environment as NAME=VALUE lines, with USER (from the password database) when unset.
std::vector<std::string> environ_with_user();

}  // namespace ferry::container
