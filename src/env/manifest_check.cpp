#include "env/manifest_check.hpp"

#include <fmt/format.h>

namespace ferry::env {
namespace {

// Verifies a streamed file against its row as the pieces pass (size, xxh3 of the archive's bytes)
// and relocates it with the streaming rules (text, binary) or, for ELF search paths, in place
// once written.
class VerifyingFilter : public format::MemberFilter {
 public:
  VerifyingFilter(const format::ManifestFile& row, std::string subject, Relocator& relocator)
      : m_row(row), m_subject(std::move(subject)), m_relocator(relocator) {}

  void relocate(const std::string& placeholder) {
    m_placeholder = placeholder;
    if (placeholder == m_relocator.dest || m_row.mode == format::RelocMode::none) return;
    if (m_row.mode == format::RelocMode::rpath) {
      m_rpath = true;
      return;
    }
    m_replacer.emplace(m_row.mode, placeholder, m_relocator.dest, m_subject);
  }

  bool feed(std::string_view piece, std::string& out) override {
    m_bytes += piece.size();
    if (m_bytes > m_row.size) mismatch();
    m_hash.update(piece);
    if (!m_replacer) return false;
    m_replacer->feed(piece, out);
    return true;
  }

  void finish(std::string& out) override {
    if (m_bytes != m_row.size || m_hash.digest() != m_row.xxh3) mismatch();
    if (!m_replacer) return;
    m_replacer->finish(out);
    if (m_replacer->too_long()) {
      std::lock_guard lock(m_relocator.mutex);
      m_relocator.too_long.push_back(m_row.path);
    } else if (m_replacer->changed()) {
      m_relocator.relocated.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void patch(int fd) override {
    if (!m_rpath) return;
    auto result =
        relocation::replace_search_paths_in_file(fd, m_placeholder, m_relocator.dest, m_subject);
    if (result == relocation::BinaryResult::too_long) {
      std::lock_guard lock(m_relocator.mutex);
      m_relocator.too_long.push_back(m_row.path);
    } else if (result == relocation::BinaryResult::replaced) {
      m_relocator.relocated.fetch_add(1, std::memory_order_relaxed);
    }
  }

 private:
  [[noreturn]] void mismatch() const {
    throw Error(fmt::format("{}: checksum mismatch (corrupted archive)", m_subject));
  }
  const format::ManifestFile& m_row;
  std::string m_subject;
  Relocator& m_relocator;
  util::Xxh3Stream m_hash;
  std::uint64_t m_bytes = 0;
  std::string m_placeholder;
  std::optional<relocation::StreamReplacer> m_replacer;
  bool m_rpath = false;
};

const char* type_name(format::EntryType t) {
  switch (t) {
    case format::EntryType::file: return "file";
    case format::EntryType::directory: return "directory";
    case format::EntryType::symlink: return "symlink";
    case format::EntryType::hardlink: return "hardlink";
  }
  return "member";
}

}  // namespace

ManifestCheck::ManifestCheck(const format::Manifest& manifest, std::string archive,
                             Relocator& relocator)
    : m_manifest(manifest),
      m_archive(std::move(archive)),
      m_relocator(relocator),
      m_file_seen(manifest.files.size()) {
  m_files.reserve(manifest.files.size());
  for (std::size_t i = 0; i < manifest.files.size(); ++i)
    m_files.emplace(manifest.files[i].path, i);
  for (const auto& d : manifest.dir_entries) m_dirs.emplace(d.path, d.perm);
  for (const auto& l : manifest.symlink_entries) m_symlinks.emplace(l.path, l.target);
  for (const auto& l : manifest.hardlink_entries)
    m_hardlinks.emplace(l.path, format::normalize_member_path(l.target, m_archive));
}

void ManifestCheck::fail(const std::string& path, const std::string& why) const {
  throw Error(fmt::format("{}: member '{}': {}", m_archive, util::printable(path), why));
}

void ManifestCheck::on_member(const format::Member& m) {
  std::string path = format::normalize_member_path(m.entry.path, m_archive);
  if (path.empty() || path == ".ferry" || path == format::k_manifest_path) return;
  const format::Entry& e = m.entry;
  auto unlisted = [&] {
    fail(path, fmt::format("{} not listed in the manifest (tampered archive?)", type_name(e.type)));
  };
  switch (e.type) {
    case format::EntryType::file:
      if (!m_files.count(path)) unlisted();
      return;  // its data is checked when it is written
    case format::EntryType::directory: {
      auto it = m_dirs.find(path);
      if (it == m_dirs.end()) unlisted();
      if ((e.mode & 07777) != it->second)
        fail(path, "mode differs from the manifest (tampered archive?)");
      ++m_dirs_seen;
      break;
    }
    case format::EntryType::symlink: {
      auto it = m_symlinks.find(path);
      if (it == m_symlinks.end()) unlisted();
      if (e.link != it->second)
        fail(path, "symlink target differs from the manifest (tampered archive?)");
      ++m_symlinks_seen;
      break;
    }
    case format::EntryType::hardlink: {
      auto it = m_hardlinks.find(path);
      if (it == m_hardlinks.end()) unlisted();
      if (format::normalize_member_path(e.link, m_archive) != it->second)
        fail(path, "hardlink target differs from the manifest (tampered archive?)");
      ++m_hardlinks_seen;
      break;
    }
  }
  if (m_other_seen[path]) fail(path, "appears twice");
  m_other_seen[path] = true;
}

const format::ManifestFile& ManifestCheck::file(const std::string& path, std::uint32_t mode) const {
  auto it = m_files.find(path);
  if (it == m_files.end()) fail(path, "not listed in the manifest (tampered archive?)");
  const format::ManifestFile& f = m_manifest.files[it->second];
  if ((mode & 07777) != f.perm) fail(path, "mode differs from the manifest (tampered archive?)");
  if (m_file_seen[it->second].exchange(true)) fail(path, "appears twice");
  return f;
}

bool ManifestCheck::check_file(const format::Entry& e, std::string_view data, std::string& out) {
  if (e.path == format::k_manifest_path) return false;
  const format::ManifestFile& f = file(e.path, e.mode);
  if (data.size() != f.size || util::xxh3(data) != f.xxh3)
    fail(e.path, "checksum mismatch (corrupted archive)");
  if (f.placeholder < 0) return false;
  return m_relocator.apply(e.path, data, f.mode,
                           m_manifest.placeholders[static_cast<std::size_t>(f.placeholder)], out);
}

std::unique_ptr<format::MemberFilter> ManifestCheck::stream(const format::Entry& e) {
  if (e.path == format::k_manifest_path) return nullptr;
  const format::ManifestFile& f = file(e.path, e.mode);
  auto filter = std::make_unique<VerifyingFilter>(
      f, fmt::format("{}: member '{}'", m_archive, util::printable(e.path)), m_relocator);
  if (f.placeholder >= 0)
    filter->relocate(m_manifest.placeholders[static_cast<std::size_t>(f.placeholder)]);
  return filter;
}

void ManifestCheck::check_complete() const {
  std::size_t missing = 0;
  std::string first;
  for (std::size_t i = 0; i < m_file_seen.size(); ++i)
    if (!m_file_seen[i].load() && missing++ == 0) first = m_manifest.files[i].path;
  auto other = [&](const auto& listed, std::size_t seen) {
    if (seen == listed.size()) return;
    for (const auto& [path, value] : listed)
      if (!m_other_seen.count(path)) {
        missing += listed.size() - seen;
        if (first.empty()) first = path;
        return;
      }
  };
  other(m_dirs, m_dirs_seen);
  other(m_symlinks, m_symlinks_seen);
  other(m_hardlinks, m_hardlinks_seen);
  if (missing)
    throw Error(
        fmt::format("{}: archive is truncated or damaged: {} members listed in the manifest "
                    "are missing (e.g. {})",
                    m_archive, missing, util::printable(first)));
}

}  // namespace ferry::env
