// ferry unpack: extract into a temporary sibling of DEST, verify and relocate each file as it is
// written, then rename into place. A lock beside DEST makes concurrent unpacks of one DEST (several
// ranks on a node) wait for the first and then find it done.
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <mutex>
#include <set>
#include <unordered_map>

#include <fmt/format.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <nlohmann/json.hpp>

#include "env/collect.hpp"
#include "env/conda_unpack_records.hpp"
#include "env/manifest_check.hpp"
#include "env/relocator.hpp"

namespace ferry::env {
namespace {

namespace fs = std::filesystem;

struct ArchiveIdentity {
  std::uint64_t id = 0;
  std::optional<format::Manifest> manifest;
};

// The manifest's identity, or for an archive without one (conda-pack's) the hash of its bytes.
ArchiveIdentity identify(const std::string& archive) {
  ArchiveIdentity ident;
  if (std::optional<std::string> text = format::read_manifest_text(archive))
    ident.manifest = format::Manifest::parse(*text, archive);
  if (ident.manifest) {
    ident.id = ident.manifest->identity();
  } else {
    util::MappedFile map(archive);
    ident.id = util::xxh3(map.bytes());
    map.check_intact();
  }
  return ident;
}

// A conda-pack archive's records, from the extracted bin/conda-unpack (never through a symlink).
std::optional<std::string> read_conda_unpack(const std::string& root) {
  util::UniqueFd root_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) util::throw_errno(root, "cannot open", errno);
  util::UniqueFd fd(util::open_beneath(root_fd.get(), "bin/conda-unpack", O_RDONLY));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  if (static_cast<std::uint64_t>(st.st_size) > format::k_read_whole_max)
    throw Error(
        fmt::format("bin/conda-unpack: {} bytes of records are more than ferry reads ({} MiB)",
                    st.st_size, format::k_read_whole_max >> 20));
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  if (::pread(fd.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
    util::throw_errno("bin/conda-unpack", "cannot read", errno);
  return text;
}

bool dir_is_empty(const std::string& path) {
  std::error_code ec;
  return fs::is_empty(path, ec) && !ec;
}

std::optional<std::uint64_t> unpacked_identity(const std::string& dest) {
  std::string marker = dest + "/" + std::string(format::k_unpacked_marker);
  if (::access(marker.c_str(), F_OK) != 0) return std::nullopt;
  try {
    auto j = nlohmann::json::parse(util::read_file(marker));
    if (j.value("dest", "") != dest) return std::nullopt;  // moved since: relocated elsewhere
    return util::parse_hex64(j.at("archive_id").get<std::string>());
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// The marker (JSON) and the env's relocated scripts hold these paths, and both need UTF-8: a path
// that is not is refused before any work rather than after the whole extraction.
void refuse_paths_not_utf8(const UnpackOptions& o) {
  for (const std::string* p : {&o.archive, &o.dest})
    if (!util::is_valid_utf8(*p))
      throw Error(
          fmt::format("{}: the path is not valid UTF-8 (ferry records ARCHIVE and DEST in "
                      "DEST/.ferry/unpacked.json, and relocated scripts hold DEST): rename it",
                      util::printable(*p)),
          Error::Kind::usage);
}

// Writes .ferry/unpacked.json into the fresh tree without following any symlink.
void write_marker(const std::string& root, const std::string& text) {
  util::UniqueFd root_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) util::throw_errno(root, "cannot open", errno);
  if (::mkdirat(root_fd.get(), ".ferry", 0755) != 0 && errno != EEXIST)
    util::throw_errno(root + "/.ferry", "cannot create", errno);
  util::UniqueFd dir(
      ::openat(root_fd.get(), ".ferry", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) util::throw_errno(root + "/.ferry", "cannot open", errno);
  util::UniqueFd file(::openat(dir.get(), "unpacked.json",
                               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!file) util::throw_errno(root + "/.ferry/unpacked.json", "cannot create", errno);
  util::write_all(file.get(), text, root + "/.ferry/unpacked.json");
}

}  // namespace

std::uint64_t archive_identity(const std::string& archive) {
  return identify(util::absolute_path(archive)).id;
}

bool holds_archive(const std::string& dest, std::uint64_t identity) {
  return unpacked_identity(util::absolute_path(dest)) == identity;
}

struct UnpackSession::State {
  UnpackOptions options;
  util::Stopwatch clock;
  UnpackResult r;
  bool dest_exists = false;
  bool streamed = false;
  std::uint64_t archive_size = 0;
  ArchiveIdentity ident;
  std::optional<util::StagedTree> tree;

  // Everything up to the point where work starts: paths, identity, lock, DEST's state.
  void open() {
    // DEST as the kernel reaches it: W/link/../dest is the dest beside link's target.
    util::SiblingPath where = util::sibling_path(options.dest);
    r.dest = where.path;
    std::error_code ec;
    fs::create_directories(where.parent, ec);
    if (ec) throw Error(fmt::format("{}: cannot create directory: {}", where.parent, ec.message()));
    if (ident.manifest) {
      r.kind = ident.manifest->kind;
      r.source_prefix = ident.manifest->source_prefix;
    }
    tree.emplace(where);
    struct stat st {};
    dest_exists = ::lstat(r.dest.c_str(), &st) == 0;
    if (dest_exists) {
      // --force redoes it even then: it is how a damaged tree that still has its marker is
      // repaired.
      if (!options.force && unpacked_identity(r.dest) == ident.id) {
        r.already_present = true;
        r.seconds = clock.seconds();
        return;
      }
      if (!S_ISDIR(st.st_mode) || (!dir_is_empty(r.dest) && !options.force))
        throw Error(
            fmt::format("{}: already exists and holds something else (use --force to replace it)",
                        r.dest),
            Error::Kind::usage);
    }
  }

  // extract's passes share one Extraction: where the tree goes, the relocator and the manifest
  // check that every member passes through, and what extraction counted.
  struct Extraction {
    std::string root;  // the temporary sibling
    unsigned jobs = 0;
    Relocator relocator;
    std::optional<ManifestCheck> check;  // a ferry archive's members against its manifest
    int manifests_taken = 0;
    format::ExtractStats stats;
  };

  // Writes the tree into a temporary sibling: from the file, or from streamed bytes.
  void extract(const format::FrameSource* stream, const format::FrameIndex* index) {
    if (r.already_present) return;
    if (tree->staged()) throw Error(fmt::format("{}: extracted twice", r.dest));
    Extraction x;
    x.root = tree->stage();
    x.jobs = options.jobs ? options.jobs : util::default_jobs();
    x.relocator.dest = options.relocate_to.empty() ? r.dest : options.relocate_to;
    if (ident.manifest) x.check.emplace(*ident.manifest, r.archive, x.relocator);
    write_members(x, stream, index);  // checked and relocated as they are written
    finish_members(x);                // the manifest's last checks, or conda-pack's records
    warn_too_long(x);                 // binaries that keep their old prefix
    write_marker(x.root, marker_text());
    r.format = x.stats.format;
    r.counts() = x.stats.counts();
    r.frames = x.stats.frames;
    r.relocated_files = x.relocator.relocated.load();
  }

  // What extraction calls for each member: the guard of .ferry/, the manifest check.
  format::ExtractHooks hooks_for(Extraction& x) {
    format::ExtractHooks hooks;
    hooks.on_member = [this, &x](const format::Member& member) {
      std::string path = format::normalize_member_path(member.entry.path, r.archive);
      // .ferry/ is ferry's: only its manifest may come from an archive, so nothing the archive
      // made can redirect the marker written below.
      bool reserved = path == ".ferry" ? member.entry.type != format::EntryType::directory
                                       : path.starts_with(".ferry/") &&
                                             !(path == format::k_manifest_path &&
                                               member.entry.type == format::EntryType::file);
      if (reserved)
        throw Error(
            fmt::format("{}: member '{}': the .ferry directory is reserved for ferry's manifest",
                        r.archive, util::printable(path)));
      // Only the first member is the manifest: another one (there is none, or it was taken
      // already) would replace the verified one in DEST.
      if (path == format::k_manifest_path && (!ident.manifest || x.manifests_taken++ > 0))
        throw Error(
            fmt::format("{}: member '{}': a manifest that is not the archive's first member "
                        "(tampered archive?)",
                        r.archive, util::printable(path)));
      if (x.check) x.check->on_member(member);
    };
    if (x.check) {
      hooks.transform = [&x](const format::Entry& e, std::string_view data, std::string& out) {
        return x.check->check_file(e, data, out);
      };
      hooks.stream = [&x](const format::Entry& e) { return x.check->stream(e); };
    }
    hooks.progress = options.progress;
    return hooks;
  }

  // The members, in parallel on -j threads, into the temporary sibling.
  void write_members(Extraction& x, const format::FrameSource* stream,
                     const format::FrameIndex* index) {
    format::ExtractHooks hooks = hooks_for(x);
    if (options.progress) options.progress->begin("unpack", archive_size);
    {
      JobArena arena(x.jobs);
      arena.execute([&] {
        x.stats = stream ? format::extract_frames(*stream, *index, x.root, x.jobs, hooks, r.archive)
                         : format::extract_archive(r.archive, x.root, x.jobs, hooks);
      });
    }
    if (options.progress) options.progress->finish();
  }

  // A ferry archive: every file the manifest lists was there. A conda-pack archive: the records
  // of its bin/conda-unpack relocate the tree now.
  void finish_members(Extraction& x) {
    if (x.check) {
      x.check->check_complete();
    } else if (auto script = read_conda_unpack(x.root)) {
      r.kind = "conda (conda-pack)";
      auto records = parse_conda_unpack_records(*script, r.archive);
      apply_conda_unpack_records(x.root, records, x.relocator, x.jobs);
    }
  }

  void warn_too_long(Extraction& x) {
    std::vector<std::string>& too_long = x.relocator.too_long;
    if (too_long.empty()) return;
    std::sort(too_long.begin(), too_long.end());
    r.warnings.push_back(fmt::format(
        "{}: {} binary files keep their old prefix: the new path is longer than the space the "
        "old one left in them (e.g. {}); unpack to a shorter path to relocate them",
        r.dest, too_long.size(), too_long.front()));
  }

  // .ferry/unpacked.json: which archive this tree came from, and where it was relocated to.
  std::string marker_text() const {
    nlohmann::json marker = {{"archive", r.archive},
                             {"archive_id", util::hex64(ident.id)},
                             {"dest", r.dest},
                             {"unpacked_at", static_cast<std::int64_t>(::time(nullptr))},
                             {"warnings", r.warnings}};
    return marker.dump(1) + "\n";
  }

  void commit() {
    if (r.already_present) return;
    if (!tree->staged()) throw Error(fmt::format("{}: nothing extracted to commit", r.dest));
    // --force over a tree: swapped atomically, and the old tree goes with the temporary one.
    tree->commit(dest_exists && !dir_is_empty(r.dest));
    r.seconds = clock.seconds();
  }
};

UnpackSession::UnpackSession(const UnpackOptions& options) : m(std::make_unique<State>()) {
  refuse_paths_not_utf8(options);
  m->options = options;
  m->r.archive = util::absolute_path(options.archive);
  struct stat st {};
  if (::stat(m->r.archive.c_str(), &st) != 0)
    util::throw_errno(m->r.archive, "cannot open archive", errno);
  m->archive_size = static_cast<std::uint64_t>(st.st_size);
  m->ident = identify(m->r.archive);
  m->open();
}

UnpackSession::UnpackSession(const UnpackOptions& options, const std::string& manifest_json)
    : m(std::make_unique<State>()) {
  refuse_paths_not_utf8(options);
  m->options = options;
  m->r.archive = options.archive;
  m->streamed = true;
  m->ident.manifest = format::Manifest::parse(manifest_json, options.archive);
  m->ident.id = m->ident.manifest->identity();
  m->open();
}

UnpackSession::~UnpackSession() = default;

bool UnpackSession::already_present() const { return m->r.already_present; }

void UnpackSession::extract() {
  if (m->streamed) throw Error(fmt::format("{}: a streamed archive needs its bytes", m->r.archive));
  m->extract(nullptr, nullptr);
}

void UnpackSession::extract(const format::FrameSource& frames, const format::FrameIndex& index) {
  m->archive_size = frames.size;
  m->extract(&frames, &index);
}

void UnpackSession::commit() { m->commit(); }

const UnpackResult& UnpackSession::result() const { return m->r; }

UnpackResult unpack(const UnpackOptions& o) {
  UnpackSession session(o);
  session.extract();
  session.commit();
  return session.result();
}

}  // namespace ferry::env
