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
#include <map>
#include <mutex>
#include <unordered_set>

#include <fmt/format.h>
#include <tbb/parallel_pipeline.h>

#include "format/format.hpp"

namespace ferry::format {

std::string normalize_member_path(std::string_view name, const std::string& subject) {
  if (name.empty()) throw Error(fmt::format("{}: member with an empty name", subject));
  if (name.front() == '/')
    throw Error(fmt::format("{}: member '{}': absolute paths are not allowed", subject, name));
  std::string out;
  std::size_t pos = 0;
  while (pos <= name.size()) {
    std::size_t slash = name.find('/', pos);
    if (slash == std::string_view::npos) slash = name.size();
    std::string_view part = name.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..")
      throw Error(fmt::format("{}: member '{}': '..' in paths is not allowed", subject, name));
    if (!out.empty()) out += '/';
    out.append(part);
  }
  return out;  // empty: the archive's root itself
}

namespace {

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

  // Serial, in archive order. True when the member is a regular file for write_file().
  bool admit(Member& m) {
    Entry& e = m.entry;
    e.path = normalize_member_path(e.path, m_subject);
    if (e.path.empty()) return false;
    make_parents(e.path);
    bool seen = m_seen.count(e.path) != 0;
    switch (e.type) {
      case EntryType::directory:
        if (!m_dirs.count(e.path)) {
          if (seen) fail(e.path, "a directory member replaces a file of the same name");
          make_dir(e.path);
        }
        m_dir_meta[e.path] = {e.mode, e.mtime_sec, e.mtime_nsec};
        ++stats.directories;
        return false;
      case EntryType::symlink:
        if (seen) return defer(m);
        m_seen.insert(e.path);
        m_symlinks.insert(e.path);
        make_symlink(e);
        return false;
      case EntryType::hardlink: {
        e.link = normalize_member_path(e.link, m_subject);
        if (!m_files.count(e.link))
          fail(e.path, fmt::format("hardlink to '{}', which is not an earlier regular file",
                                   e.link));
        if (seen) return defer(m);
        m_seen.insert(e.path);
        m_files.insert(e.path);
        return defer(m);  // its target may still be being written
      }
      case EntryType::file:
        if (seen) return defer(m);
        m_seen.insert(e.path);
        m_files.insert(e.path);
        return true;
    }
    return false;
  }

  // Parallel. Creates the file (never through a symlink, never outside root).
  void write_file(const Entry& e, std::string_view data) {
    // Created with its final mode when the umask leaves that whole (almost every file): one
    // system call less per file. Setuid and setgid bits are never restored.
    mode_t mode = e.mode & 0777;
    bool final_mode = !m_default_acl && (e.mode & 01000) == 0 && (mode & m_umask) == 0;
    int fd = util::open_beneath(m_root.get(), e.path, O_WRONLY | O_CREAT | O_EXCL, final_mode ? mode : 0600);
    if (fd < 0) fail_errno(e.path, "cannot create", errno);
    util::UniqueFd file(fd);
    util::write_all(fd, data, fmt::format("{}: member '{}'", m_subject, e.path));
    if (!final_mode && ::fchmod(fd, e.mode & 01777) != 0) fail_errno(e.path, "cannot set mode", errno);
    timespec times[2] = {{e.mtime_sec, static_cast<long>(e.mtime_nsec)},
                         {e.mtime_sec, static_cast<long>(e.mtime_nsec)}};
    if (::futimens(fd, times) != 0) fail_errno(e.path, "cannot set times", errno);
    m_files_written.fetch_add(1, std::memory_order_relaxed);
    m_bytes_written.fetch_add(data.size(), std::memory_order_relaxed);
  }

