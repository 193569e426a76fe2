// Safe, parallel extraction: a serial stage admits members in archive order (names, directories,
// links), a parallel stage writes file contents.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <tbb/parallel_pipeline.h>

#include "format/decode_stream.hpp"
#include "format/format.hpp"

namespace ferry::format {

namespace {

// Already in the form normalize_member_path returns (no empty, '.' or '..' part, not absolute)?
// Almost every member's name is: it is then taken whole.
bool is_normal_member_path(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.back() == '/') return false;
  for (std::size_t start = 0;;) {
    std::size_t end = std::min(name.find('/', start), name.size());
    std::string_view part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (end == name.size()) return true;
    start = end + 1;
  }
}

}  // namespace

std::string normalize_member_path(std::string_view name, const std::string& subject) {
  if (is_normal_member_path(name)) return std::string(name);
  if (name.empty()) throw Error(fmt::format("{}: member with an empty name", subject));
  if (name.front() == '/')
    throw Error(fmt::format("{}: member '{}': absolute paths are not allowed", subject,
                            util::printable(name)));
  std::string out;
  for (std::string_view part : util::split(name, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..")
      throw Error(fmt::format("{}: member '{}': '..' in paths is not allowed", subject,
                              util::printable(name)));
    if (!out.empty()) out += '/';
    out.append(part);
  }
  return out;  // empty: the archive's root itself
}

namespace {

// A member admitted for writing, and the name it is created under (its own, or a temporary one
// beside it when it repeats an earlier name: see Extractor::replace_later).
struct Admitted {
  Member member;
  std::string target;
  std::shared_ptr<std::atomic<bool>> superseded;  // set when a later member takes its name
};
using Batch = std::vector<Admitted>;

class Extractor {
 public:
  Extractor(const std::string& root, std::string subject)
      : m_subject(std::move(subject)),
        m_root(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {
    if (!m_root) util::throw_errno(root, "cannot open directory", errno);
    // The root gets the mode a new directory would get (mkdtemp made it 0700).
    m_umask = util::current_umask();
    ::fchmod(m_root.get(), 0777 & ~m_umask);
    // Under a default ACL the umask does not apply to new files (the ACL does): set every mode.
    m_default_acl = ::fgetxattr(m_root.get(), "system.posix_acl_default", nullptr, 0) >= 0;
  }

  // Serial, in archive order (a streamed file with its first piece). True when the member is a
  // regular file to write: `target` is then the name to create it under, and `superseded` (for a
  // repeated name) tells when a later member of that name makes writing it pointless.
  bool admit(Member& m, std::string& target, std::shared_ptr<std::atomic<bool>>& superseded) {
    Entry& e = m.entry;
    e.path = normalize_member_path(e.path, m_subject);
    if (e.path.empty()) return false;
    if (!m_reserved.empty() && m_reserved.count(e.path))
      fail(e.path, "has the name of ferry's copy of a repeated member");
    if (e.type == EntryType::symlink && e.link.size() >= PATH_MAX)
      fail(e.path, fmt::format("symlink target of {} bytes (the system's limit is {})",
                               e.link.size(), PATH_MAX));
    make_parents(e.path);
    auto [known, seen] = m_kinds.try_emplace(e.path, 0);
    seen = !seen;
    std::uint8_t& kinds = known->second;
    if (kinds & k_dir) {
      if (e.type != EntryType::directory)
        fail(e.path, "a member replaces a directory of the same name");
    } else if (seen && e.type == EntryType::directory) {
      fail(e.path, "a directory member replaces a file of the same name");
    }
    switch (e.type) {
      case EntryType::directory:
        if (!seen) make_dir(e.path, kinds);
        m_dir_meta[e.path] = {e.mode, e.mtime_sec, e.mtime_nsec};
        ++stats.directories;
        return false;
      case EntryType::symlink:
        if (seen) {
          replace_later(e, {});
        } else {
          make_symlink(e);
        }
        kinds |= k_symlink;
        return false;
      case EntryType::hardlink:
        e.link = normalize_member_path(e.link, m_subject);
        if (!has_kind(e.link, k_file))
          fail(e.path, fmt::format("hardlink to '{}', which is not an earlier regular file",
                                   util::printable(e.link)));
        // Made at the end, as its target may still be being written.
        replace_later(e, {});
        kinds |= k_file;
        return false;
      case EntryType::file:
        target = e.path;
        if (seen) {
          target = dup_name(e.path);
          superseded = replace_later(e, target);
        }
        kinds |= k_file;
        return true;
    }
    return false;
  }

  // Parallel: a whole file; the hook may verify and rewrite the data first.
  void write_member(const Admitted& a, const ExtractHooks& hooks) {
    auto superseded = [&] { return a.superseded && a.superseded->load(); };
    if (superseded()) return;  // a later member of the same name wins: not worth writing
    const Member& m = a.member;
    std::string replaced;
    bool changed = hooks.transform && hooks.transform(m.entry, m.data, replaced);
    util::UniqueFd fd = create(m.entry, a.target);
    write_at_end(fd.get(), m.entry, changed ? std::string_view(replaced) : m.data);
    close_file(fd.get(), m.entry);
    m_files_written.fetch_add(1, std::memory_order_relaxed);
    if (superseded()) ::unlinkat(m_root.get(), a.target.c_str(), 0);
  }

  // Serial: a file larger than k_stream_min, in pieces (its first one just admitted).
  void begin_stream(const Entry& e, const std::string& target, const ExtractHooks& hooks) {
    m_stream = Stream{};
    m_stream.entry = e;
    m_stream.fd = create(e, target);
    if (hooks.stream) m_stream.filter = hooks.stream(m_stream.entry);
  }

  // The piece of the current streamed file at offset (in order; a gap is a hole of a sparse file).
  void stream_piece(std::uint64_t offset, std::string_view data) {
    if (!m_stream.fd) return;  // not admitted (the archive's root): its pieces are dropped
    Stream& s = m_stream;
    if (offset < s.written) fail(s.entry.path, "overlapping data");
    if (s.filter) {
      // A verified archive is ferry's, which never writes sparse members: a hole is tampering.
      if (offset != s.written)
        fail(s.entry.path, "a sparse member where the manifest lists a plain file");
      feed_filter(data);
      return;
    }
    if (offset > s.written && ::lseek(s.fd.get(), static_cast<off_t>(offset), SEEK_SET) < 0)
      fail_errno(s.entry.path, "cannot seek", errno);
    s.written = offset;
    write_at_end(s.fd.get(), s.entry, data);
    s.written += data.size();
  }

  void end_stream() {
    if (!m_stream.fd) return;
    Stream& s = m_stream;
    if (s.filter) {
      if (s.written != s.entry.size)
        fail(s.entry.path, "a sparse member where the manifest lists a plain file");
      std::string rest;
      s.filter->finish(rest);
      write_at_end(s.fd.get(), s.entry, rest);
      s.filter->patch(s.fd.get());
    } else if (s.written < s.entry.size &&
               ::ftruncate(s.fd.get(), static_cast<off_t>(s.entry.size)) != 0) {
      fail_errno(s.entry.path, "cannot write", errno);  // a sparse file ending in a hole
    }
    close_file(s.fd.get(), s.entry);
    m_files_written.fetch_add(1, std::memory_order_relaxed);
    m_stream = Stream{};
  }

  void finish() {
    if (m_stream.fd) fail(m_stream.entry.path, "archive ends inside this member");
    // Hardlinks, and members that repeat an earlier name (the last one wins, as with tar), in
    // archive order.
    for (const Deferred& d : m_deferred) {
      if (d.superseded->load()) {
        if (!d.temp.empty()) ::unlinkat(m_root.get(), d.temp.c_str(), 0);
        continue;
      }
      const Entry& e = d.entry;
      if (e.type == EntryType::file) {
        if (::renameat(m_root.get(), d.temp.c_str(), m_root.get(), e.path.c_str()) != 0)
          fail_errno(e.path, "cannot replace", errno);
        continue;
      }
      if (::unlinkat(m_root.get(), e.path.c_str(), 0) != 0 && errno != ENOENT)
        fail_errno(e.path, "cannot replace", errno);
      if (e.type == EntryType::symlink) {
        make_symlink(e);
      } else if (::linkat(m_root.get(), e.link.c_str(), m_root.get(), e.path.c_str(), 0) != 0) {
        fail_errno(e.path, "cannot create hardlink", errno);
      } else {
        ++stats.hardlinks;
      }
    }
    // Directories last, deepest first, so their modes and times survive the writes inside them.
    for (auto it = m_dir_meta.rbegin(); it != m_dir_meta.rend(); ++it) {
      const auto& [path, d] = *it;
      if (::fchmodat(m_root.get(), path.c_str(), d.mode & 01777, 0) != 0)
        fail_errno(path, "cannot set mode", errno);
      timespec times[2] = {{d.sec, static_cast<long>(d.nsec)}, {d.sec, static_cast<long>(d.nsec)}};
      ::utimensat(m_root.get(), path.c_str(), times, AT_SYMLINK_NOFOLLOW);
    }
    stats.files += m_files_written.load();
    stats.bytes += m_bytes_written.load();
  }

  ExtractStats stats;

 private:
  struct DirMeta {
    std::uint32_t mode;
    std::int64_t sec;
    std::uint32_t nsec;
  };
  struct Deferred {
    Entry entry;
    std::string temp;  // a repeated file: where it was written
    std::shared_ptr<std::atomic<bool>> superseded;
  };
  struct Stream {
    Entry entry;
    util::UniqueFd fd;
    std::unique_ptr<MemberFilter> filter;
    std::uint64_t written = 0;  // input bytes consumed
  };

  [[noreturn]] void fail(const std::string& path, const std::string& why) const {
    throw Error(fmt::format("{}: member '{}': {}", m_subject, util::printable(path), why));
  }
  [[noreturn]] void fail_errno(const std::string& path, const std::string& what, int err) const {
    util::throw_errno(fmt::format("{}: member '{}'", m_subject, util::printable(path)), what, err);
  }

  // A member that repeats an earlier name replaces it at the end, after every write, so that a
  // write still running cannot race it; an earlier replacement of the same name is dropped (and
  // its file, if any, not written or removed). Returns the replacement's flag.
  std::shared_ptr<std::atomic<bool>> replace_later(const Entry& e, const std::string& temp) {
    auto superseded = std::make_shared<std::atomic<bool>>(false);
    auto [it, inserted] = m_latest.try_emplace(e.path, m_deferred.size());
    if (!inserted) {
      Deferred& earlier = m_deferred[it->second];
      earlier.superseded->store(true);
      if (earlier.entry.type != EntryType::file) earlier.entry = Entry{};  // nothing of it is kept
      it->second = m_deferred.size();
    }
    m_deferred.push_back(Deferred{e, temp, superseded});
    return superseded;
  }

  // A hidden name beside path for a repeated member's data, which no member of the archive has or
  // may take later.
  std::string dup_name(const std::string& path) {
    std::size_t slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
    std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
    for (std::size_t n = m_deferred.size();; ++n) {
      std::string name = fmt::format("{}.{}.ferry-repeat-{}", dir, base, n);
      if (m_kinds.count(name)) continue;  // an archive member already has it
      m_reserved.insert(name);            // and none may take it later
      return name;
    }
  }

  // Creates the file (never through a symlink, never outside root), with its final mode when the
  // umask leaves that whole (almost every file): one system call less per file. Setuid and setgid
  // bits are never restored.
  util::UniqueFd create(const Entry& e, const std::string& target) const {
    mode_t mode = e.mode & 0777;
    bool final_mode = created_with_final_mode(e);
    // Read-write: a streamed file may be patched in place once written (MemberFilter::patch).
    int fd = util::open_beneath(m_root.get(), target, O_RDWR | O_CREAT | O_EXCL,
                                final_mode ? mode : 0600);
    if (fd < 0) fail_errno(e.path, "cannot create", errno);
    return util::UniqueFd(fd);
  }

  void write_at_end(int fd, const Entry& e, std::string_view data) {
    if (int err = util::write_all_or_errno(fd, data)) fail_errno(e.path, "cannot write", err);
    m_bytes_written.fetch_add(data.size(), std::memory_order_relaxed);
  }

  // Whether create() could give the file its final mode (else close_file() sets it).
  bool created_with_final_mode(const Entry& e) const {
    return !m_default_acl && (e.mode & 01000) == 0 && ((e.mode & 0777) & m_umask) == 0;
  }

  void close_file(int fd, const Entry& e) const {
    if (!created_with_final_mode(e) && ::fchmod(fd, e.mode & 01777) != 0)
      fail_errno(e.path, "cannot set mode", errno);
    timespec times[2] = {{e.mtime_sec, static_cast<long>(e.mtime_nsec)},
                         {e.mtime_sec, static_cast<long>(e.mtime_nsec)}};
    if (::futimens(fd, times) != 0) fail_errno(e.path, "cannot set times", errno);
  }

  void feed_filter(std::string_view data) {
    Stream& s = m_stream;
    m_filter_out.clear();
    bool changed = s.filter->feed(data, m_filter_out);
    write_at_end(s.fd.get(), s.entry, changed ? std::string_view(m_filter_out) : data);
    s.written += data.size();
  }

  bool has_kind(std::string_view path, std::uint8_t kind) const {
    auto it = m_kinds.find(path);
    return it != m_kinds.end() && (it->second & kind);
  }

  // A directory known here has every ancestor known as one (each was checked when it was made,
  // and none can be replaced later), so the nearest parent settles almost every member.
  void make_parents(const std::string& path) {
    std::size_t last = path.rfind('/');
    if (last == std::string::npos || has_kind(std::string_view(path).substr(0, last), k_dir))
      return;
    for (std::size_t slash = path.find('/'); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      std::string_view parent = std::string_view(path).substr(0, slash);
      auto it = m_kinds.find(parent);
      std::uint8_t kinds = it == m_kinds.end() ? 0 : it->second;
      if (kinds & k_dir) continue;
      if (kinds & k_symlink)
        fail(path,
             fmt::format("path goes through the symlink member '{}'", util::printable(parent)));
      if (kinds) fail(path, fmt::format("parent '{}' is not a directory", util::printable(parent)));
      std::string name(parent);
      make_dir(name, m_kinds[name]);
    }
  }

  // kinds: the path's entry in m_kinds.
  void make_dir(const std::string& path, std::uint8_t& kinds) {
    if (::mkdirat(m_root.get(), path.c_str(), 0700) != 0)
      fail_errno(path, "cannot create directory", errno);
    kinds |= k_dir;
    // Until a member says otherwise a directory ends up 0755 (like tar for implied parents).
    m_dir_meta[path] = {0755, 0, UTIME_OMIT};
  }

  void make_symlink(const Entry& e) {
    if (::symlinkat(e.link.c_str(), m_root.get(), e.path.c_str()) != 0)
      fail_errno(e.path, "cannot create symlink", errno);
    timespec times[2] = {{e.mtime_sec, static_cast<long>(e.mtime_nsec)},
                         {e.mtime_sec, static_cast<long>(e.mtime_nsec)}};
    ::utimensat(m_root.get(), e.path.c_str(), times, AT_SYMLINK_NOFOLLOW);
    ++stats.symlinks;
  }

  std::string m_subject;
  util::UniqueFd m_root;
  mode_t m_umask = 022;
  bool m_default_acl = false;
  // Every name admitted so far, with the kinds of member it has been (a bit each: a repeated
  // name can be a file and then a symlink); hardlinks count as files. Looked up by string_view.
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view name) const noexcept {
      return std::hash<std::string_view>{}(name);
    }
  };
  static constexpr std::uint8_t k_dir = 1, k_symlink = 2, k_file = 4;
  std::unordered_map<std::string, std::uint8_t, NameHash, std::equal_to<>> m_kinds;
  std::map<std::string, DirMeta> m_dir_meta;  // reverse order visits children before parents
  std::vector<Deferred> m_deferred;
  std::unordered_map<std::string, std::size_t> m_latest;  // name -> its last m_deferred entry
  std::unordered_set<std::string> m_reserved;             // the temporary names of repeats
  Stream m_stream;
  std::string m_filter_out;
  std::atomic<std::uint64_t> m_files_written{0}, m_bytes_written{0};
};

// libarchive reader for every archive that is not a ferry frame stream. Files up to
// k_stream_min come whole; larger ones, sparse ones and ones of unknown size are streamed: next()
// gives the entry (streamed set) and stream() then hands out their data blocks.
class ForeignReader {
 public:
  // bytes: the archive's, mapped by the caller (only its first few are looked at here).
  ForeignReader(const std::string& path, std::string_view bytes)
      : m_path(path), m_archive(archive_read_new()) {
    archive_read_support_filter_all(m_archive);
    archive_read_support_format_tar(m_archive);
    archive_read_support_format_zip(m_archive);
    // gzip (conda-pack's default) and zstd are decoded on a thread of their own (gzip by
    // ISA-L); libarchive parses the tar from there. Everything else libarchive reads itself.
    if (std::optional<Codec> codec = compression_of(bytes)) {
      m_decoded = std::make_unique<DecodeStream>(path, *codec);
      if (archive_read_open(m_archive, this, nullptr, &ForeignReader::read_decoded, nullptr) !=
          ARCHIVE_OK)
        fail();
      return;
    }
    if (archive_read_open_filename(m_archive, path.c_str(), 1 << 20) != ARCHIVE_OK)
      throw Error(
          fmt::format("{}: cannot read archive: {}", path, archive_error_string(m_archive)));
  }
  ~ForeignReader() { archive_read_free(m_archive); }
  ForeignReader(const ForeignReader&) = delete;
  ForeignReader& operator=(const ForeignReader&) = delete;

  bool next(Member& m) {
    try {
      return next_member(m);
    } catch (const Error&) {
      // A gzip stream's checksum comes at its end, so damaged data can first parse as odd tar
      // members: a stream that does not check out is reported as what it is.
      finish();
      throw;
    }
  }

  bool next_member(Member& m) {
    archive_entry* ae = nullptr;
    int rc = archive_read_next_header(m_archive, &ae);
    if (rc == ARCHIVE_EOF) return false;
    if (rc < ARCHIVE_WARN) fail();
    if (m_format.empty()) {
      const char* filter = m_decoded ? m_decoded->description() : archive_filter_name(m_archive, 0);
      const char* format = archive_format_name(m_archive);
      m_format = fmt::format("{} ({})", format ? format : "?", filter ? filter : "none");
    }
    const char* name = archive_entry_pathname(ae);
    m = Member{};
    Entry& e = m.entry;
    e.path = name ? name : "";
    e.mode = static_cast<std::uint32_t>(archive_entry_perm(ae));
    e.mtime_sec = archive_entry_mtime(ae);
    e.mtime_nsec = static_cast<std::uint32_t>(archive_entry_mtime_nsec(ae));
    if (const char* hard = archive_entry_hardlink(ae)) {
      e.type = EntryType::hardlink;
      e.link = hard;
      return true;
    }
    switch (archive_entry_filetype(ae)) {
      case AE_IFREG: e.type = EntryType::file; break;
      case AE_IFDIR: e.type = EntryType::directory; return true;
      case AE_IFLNK:
        e.type = EntryType::symlink;
        e.link = archive_entry_symlink(ae) ? archive_entry_symlink(ae) : "";
        return true;
      case AE_IFIFO:
        throw Error(
            fmt::format("{}: member '{}': FIFOs are not allowed", m_path, util::printable(e.path)));
      default:
        throw Error(fmt::format("{}: member '{}': device files and sockets are not allowed", m_path,
                                util::printable(e.path)));
    }
    bool known = archive_entry_size_is_set(ae) != 0;
    e.size =
        known ? static_cast<std::uint64_t>(std::max<la_int64_t>(archive_entry_size(ae), 0)) : 0;
    if (!known || e.size > k_stream_min || archive_entry_sparse_count(ae) > 0) {
      m.streamed = true;  // a zip's deflated size is a claim: never allocated for
      return true;
    }
    auto data = std::make_shared<std::string>();
    data->reserve(static_cast<std::size_t>(e.size));
    char buffer[1 << 16];
    while (true) {
      la_ssize_t n = archive_read_data(m_archive, buffer, sizeof buffer);
      if (n < 0) fail();
      if (n == 0) break;
      if (data->size() + static_cast<std::size_t>(n) > k_stream_min)
        throw Error(fmt::format("{}: member '{}': more data than its header declares", m_path,
                                util::printable(e.path)));
      data->append(buffer, static_cast<std::size_t>(n));
    }
    e.size = data->size();
    m.data = *data;
    m.storage = std::move(data);
    return true;
  }

  // The data of the streamed member next() just returned: piece(offset, bytes) in order, holes
  // of sparse files left out.
  void stream(const std::function<void(std::uint64_t, std::string_view)>& piece) {
    while (true) {
      const void* block = nullptr;
      std::size_t size = 0;
      la_int64_t offset = 0;
      int rc = archive_read_data_block(m_archive, &block, &size, &offset);
      if (rc == ARCHIVE_EOF) break;
      if (rc < ARCHIVE_WARN) fail();
      if (size == 0) continue;
      piece(static_cast<std::uint64_t>(offset),
            std::string_view(static_cast<const char*>(block), size));
    }
  }

  // After the tar's end: the rest of a gzip or zstd stream is decoded too, so that its checksums
  // and its end are checked (libarchive stops reading at the tar's end-of-archive blocks).
  void finish() {
    if (!m_decoded) return;
    try {
      while (!m_decoded->next().empty()) {
      }
    } catch (const std::exception& e) {
      throw Error(fmt::format("{}: corrupted or truncated archive: {}", m_path, e.what()));
    }
  }

  std::string format() const { return m_format; }
  // Compressed bytes read so far.
  std::int64_t position() const {
    return m_decoded ? static_cast<std::int64_t>(m_decoded->consumed())
                     : archive_filter_bytes(m_archive, -1);
  }

 private:
  static la_ssize_t read_decoded(archive* a, void* self, const void** buffer) {
    try {
      std::string_view block = static_cast<ForeignReader*>(self)->m_decoded->next();
      *buffer = block.data();
      return static_cast<la_ssize_t>(block.size());
    } catch (const std::exception& e) {
      archive_set_error(a, EINVAL, "%s", e.what());
      return -1;
    }
  }

  [[noreturn]] void fail() {
    throw Error(fmt::format(
        "{}: corrupted or truncated archive: {}", m_path,
        archive_error_string(m_archive) ? archive_error_string(m_archive) : "unknown error"));
  }
  std::string m_path;
  archive* m_archive;
  std::unique_ptr<DecodeStream> m_decoded;  // the tar bytes of a gzip or zstd archive
  std::string m_format;
};

// Decoded frames reuse a few buffers: a fresh multi-MiB allocation per frame costs page faults,
// zeroing and unmapping, several percent of a node's CPU in a stage profile. A buffer goes back
// when the last member pointing into it has been written.
class FrameBuffers : public std::enable_shared_from_this<FrameBuffers> {
 public:
  std::shared_ptr<util::PageBuffer> take() {
    std::unique_ptr<util::PageBuffer> buffer;
    {
      std::lock_guard lock(m_mutex);
      if (!m_free.empty()) {
        buffer = std::move(m_free.back());
        m_free.pop_back();
      }
    }
    if (!buffer)
      buffer = std::make_unique<util::PageBuffer>(k_frame_max);  // index_frames checked the claim
    return std::shared_ptr<util::PageBuffer>(buffer.release(),
                                             [self = shared_from_this()](util::PageBuffer* p) {
                                               std::lock_guard lock(self->m_mutex);
                                               self->m_free.emplace_back(p);
                                             });
  }

 private:
  std::mutex m_mutex;
  std::vector<std::unique_ptr<util::PageBuffer>> m_free;
};

struct DecodedFrame {
  std::shared_ptr<util::PageBuffer> buffer;
  std::size_t size = 0;
};

// Items in flight: enough to keep every thread busy, few enough that decoded frames (at most
// k_frame_max each) stay within a fixed budget whatever the core count.
std::size_t pipeline_tokens(unsigned jobs) {
  return std::min<std::size_t>(std::max(2u, jobs) * 3, k_frames_in_flight_max);
}

// Serial, in archive order: admits parsed members, writes streamed pieces at once, and collects
// whole files for the parallel writers.
void admit_members(std::vector<Member>& members, Extractor& ex, const ExtractHooks& hooks,
                   Batch& files) {
  for (Member& m : members) {
    if (m.streamed && m.offset > 0) {
      ex.stream_piece(m.offset, m.data);
      if (m.last) ex.end_stream();
      continue;
    }
    if (hooks.on_member) hooks.on_member(m);
    std::string target;
    std::shared_ptr<std::atomic<bool>> superseded;
    if (!ex.admit(m, target, superseded)) continue;
    if (!m.streamed) {
      files.push_back(Admitted{std::move(m), std::move(target), std::move(superseded)});
      continue;
    }
    ex.begin_stream(m.entry, target, hooks);
    ex.stream_piece(0, m.data);
    if (m.last) ex.end_stream();
  }
}

void extract_frames(const FrameSource& source, const FrameIndex& index, Extractor& ex,
                    unsigned jobs, const ExtractHooks& hooks, const std::string& subject) {
  std::size_t next = 0;
  TarParser parser(subject);
  auto buffers = std::make_shared<FrameBuffers>();
  struct Arrived {
    std::size_t index = 0;
    std::string_view bytes;
  };
  // Every stage tells the source at once when extraction fails (see FrameSource::abandoned). The
  // first error is the one reported: the source's own "stopped" in a stage woken by that call may
  // reach TBB first.
  std::mutex first_mutex;
  std::exception_ptr first_error;
  auto guarded = [&](auto body) {
    return [&source, &first_mutex, &first_error, body](auto&&... args) {
      try {
        return body(std::forward<decltype(args)>(args)...);
      } catch (...) {
        {
          std::lock_guard lock(first_mutex);
          if (!first_error) first_error = std::current_exception();
        }
        if (source.abandoned) source.abandoned();
        throw;
      }
    };
  };
  try {
    tbb::parallel_pipeline(
        pipeline_tokens(jobs),
        tbb::make_filter<void, Arrived>(tbb::filter_mode::serial_in_order,
                                        guarded([&](tbb::flow_control& fc) {
                                          Arrived a;
                                          if (next == index.frames.size()) {
                                            fc.stop();
                                            return a;
                                          }
                                          a.index = next++;
                                          a.bytes = source.frame(a.index);  // streamed: may wait
                                          return a;
                                        })) &
            tbb::make_filter<Arrived, DecodedFrame>(
                tbb::filter_mode::parallel, guarded([&](const Arrived& a) {
                  DecodedFrame d;
                  if (a.index >= index.frames.size()) return d;
                  // The frame's bytes are done with once this returns or throws.
                  struct Release {
                    const FrameSource& source;
                    std::size_t index;
                    ~Release() {
                      if (source.released) source.released(index);
                    }
                  } release{source, a.index};
                  const FrameIndexEntry& f = index.frames[a.index];
                  d.buffer = buffers->take();
                  decompress_frame_into(index.layout, a.bytes, f, subject, d.buffer->data());
                  d.size = f.decompressed_size;
                  if (hooks.progress) hooks.progress->advance(f.compressed_size);
                  return d;
                })) &
            tbb::make_filter<DecodedFrame, Batch>(
                tbb::filter_mode::serial_in_order, guarded([&](const DecodedFrame& frame) {
                  Batch files;
                  if (!frame.buffer) return files;
                  std::vector<Member> members;
                  parser.feed(std::string_view(frame.buffer->data(), frame.size), frame.buffer,
                              members);
                  admit_members(members, ex, hooks, files);
                  return files;
                })) &
            tbb::make_filter<Batch, void>(tbb::filter_mode::parallel,
                                          guarded([&](const Batch& files) {
                                            for (const Admitted& a : files)
                                              ex.write_member(a, hooks);
                                          })));
  } catch (...) {
    std::lock_guard lock(first_mutex);
    if (first_error) std::rethrow_exception(first_error);
    throw;
  }
  parser.finish();
  if (hooks.progress) {  // the bytes outside the frames (the seek table): the sum is source.size
    std::uint64_t framed = 0;
    for (const FrameIndexEntry& f : index.frames) framed += f.compressed_size;
    if (source.size > framed) hooks.progress->advance(source.size - framed);
  }
}

void extract_foreign(const std::string& path, std::string_view archive, Extractor& ex,
                     unsigned jobs, const ExtractHooks& hooks) {
  ForeignReader reader(path, archive);
  bool done = false;
  std::int64_t reported = 0;
  tbb::parallel_pipeline(
      pipeline_tokens(jobs),
      tbb::make_filter<void, Batch>(tbb::filter_mode::serial_in_order, [&](tbb::flow_control& fc) {
        Batch files;
        std::uint64_t bytes = 0;
        Member m;
        while (!done && bytes < k_chunk_target && files.size() < 256) {
          if (!reader.next(m)) {
            reader.finish();
            done = true;
            break;
          }
          if (hooks.on_member) hooks.on_member(m);
          std::string target;
          std::shared_ptr<std::atomic<bool>> superseded;
          if (!ex.admit(m, target, superseded)) continue;
          if (m.streamed) {
            ex.begin_stream(m.entry, target, hooks);
            reader.stream(
                [&](std::uint64_t at, std::string_view data) { ex.stream_piece(at, data); });
            ex.end_stream();
            continue;
          }
          bytes += m.data.size();
          files.push_back(Admitted{std::move(m), std::move(target), std::move(superseded)});
        }
        if (hooks.progress) {
          std::int64_t pos = reader.position();
          hooks.progress->advance(static_cast<std::uint64_t>(pos - reported));
          reported = pos;
        }
        if (files.empty() && done) fc.stop();
        return files;
      }) & tbb::make_filter<Batch, void>(tbb::filter_mode::parallel, [&](const Batch& files) {
        for (const Admitted& a : files) ex.write_member(a, hooks);
      }));
  ex.stats.format = reader.format();
}

}  // namespace

