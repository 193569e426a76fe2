// Applies the records of a conda-pack archive (bin/conda-unpack's _prefix_records) to the extracted
// tree, natively and in parallel: what conda-unpack would do, without Python on the node.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <tbb/parallel_for.h>

#include "env/collect.hpp"
#include "env/conda_unpack_records.hpp"
#include "env/pieces.hpp"
#include "env/relocator.hpp"

namespace ferry::env {
namespace {

namespace fs = std::filesystem;

// One replacement in a file. mode nullopt: guess text or binary from the content, and only where
// the placeholder occurs.
struct Step {
  std::optional<format::RelocMode> mode;
  std::string placeholder;
};

struct Target {
  std::string rel;
  std::vector<Step> steps;
};

// Rewrites one extracted file by its steps, in record order, as conda-unpack does: in place (its
// "rb+"), so every hardlink to it sees the new content and the directory times that extraction set
// last stay. A read-only file is made writable by its owner for the time of the rewrite (ferry just
// created it); conda-unpack itself fails on one. The file must be there and regular: conda-pack
// records regular files only (its script fails on a missing one), so anything else is a damaged
// or tampered archive, and skipping it would leave the build placeholder in the tree.
class FileRewriter {
 public:
  FileRewriter(int root_fd, const std::string& archive, Relocator& relocator)
      : m_root_fd(root_fd), m_archive(archive), m_relocator(relocator) {}

  void rewrite(const Target& t) {
    std::string subject = fmt::format("{}: member '{}'", m_archive, t.rel);
    // O_NONBLOCK: a FIFO planted under a recorded name must not hang the open.
    int raw = util::open_beneath(m_root_fd, t.rel, O_RDONLY | O_NONBLOCK);
    if (raw < 0) {
      if (errno == ENOENT)
        throw Error(
            fmt::format("{}: named by bin/conda-unpack's relocation records but not in the "
                        "archive (damaged or tampered archive)",
                        subject));
      if (errno == ELOOP || errno == ENOTDIR || errno == EXDEV)
        throw Error(
            fmt::format("{}: named by bin/conda-unpack's relocation records but {} "
                        "(tampered archive?)",
                        subject,
                        errno == ELOOP ? "is a symlink or lies beyond one"
                                       : "lies beyond a symlink or a file"));
      util::throw_errno(subject, "cannot open for relocation", errno);
    }
    util::UniqueFd fd(raw);
    struct stat st {};
    if (::fstat(raw, &st) != 0) util::throw_errno(subject, "cannot stat", errno);
    if (!S_ISREG(st.st_mode))
      throw Error(
          fmt::format("{}: named by bin/conda-unpack's relocation records but not a "
                      "regular file (tampered archive?)",
                      subject));
    // Names of one inode are relocated one at a time: each sees what the previous one wrote.
    std::unique_lock<std::mutex> linked;
    if (st.st_nlink > 1) linked = std::unique_lock(m_linked_mutex);
    if (static_cast<std::uint64_t>(st.st_size) > format::k_stream_min &&
        rewrite_streamed(t, raw, st, subject))
      return;
    std::string data = read_whole(raw, subject);
    bool changed = false;
    std::string out;
    for (const Step& step : t.steps) {
      std::optional<format::RelocMode> mode = step.mode;
      if (!mode) {
        if (data.find(step.placeholder) == std::string::npos) continue;
        mode = data.find('\0') == std::string::npos ? format::RelocMode::text
                                                    : format::RelocMode::binary;
      }
      if (!m_relocator.apply(t.rel, data, *mode, step.placeholder, out)) continue;
      data.swap(out);
      changed = true;
    }
    if (changed) write_back(t.rel, raw, st, data, subject);
  }

 private:
  // A file too large to hold: each step streams the current content through the relocation rule
  // into an unnamed temporary file beside it (O_TMPFILE), and the result is copied back in place.
  // false when the file system has no O_TMPFILE (the caller then reads the file whole).
  bool rewrite_streamed(const Target& t, int fd, const struct stat& st,
                        const std::string& subject) {
    util::UniqueFd current;
    bool changed = false;
    for (const Step& step : t.steps) {
      if (step.placeholder == m_relocator.dest || step.placeholder.empty()) continue;
      int source = current ? current.get() : fd;
      std::optional<format::RelocMode> mode = step.mode;
      if (!mode) {  // a bin/python* file: text or binary by its content, as for the whole file
        PieceSearch search(step.placeholder);
        bool nul = false;
        read_pieces(source, subject, [&](std::string_view piece) {
          search.feed(piece);
          nul = nul || piece.find('\0') != std::string_view::npos;
        });
        if (!search.found()) continue;
        mode = nul ? format::RelocMode::binary : format::RelocMode::text;
      }
      int raw = ::openat(m_root_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
      if (raw < 0) {
        if (changed) util::throw_errno(subject, "cannot create a temporary file", errno);
        return false;
      }
      util::UniqueFd next(raw);
      relocation::StreamReplacer replacer(*mode, step.placeholder, m_relocator.dest, subject);
      std::string out;
      read_pieces(source, subject, [&](std::string_view piece) {
        out.clear();
        replacer.feed(piece, out);
        util::write_all(raw, out, subject);
      });
      out.clear();
      replacer.finish(out);
      util::write_all(raw, out, subject);
      if (replacer.too_long()) {
        std::lock_guard lock(m_relocator.mutex);
        m_relocator.too_long.push_back(t.rel);
        continue;
      }
      if (!replacer.changed()) continue;
      m_relocator.relocated.fetch_add(1, std::memory_order_relaxed);
      current = std::move(next);
      changed = true;
    }
    if (changed) copy_back(t.rel, fd, current.get(), st, subject);
    return true;
  }

  // write_back's streamed twin: the relocated content of `from` replaces the file's, in place.
  void copy_back(const std::string& rel, int read_fd, int from, const struct stat& st,
                 const std::string& subject) {
    util::UniqueFd fd = open_for_write(rel, read_fd, st, subject);
    if (::ftruncate(fd.get(), 0) != 0) util::throw_errno(subject, "cannot truncate", errno);
    read_pieces(from, subject,
                [&](std::string_view piece) { util::write_all(fd.get(), piece, subject); });
    finish_write(fd.get(), st, subject);
  }

  static std::string read_whole(int fd, const std::string& subject) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) util::throw_errno(subject, "cannot stat", errno);
    std::string data(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::pread(fd, data.data() + done, data.size() - done, static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) util::throw_errno(subject, "cannot read", errno);
      if (n == 0) throw Error(fmt::format("{}: cannot read: the file shrank", subject));
      done += static_cast<std::size_t>(n);
    }
    return data;
  }

