// The manifest: JSON, with files as compact arrays [path, size, xxh3, placeholder, mode].
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
}  // namespace

std::string Manifest::to_json() const {
  nlohmann::ordered_json j;
  j["ferry_manifest"] = version;
  j["tool"] = tool;
  j["kind"] = kind;
  j["source_prefix"] = source_prefix;
  j["python_version"] = python_version;
  j["placeholders"] = placeholders;
  j["symlinks"] = symlinks;
  j["hardlinks"] = hardlinks;
  j["directories"] = directories;
  j["warnings"] = warnings;
  auto& list = j["files"] = nlohmann::ordered_json::array();
  for (const ManifestFile& f : files) {
    list.push_back({f.path, f.size, util::hex64(f.xxh3), f.placeholder, mode_name(f.mode)});
  }
  return j.dump(0) + "\n";
}

Manifest Manifest::parse(std::string_view text, const std::string& subject) {
  Manifest m;
  try {
    auto j = nlohmann::json::parse(text);
    m.version = j.at("ferry_manifest").get<int>();
    if (m.version != 1)
      throw Error(fmt::format("{}: manifest version {} is newer than this ferry understands",
                              subject, m.version));
    m.tool = j.value("tool", "");
    m.kind = j.at("kind").get<std::string>();
    m.source_prefix = j.at("source_prefix").get<std::string>();
    m.python_version = j.value("python_version", "");
    m.placeholders = j.at("placeholders").get<std::vector<std::string>>();
    m.symlinks = j.value("symlinks", 0ULL);
    m.hardlinks = j.value("hardlinks", 0ULL);
    m.directories = j.value("directories", 0ULL);
    m.warnings = j.value("warnings", std::vector<std::string>{});
    for (const auto& row : j.at("files")) {
      ManifestFile f;
      f.path = row.at(0).get<std::string>();
      f.size = row.at(1).get<std::uint64_t>();
      f.xxh3 = std::stoull(row.at(2).get<std::string>(), nullptr, 16);
      f.placeholder = row.at(3).get<std::int32_t>();
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
  } catch (const std::invalid_argument&) {
    throw Error(fmt::format("{}: corrupted manifest: bad checksum field", subject));
  } catch (const std::out_of_range&) {
    throw Error(fmt::format("{}: corrupted manifest: bad checksum field", subject));
  }
  m.m_stored_identity = util::xxh3(text);  // rather than writing it all out again (~5 ms)
  return m;
}

}  // namespace ferry::format