ExtractStats extract_archive(const std::string& archive_path, const std::string& root,
                             unsigned jobs, const ExtractHooks& hooks) {
  Extractor ex(root, archive_path);
  util::MappedFile map(archive_path);
  try {
    FrameIndex index = index_frames(map.bytes(), archive_path);
    if (index.layout == ArchiveLayout::foreign) {
      extract_foreign(archive_path, map.bytes(), ex, jobs, hooks);
    } else {
      extract_frames(FrameSource::in_memory(map.bytes(), index), index, ex, jobs, hooks,
                     archive_path);
      ex.stats.format =
          index.layout == ArchiveLayout::ferry_zstd ? "ferry tar.zst" : "ferry tar.gz";
      ex.stats.frames = index.frames.size();
    }
    ex.finish();
  } catch (const Error&) {
    map.check_intact();  // the reason behind whatever failed
    throw;
  }
  map.check_intact();
  return ex.stats;
}

FrameSource FrameSource::in_memory(std::string_view archive, const FrameIndex& index) {
  FrameSource s;
  s.frame = [archive, frames = index.frames](std::size_t i) {
    return archive.substr(frames[i].offset, frames[i].compressed_size);
  };
  s.size = archive.size();
  return s;
}

ExtractStats extract_frames(const FrameSource& source, const FrameIndex& index,
                            const std::string& root, unsigned jobs, const ExtractHooks& hooks,
                            const std::string& subject) {
  if (index.layout == ArchiveLayout::foreign)
    throw Error(
        fmt::format("{}: only ferry archives can be extracted while they stream in", subject));
  Extractor ex(root, subject);
  extract_frames(source, index, ex, jobs, hooks, subject);
  ex.stats.format = index.layout == ArchiveLayout::ferry_zstd ? "ferry tar.zst" : "ferry tar.gz";
  ex.stats.frames = index.frames.size();
  ex.finish();
  return ex.stats;
}