  // The file opened for writing (made writable by its owner first when it is read-only).
  util::UniqueFd open_for_write(const std::string& rel, int read_fd, const struct stat& st,
                                const std::string& subject) {
    mode_t mode = st.st_mode & 07777;
    int raw = util::open_beneath(m_root_fd, rel, O_WRONLY);
    if (raw < 0 && errno == EACCES && st.st_uid == ::geteuid()) {
      if (::fchmod(read_fd, mode | S_IWUSR) != 0)
        util::throw_errno(subject, "cannot make writable", errno);
      raw = util::open_beneath(m_root_fd, rel, O_WRONLY);
    }
    if (raw < 0) util::throw_errno(subject, "cannot open for relocation", errno);
    util::UniqueFd fd(raw);
    struct stat now {};
    if (::fstat(raw, &now) != 0 || now.st_ino != st.st_ino || now.st_dev != st.st_dev)
      throw Error(fmt::format("{}: replaced while it was being relocated", subject));
    return fd;
  }

  // The mode (if it was made writable) and times the file had before.
  static void finish_write(int fd, const struct stat& st, const std::string& subject) {
    if (::fchmod(fd, st.st_mode & 07777) != 0) util::throw_errno(subject, "cannot set mode", errno);
    timespec times[2] = {st.st_atim, st.st_mtim};
    if (::futimens(fd, times) != 0) util::throw_errno(subject, "cannot set times", errno);
  }

  void write_back(const std::string& rel, int read_fd, const struct stat& st, std::string_view data,
                  const std::string& subject) {
    util::UniqueFd fd = open_for_write(rel, read_fd, st, subject);
    // Truncated first, so a rewrite needs only the space it adds. Errors throw with the errno of
    // the failing call (a short write is retried, so a full disk says ENOSPC).
    if (::ftruncate(fd.get(), 0) != 0) util::throw_errno(subject, "cannot truncate", errno);
    util::write_all(fd.get(), data, subject);
    finish_write(fd.get(), st, subject);
  }

  int m_root_fd;
  const std::string& m_archive;
  Relocator& m_relocator;
  std::mutex m_linked_mutex;
};

}  // namespace

// conda-pack archives carry their records in bin/conda-unpack, the last member; apply them after
// extraction, in parallel, natively.
//
// conda-pack leaves every bin/python* file out of the records (its script runs under that python),
// so bin/python3.X and bin/python3.X-config keep the build placeholder: a python whose RUNPATH
// names it cannot find its libpython. ferry has no such constraint: it also relocates bin/python*
// files that hold one of the archive's placeholders.
void apply_conda_unpack_records(const std::string& root, const CondaUnpackRecords& records,
                                Relocator& relocator, unsigned jobs) {
  util::UniqueFd root_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) util::throw_errno(root, "cannot open", errno);
  std::string subject = fmt::format("{}: bin/conda-unpack", records.archive);
  // One target per file, its records in script order (a file named twice is rewritten once).
  std::vector<Target> targets;
  std::map<std::string, std::size_t> index;
  std::set<std::string> placeholders;
  for (const auto& rec : records.list) {
    std::string rel = format::normalize_member_path(rec.path, subject);
    if (rel.empty())
      throw Error(fmt::format("{}: a relocation record names the environment's root", subject));
    auto [it, fresh] = index.emplace(rel, targets.size());
    if (fresh) targets.push_back({rel, {}});
    targets[it->second].steps.push_back({rec.mode, rec.placeholder});
    placeholders.insert(rec.placeholder);
  }
  std::vector<Target> pythons;
  std::error_code ec;
  for (const auto& ent : fs::directory_iterator(root + "/bin", ec)) {
    std::string rel = "bin/" + ent.path().filename().string();
    if (rel.starts_with("bin/python") && !index.count(rel) && ent.is_regular_file(ec) &&
        !ent.is_symlink(ec)) {
      Target t{rel, {}};
      for (const auto& placeholder : placeholders) t.steps.push_back({std::nullopt, placeholder});
      pythons.push_back(std::move(t));
    }
  }
  FileRewriter rewriter(root_fd.get(), records.archive, relocator);
  JobArena arena(jobs);
  arena.execute([&] {
    for (const auto* list : {&targets, &pythons})
      tbb::parallel_for(std::size_t{0}, list->size(),
                        [&](std::size_t i) { rewriter.rewrite((*list)[i]); });
  });
}

}  // namespace ferry::env
