// The manifest: JSON, with files as compact arrays [path, size, xxh3, placeholder, mode].
#include <iterator>
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

// The manifest's writer: a large env's manifest has 100k rows, which building a JSON tree first
// (nlohmann) took a tenth of a second for. Compact, one row per line.
class ManifestWriter {
 public:
  void string(std::string_view value) {
    if (!util::is_valid_utf8(value))
      throw Error(fmt::format("{}: a name that is not valid UTF-8 cannot go in the manifest",
                              util::printable(value)));
    m_out += '"';
    std::size_t plain = 0;  // the run of bytes that need no escape, appended at once
    for (std::size_t i = 0; i < value.size(); ++i) {
      auto c = static_cast<unsigned char>(value[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      m_out.append(value.substr(plain, i - plain));
      if (c == '"' || c == '\\') {
        m_out += '\\';
        m_out += static_cast<char>(c);
      } else {
        fmt::format_to(std::back_inserter(m_out), "\\u{:04x}", c);
      }
      plain = i + 1;
    }
    m_out.append(value.substr(plain));
    m_out += '"';
  }
  template <class T>
  void number(T value) {
    fmt::format_to(std::back_inserter(m_out), "{}", value);
  }
  void raw(std::string_view text) { m_out.append(text); }
  void key(std::string_view name) {
    m_out += m_first ? "{\n" : ",\n";
    m_first = false;
    string(name);
    m_out += ':';
  }
  // "name":[ rows ], each row written by row(item), one per line.
  template <class List, class Row>
  void rows(std::string_view name, const List& list, Row row) {
    key(name);
    m_out += '[';
    for (std::size_t i = 0; i < list.size(); ++i) {
      m_out += i ? ",\n[" : "\n[";
      row(list[i]);
      m_out += ']';
    }
    m_out += ']';
  }
  std::string finish() {
    m_out += "\n}\n";
    return std::move(m_out);
  }

 private:
  std::string m_out;
  bool m_first = true;
};

std::string Manifest::to_json() const {
  ManifestWriter w;
  auto strings = [&](std::string_view name, const std::vector<std::string>& list) {
    w.key(name);
    w.raw("[");
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (i) w.raw(",");
      w.string(list[i]);
    }
    w.raw("]");
  };
  w.key("ferry_manifest");
  w.number(version);
  w.key("tool");
  w.string(tool);
  w.key("kind");
  w.string(kind);
  w.key("source_prefix");
  w.string(source_prefix);
  w.key("python_version");
  w.string(python_version);
  strings("placeholders", placeholders);
  strings("warnings", warnings);
  w.rows("files", files, [&](const ManifestFile& f) {
    w.string(f.path);
    w.raw(",");
    w.number(f.size);
    w.raw(",\"");
    w.raw(util::hex64(f.xxh3));
    w.raw("\",");
    w.number(f.placeholder);
    w.raw(",\"");
    w.raw(mode_name(f.mode));
    w.raw("\",");
    w.number(f.perm);
  });
  w.rows("directories", dir_entries, [&](const ManifestDir& d) {
    w.string(d.path);
    w.raw(",");
    w.number(d.perm);
  });
  auto link = [&](const ManifestLink& l) {
    w.string(l.path);
    w.raw(",");
    w.string(l.target);
  };
  w.rows("symlinks", symlink_entries, link);
  w.rows("hardlinks", hardlink_entries, link);
  return w.finish();
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