namespace {

// Joins a streamed member's pieces for read_members, up to k_read_whole_max.
class WholeMembers {
 public:
  // True when m (whole, or completed by this piece) is ready to visit as `out`.
  bool add(const Member& m, Member& out) {
    if (!m.streamed) {
      out = m;
      return true;
    }
    if (m.offset == 0) {
      m_entry = m.entry;
      m_data.reset();
      if (m.entry.size <= k_read_whole_max) m_data = std::make_shared<std::string>();
    }
    if (m_data) m_data->append(m.data);
    if (!m.last) return false;
    out = Member{};
    out.entry = m_entry;
    if (m_data) {
      out.data = *m_data;
      out.storage = std::move(m_data);
    } else {
      out.streamed = true;  // too large to hold: the entry alone
    }
    return true;
  }

 private:
  Entry m_entry;
  std::shared_ptr<std::string> m_data;
};

}  // namespace

void read_members(const std::string& archive_path,
                  const std::function<bool(const Member&)>& visit) {
  util::MappedFile map(archive_path);
  try {
    FrameIndex index = index_frames(map.bytes(), archive_path);
    if (index.layout == ArchiveLayout::foreign) {
      ForeignReader reader(archive_path, map.bytes());
      Member m;
      while (reader.next(m)) {
        if (m.streamed) {
          auto data = std::make_shared<std::string>();
          bool keep = m.entry.size <= k_read_whole_max;
          reader.stream([&](std::uint64_t at, std::string_view bytes) {
            if (keep && at + bytes.size() <= k_read_whole_max) {
              data->resize(static_cast<std::size_t>(at));  // holes read as zeros
              data->append(bytes);
            } else {
              keep = false;
            }
          });
          if (keep) {
            data->resize(static_cast<std::size_t>(m.entry.size));
            m.data = *data;
            m.storage = std::move(data);
            m.streamed = false;
          }
        }
        if (!visit(m)) return;
      }
      return;
    }
    TarParser parser(archive_path);
    WholeMembers whole;
    for (const FrameIndexEntry& f : index.frames) {
      auto chunk = std::make_shared<const std::string>(
          decompress_frame(index.layout, map.bytes(), f, archive_path));
      std::vector<Member> members;
      parser.feed(chunk, members);
      Member m;
      for (const Member& piece : members)
        if (whole.add(piece, m) && !visit(m)) return;
    }
    parser.finish();
  } catch (const Error&) {
    map.check_intact();
    throw;
  }
  map.check_intact();
}

std::optional<std::string> read_manifest_text(const std::string& archive_path) {
  std::optional<std::string> text;
  read_members(archive_path, [&](const Member& m) {
    std::string path = normalize_member_path(m.entry.path, archive_path);
    if (path == k_manifest_path && m.entry.type == EntryType::file) {
      if (m.streamed)
        throw Error(fmt::format("{}: the manifest is larger than ferry reads ({} MiB)",
                                archive_path, k_read_whole_max >> 20));
      text = std::string(m.data);
      return false;
    }
    return path == ".ferry" && m.entry.type == EntryType::directory;
  });
  return text;
}

}  // namespace ferry::format