  void finish(const ExtractHooks& hooks) {
    for (Member& m : m_deferred) {
      const Entry& e = m.entry;
      if (m_dirs.count(e.path)) fail(e.path, "a member replaces a directory of the same name");
      if (::unlinkat(m_root.get(), e.path.c_str(), 0) != 0 && errno != ENOENT)
        fail_errno(e.path, "cannot replace", errno);
      if (e.type == EntryType::symlink) {
        make_symlink(e);
      } else if (e.type == EntryType::hardlink) {
        if (::linkat(m_root.get(), e.link.c_str(), m_root.get(), e.path.c_str(), 0) != 0)
          fail_errno(e.path, "cannot create hardlink", errno);
        ++stats.hardlinks;
      } else {
        write_member(m, hooks);
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

  // Parallel: the hook may verify and rewrite the data first.
  void write_member(const Member& m, const ExtractHooks& hooks) {
    std::string replaced;
    if (hooks.transform && hooks.transform(m.entry, m.data, replaced))
      write_file(m.entry, replaced);
    else
      write_file(m.entry, m.data);
  }

  ExtractStats stats;

 private:
  struct DirMeta {
    std::uint32_t mode;
    std::int64_t sec;
    std::uint32_t nsec;
  };

  [[noreturn]] void fail(const std::string& path, const std::string& why) const {
    throw Error(fmt::format("{}: member '{}': {}", m_subject, path, why));
  }
  [[noreturn]] void fail_errno(const std::string& path, const std::string& what, int err) const {
    util::throw_errno(fmt::format("{}: member '{}'", m_subject, path), what, err);
  }

  bool defer(Member& m) {
    m_deferred.push_back(std::move(m));
    return false;
  }

  void make_parents(const std::string& path) {
    for (std::size_t slash = path.find('/'); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      std::string parent = path.substr(0, slash);
      if (m_dirs.count(parent)) continue;
      if (m_symlinks.count(parent))
        fail(path, fmt::format("path goes through the symlink member '{}'", parent));
      if (m_seen.count(parent)) fail(path, fmt::format("parent '{}' is not a directory", parent));
      make_dir(parent);
    }
  }

  void make_dir(const std::string& path) {
    if (::mkdirat(m_root.get(), path.c_str(), 0700) != 0)
      fail_errno(path, "cannot create directory", errno);
    m_dirs.insert(path);
    m_seen.insert(path);
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
  std::unordered_set<std::string> m_dirs, m_symlinks, m_files, m_seen;
  std::map<std::string, DirMeta> m_dir_meta;  // reverse order visits children before parents
  std::vector<Member> m_deferred;
  std::atomic<std::uint64_t> m_files_written{0}, m_bytes_written{0};
};

// libarchive reader for every archive that is not a ferry frame stream.
class ForeignReader {
 public:
  explicit ForeignReader(const std::string& path) : m_path(path), m_archive(archive_read_new()) {
    archive_read_support_filter_all(m_archive);
    archive_read_support_format_tar(m_archive);
    archive_read_support_format_zip(m_archive);
    if (archive_read_open_filename(m_archive, path.c_str(), 1 << 20) != ARCHIVE_OK)
      throw Error(fmt::format("{}: cannot read archive: {}", path, archive_error_string(m_archive)));
  }
  ~ForeignReader() { archive_read_free(m_archive); }
  ForeignReader(const ForeignReader&) = delete;
  ForeignReader& operator=(const ForeignReader&) = delete;

  bool next(Member& m) {
    archive_entry* ae = nullptr;
    int rc = archive_read_next_header(m_archive, &ae);
    if (rc == ARCHIVE_EOF) return false;
    if (rc < ARCHIVE_WARN) fail();
    if (m_format.empty()) {
      const char* filter = archive_filter_name(m_archive, 0);
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
        throw Error(fmt::format("{}: member '{}': FIFOs are not allowed", m_path, e.path));
      default:
        throw Error(fmt::format("{}: member '{}': device files and sockets are not allowed",
                                m_path, e.path));
    }
    auto data = std::make_shared<std::string>();
    if (archive_entry_size_is_set(ae))
      data->reserve(static_cast<std::size_t>(std::min<la_int64_t>(archive_entry_size(ae), 64 << 20)));
    char buffer[1 << 16];
    while (true) {
      la_ssize_t n = archive_read_data(m_archive, buffer, sizeof buffer);
      if (n < 0) fail();
      if (n == 0) break;
      data->append(buffer, static_cast<std::size_t>(n));
    }
    e.size = data->size();
    m.data = *data;
    m.storage = std::move(data);
    return true;
  }

  std::string format() const { return m_format; }
  std::int64_t position() const { return archive_filter_bytes(m_archive, -1); }

 private:
  [[noreturn]] void fail() {
    throw Error(fmt::format("{}: corrupted or truncated archive: {}", m_path,
                            archive_error_string(m_archive) ? archive_error_string(m_archive)
                                                            : "unknown error"));
  }
  std::string m_path;
  archive* m_archive;
  std::string m_format;
};

using Batch = std::vector<Member>;

// Decoded frames reuse a few buffers: a fresh multi-MiB allocation per frame costs page faults,
// zeroing and unmapping, several percent of a node's CPU in a stage profile. A buffer goes back
// when the last member pointing into it has been written.
class FrameBuffers : public std::enable_shared_from_this<FrameBuffers> {
 public:
  std::shared_ptr<util::PageBuffer> take(std::size_t size) {
    if (size > k_frame_max) return std::make_shared<util::PageBuffer>(size);  // not ferry's: untrusted
    std::unique_ptr<util::PageBuffer> buffer;
    {
      std::lock_guard lock(m_mutex);
      if (!m_free.empty()) {
        buffer = std::move(m_free.back());
        m_free.pop_back();
      }
    }
    if (!buffer) buffer = std::make_unique<util::PageBuffer>(k_frame_max);
    return std::shared_ptr<util::PageBuffer>(buffer.release(), [self = shared_from_this()](util::PageBuffer* p) {
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

std::size_t pipeline_tokens(unsigned jobs) { return std::max(2u, jobs) * 3; }

void extract_frames(const FrameSource& source, const FrameIndex& index, Extractor& ex,
                    unsigned jobs, const ExtractHooks& hooks, const std::string& subject) {
  std::size_t next = 0;
  TarParser parser(subject);
  auto buffers = std::make_shared<FrameBuffers>();
  struct Arrived {
    std::size_t index = 0;
    std::string_view bytes;
  };
  // Every stage tells the source at once when extraction fails (see FrameSource::abandoned).
  auto guarded = [&](auto body) {
    return [&source, body](auto&&... args) {
      try {
        return body(std::forward<decltype(args)>(args)...);
      } catch (...) {
        if (source.abandoned) source.abandoned();
        throw;
      }
    };
  };
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
              tbb::filter_mode::parallel,
              guarded([&](const Arrived& a) {
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
                d.buffer = buffers->take(f.decompressed_size);
                decompress_frame_into(index.layout, a.bytes, f, subject, d.buffer->data());
                d.size = f.decompressed_size;
                return d;
              })) &
          tbb::make_filter<DecodedFrame, Batch>(
              tbb::filter_mode::serial_in_order,
              guarded([&](const DecodedFrame& frame) {
                Batch members, files;
                if (!frame.buffer) return files;
                parser.feed(std::string_view(frame.buffer->data(), frame.size), frame.buffer, members);
                for (Member& m : members) {
                  if (hooks.on_member) hooks.on_member(m);
                  if (ex.admit(m)) files.push_back(std::move(m));
                }
                return files;
              })) &
          tbb::make_filter<Batch, void>(tbb::filter_mode::parallel, guarded([&](const Batch& files) {
            for (const Member& m : files) ex.write_member(m, hooks);
          })));
  parser.finish();
  if (hooks.progress) hooks.progress->advance(source.size);
}

void extract_foreign(const std::string& path, Extractor& ex, unsigned jobs,
                     const ExtractHooks& hooks) {
  ForeignReader reader(path);
  bool done = false;
  std::int64_t reported = 0;
  tbb::parallel_pipeline(
      pipeline_tokens(jobs),
      tbb::make_filter<void, Batch>(tbb::filter_mode::serial_in_order,
                                    [&](tbb::flow_control& fc) {
                                      Batch files;
                                      std::uint64_t bytes = 0;
                                      Member m;
                                      while (!done && bytes < k_chunk_target && files.size() < 256) {
                                        if (!reader.next(m)) {
                                          done = true;
                                          break;
                                        }
                                        if (hooks.on_member) hooks.on_member(m);
                                        if (ex.admit(m)) {
                                          bytes += m.data.size();
                                          files.push_back(std::move(m));
                                        }
                                      }
                                      if (hooks.progress) {
                                        std::int64_t pos = reader.position();
                                        hooks.progress->advance(static_cast<std::uint64_t>(pos - reported));
                                        reported = pos;
                                      }
                                      if (files.empty() && done) fc.stop();
                                      return files;
                                    }) &
          tbb::make_filter<Batch, void>(tbb::filter_mode::parallel, [&](const Batch& files) {
            for (const Member& m : files) ex.write_member(m, hooks);
          }));
  ex.stats.format = reader.format();
}

}  // namespace

ExtractStats extract_archive(const std::string& archive_path, const std::string& root,
                             unsigned jobs, const ExtractHooks& hooks) {
  Extractor ex(root, archive_path);
  util::MappedFile map(archive_path);
  FrameIndex index = index_frames(map.bytes(), archive_path);
  if (index.layout == ArchiveLayout::foreign) {
    extract_foreign(archive_path, ex, jobs, hooks);
  } else {
    extract_frames(FrameSource::in_memory(map.bytes(), index), index, ex, jobs, hooks, archive_path);
    ex.stats.format = index.layout == ArchiveLayout::ferry_zstd ? "ferry tar.zst" : "ferry tar.gz";
    ex.stats.frames = index.frames.size();
  }
  ex.finish(hooks);
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

ExtractStats extract_frames(const FrameSource& source, const FrameIndex& index, const std::string& root,
                            unsigned jobs, const ExtractHooks& hooks, const std::string& subject) {
  if (index.layout == ArchiveLayout::foreign)
    throw Error(fmt::format("{}: only ferry archives can be extracted while they stream in", subject));
  Extractor ex(root, subject);
  extract_frames(source, index, ex, jobs, hooks, subject);
  ex.stats.format = index.layout == ArchiveLayout::ferry_zstd ? "ferry tar.zst" : "ferry tar.gz";
  ex.stats.frames = index.frames.size();
  ex.finish(hooks);
  return ex.stats;
}

void read_members(const std::string& archive_path,
                  const std::function<bool(const Member&)>& visit) {
  util::MappedFile map(archive_path);
  FrameIndex index = index_frames(map.bytes(), archive_path);
  if (index.layout == ArchiveLayout::foreign) {
    ForeignReader reader(archive_path);
    Member m;
    while (reader.next(m))
      if (!visit(m)) return;
    return;
  }
  TarParser parser(archive_path);
  for (const FrameIndexEntry& f : index.frames) {
    auto chunk = std::make_shared<const std::string>(
        decompress_frame(index.layout, map.bytes(), f, archive_path));
    std::vector<Member> members;
    parser.feed(chunk, members);
    for (const Member& m : members)
      if (!visit(m)) return;
  }
  parser.finish();
}

}  // namespace ferry::format
