// Private to env: every member of a ferry archive checked against its manifest while it is
// extracted. Nothing unlisted is accepted, nothing listed may differ (data, mode, link target),
// nothing listed may be missing; the relocation records are applied on the way.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "env/relocator.hpp"
#include "format/format.hpp"

namespace ferry::env {

class ManifestCheck {
 public:
  ManifestCheck(const format::Manifest& manifest, std::string archive, Relocator& relocator);
  // Serial, in archive order: the member's name, type, mode and link must be listed as they are.
  void on_member(const format::Member& m);
  // Parallel: a whole file. Throws on a mismatch; true when out holds the relocated data.
  bool check_file(const format::Entry& e, std::string_view data, std::string& out);
  // Serial: a streamed file's filter (verifies as it goes, relocates; nullptr for the manifest).
  std::unique_ptr<format::MemberFilter> stream(const format::Entry& e);
  // After extraction: throws when anything listed did not come.
  void check_complete() const;

 private:
  const format::ManifestFile& file(const std::string& path, std::uint32_t mode) const;
  [[noreturn]] void fail(const std::string& path, const std::string& why) const;

  const format::Manifest& m_manifest;
  std::string m_archive;
  Relocator& m_relocator;
  // Every file's index, keyed by its path in m_manifest (no copies: 60k names are tens of ms).
  std::unordered_map<std::string_view, std::size_t> m_files;
  std::unordered_map<std::string, std::uint32_t> m_dirs;
  std::unordered_map<std::string, std::string> m_symlinks, m_hardlinks;
  mutable std::vector<std::atomic<bool>> m_file_seen;
  std::size_t m_dirs_seen = 0, m_symlinks_seen = 0, m_hardlinks_seen = 0;
  std::unordered_map<std::string, bool> m_other_seen;  // serial only
};

}  // namespace ferry::env
