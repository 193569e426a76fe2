// Tar encoding through libarchive's pax writer, unblocked so each member's bytes arrive at once.
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include "format/format.hpp"

namespace ferry::format {

struct TarEncoder::Impl {
  archive* writer = nullptr;
  std::string discard;  // where bytes go outside add()/finish() (e.g. a close in the destructor)
  std::string* out = &discard;
  archive_entry* entry = nullptr;
  std::string path;  // the file begin_file started, for messages

  static la_ssize_t write_cb(archive*, void* self, const void* buffer, size_t length) {
    auto* impl = static_cast<Impl*>(self);
    impl->out->append(static_cast<const char*>(buffer), length);
    return static_cast<la_ssize_t>(length);
  }
  // The entry reset to e's name, mode and time, owned by root (ids mean nothing where it lands).
  archive_entry* start(const Entry& e) {
    archive_entry_clear(entry);
    archive_entry_copy_pathname(entry, e.path.c_str());
    archive_entry_set_perm(entry, e.mode & 07777);
    archive_entry_set_mtime(entry, e.mtime_sec, e.mtime_nsec);
    archive_entry_set_uid(entry, 0);
    archive_entry_set_gid(entry, 0);
    return entry;
  }
  void check(int rc, std::string_view what) {
    if (rc < ARCHIVE_WARN)
      throw Error(fmt::format("tar encoder: {}: {}", what, archive_error_string(writer)));
  }
};

TarEncoder::TarEncoder() : m_impl(std::make_unique<Impl>()) {
  m_impl->writer = archive_write_new();
  m_impl->entry = archive_entry_new();
  // pax_restricted writes ustar headers and adds a pax header only when a member needs one
  // (long names, large sizes); that keeps small files small.
  archive_write_set_format_pax_restricted(m_impl->writer);
  archive_write_set_bytes_per_block(m_impl->writer, 0);
  m_impl->check(
      archive_write_open2(m_impl->writer, m_impl.get(), nullptr, &Impl::write_cb, nullptr, nullptr),
      "open");
}

TarEncoder::~TarEncoder() {
  m_impl->out = &m_impl->discard;
  archive_entry_free(m_impl->entry);
  archive_write_free(m_impl->writer);
}

void TarEncoder::add(const Entry& e, std::string_view data, std::string& out) {
  if (e.type == EntryType::file) {
    begin_file(e, data.size(), out);
    file_data(data, out);
    end_file(out);
    return;
  }
  m_impl->out = &out;
  archive_entry* ae = m_impl->start(e);
  switch (e.type) {
    case EntryType::file:
      archive_entry_set_filetype(ae, AE_IFREG);
      archive_entry_set_size(ae, static_cast<la_int64_t>(data.size()));
      break;
    case EntryType::directory: archive_entry_set_filetype(ae, AE_IFDIR); break;
    case EntryType::symlink:
      archive_entry_set_filetype(ae, AE_IFLNK);
      archive_entry_copy_symlink(ae, e.link.c_str());
      break;
    case EntryType::hardlink:
      archive_entry_set_filetype(ae, AE_IFREG);
      archive_entry_copy_hardlink(ae, e.link.c_str());
      archive_entry_set_size(ae, 0);
      break;
  }
  m_impl->check(archive_write_header(m_impl->writer, ae), e.path);
  m_impl->check(archive_write_finish_entry(m_impl->writer), e.path);
  m_impl->out = &m_impl->discard;
}

void TarEncoder::begin_file(const Entry& e, std::uint64_t size, std::string& out) {
  m_impl->out = &out;
  archive_entry* ae = m_impl->start(e);
  archive_entry_set_filetype(ae, AE_IFREG);
  archive_entry_set_size(ae, static_cast<la_int64_t>(size));
  m_impl->check(archive_write_header(m_impl->writer, ae), e.path);
  m_impl->path = e.path;
  m_impl->out = &m_impl->discard;
}

void TarEncoder::file_data(std::string_view piece, std::string& out) {
  if (piece.empty()) return;
  m_impl->out = &out;
  la_ssize_t n = archive_write_data(m_impl->writer, piece.data(), piece.size());
  if (n < 0 || static_cast<std::size_t>(n) != piece.size())
    throw Error(fmt::format("tar encoder: {}: short write", m_impl->path));
  m_impl->out = &m_impl->discard;
}

void TarEncoder::end_file(std::string& out) {
  m_impl->out = &out;
  m_impl->check(archive_write_finish_entry(m_impl->writer), m_impl->path);
  m_impl->out = &m_impl->discard;
}

void TarEncoder::finish(std::string& out) {
  m_impl->out = &out;
  m_impl->check(archive_write_close(m_impl->writer), "close");
  m_impl->out = &m_impl->discard;
}

}  // namespace ferry::format
