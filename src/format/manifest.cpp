// The manifest: JSON, with files as compact arrays [path, size, xxh3, placeholder, mode].
#include <limits>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "format/format.hpp"

namespace ferry::format {

namespace {
const char* mode_name(RelocMode m) {
  switch (m) {
    case RelocMode::text: return "text";
    case RelocMode::binary: return "binary";
    case RelocMode::rpath: return "rpath";
    case RelocMode::none: break;
  }
  return "";
}
// A JSON number as an integer of type T: a float or an out-of-range value is a corrupted manifest
// (nlohmann's own conversion of such values is undefined behaviour).
template <typename T>
T integer(const nlohmann::json& v, const char* field) {
  bool ok =
      v.is_number_unsigned()
          ? v.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<T>::max())
          : v.is_number_integer() && std::numeric_limits<T>::is_signed &&
                v.get<std::int64_t>() >= static_cast<std::int64_t>(std::numeric_limits<T>::min()) &&
                v.get<std::int64_t>() <= static_cast<std::int64_t>(std::numeric_limits<T>::max());
  if (!ok)
    throw nlohmann::json::type_error::create(302, fmt::format("{}: not an integer in range", field),
                                             &v);
  return v.is_number_unsigned() ? static_cast<T>(v.get<std::uint64_t>())
                                : static_cast<T>(v.get<std::int64_t>());
}

}  // namespace

TreeCounts Manifest::counts() const {
  TreeCounts c;
  c.files = files.size();
  for (const ManifestFile& f : files) c.bytes += f.size;
  c.directories = dir_entries.size();
  c.symlinks = symlink_entries.size();
  c.hardlinks = hardlink_entries.size();
  return c;
}

std::string Manifest::to_json() const {
  nlohmann::ordered_json j;
  j["ferry_manifest"] = version;
  j["tool"] = tool;
  j["kind"] = kind;
  j["source_prefix"] = source_prefix;
  j["python_version"] = python_version;
  j["placeholders"] = placeholders;
  j["warnings"] = warnings;
  auto& list = j["files"] = nlohmann::ordered_json::array();
  for (const ManifestFile& f : files)
    list.push_back({f.path, f.size, util::hex64(f.xxh3), f.placeholder, mode_name(f.mode), f.perm});
  auto& dirs = j["directories"] = nlohmann::ordered_json::array();
  for (const ManifestDir& d : dir_entries) dirs.push_back({d.path, d.perm});
  auto& symlink_list = j["symlinks"] = nlohmann::ordered_json::array();
  for (const ManifestLink& l : symlink_entries) symlink_list.push_back({l.path, l.target});
  auto& hardlink_list = j["hardlinks"] = nlohmann::ordered_json::array();
  for (const ManifestLink& l : hardlink_entries) hardlink_list.push_back({l.path, l.target});
  return j.dump(0) + "\n";
}

Manifest Manifest::parse(std::string_view text, const std::string& subject) {
  Manifest m;
  try {
    auto j = nlohmann::json::parse(text);
    m.version = integer<int>(j.at("ferry_manifest"), "ferry_manifest");
    if (m.version > k_version)
      throw Error(fmt::format("{}: manifest version {} is newer than this ferry understands",
                              subject, m.version));
    // Version 1 listed regular files only: nothing else in such an archive could be verified.
    if (m.version < k_version)
      throw Error(
          fmt::format("{}: packed by an older ferry (manifest version {}), whose archives "
                      "cannot be fully verified: pack it again",
                      subject, m.version));
    m.tool = j.value("tool", "");
    m.kind = j.at("kind").get<std::string>();
    m.source_prefix = j.at("source_prefix").get<std::string>();
    m.python_version = j.value("python_version", "");
    m.placeholders = j.at("placeholders").get<std::vector<std::string>>();
    for (const std::string& p : m.placeholders)
      if (p.empty())
        throw Error(fmt::format("{}: corrupted manifest: an empty placeholder", subject));
    m.warnings = j.value("warnings", std::vector<std::string>{});
    for (const auto& row : j.at("directories"))
      m.dir_entries.push_back({row.at(0).get<std::string>(),
                               integer<std::uint32_t>(row.at(1), "directory mode") & 07777});
    for (const auto& row : j.at("symlinks"))
      m.symlink_entries.push_back({row.at(0).get<std::string>(), row.at(1).get<std::string>()});
    for (const auto& row : j.at("hardlinks"))
      m.hardlink_entries.push_back({row.at(0).get<std::string>(), row.at(1).get<std::string>()});
    for (const auto& row : j.at("files")) {
      ManifestFile f;
      f.path = row.at(0).get<std::string>();
      f.size = integer<std::uint64_t>(row.at(1), "size");
      std::optional<std::uint64_t> xxh3 = util::parse_hex64(row.at(2).get<std::string>());
      if (!xxh3) throw Error(fmt::format("{}: corrupted manifest: bad checksum field", subject));
      f.xxh3 = *xxh3;
      f.placeholder = integer<std::int32_t>(row.at(3), "placeholder");
      f.perm = integer<std::uint32_t>(row.at(5), "mode") & 07777;
      std::string mode = row.at(4).get<std::string>();
      f.mode = mode == "text"     ? RelocMode::text
               : mode == "binary" ? RelocMode::binary
               : mode == "rpath"  ? RelocMode::rpath
                                  : RelocMode::none;
      if (f.placeholder >= static_cast<std::int32_t>(m.placeholders.size()) ||
          (f.placeholder >= 0 && f.mode == RelocMode::none))
        throw Error(fmt::format("{}: manifest entry for '{}' is inconsistent", subject, f.path));
      m.files.push_back(std::move(f));
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: corrupted manifest: {}", subject, e.what()));
  }
  m.m_stored_identity = util::xxh3(text);  // rather than writing it all out again (~5 ms)
  return m;
}

}  // namespace ferry::format
