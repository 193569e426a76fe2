// The manifest: JSON, with files as compact arrays [path, size, xxh3, placeholder, mode].
#include <iterator>
#include <limits>
#include <optional>

#include <simdjson.h>

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
// The manifest is read with simdjson: a large env's runs to megabytes, which building a tree of
// (nlohmann) took most of a stage's start on a node for. Every value is checked for its type and
// range: the manifest is as untrusted as the archive.
using Json = simdjson::dom::element;

class ManifestReader {
 public:
  explicit ManifestReader(const std::string& subject) : m_subject(subject) {}
  [[noreturn]] void corrupted(std::string_view what) const {
    throw Error(fmt::format("{}: corrupted manifest: {}", m_subject, what));
  }
  Json field(Json object, const char* key) const {
    Json value;
    if (object[key].get(value)) corrupted(fmt::format("no \"{}\"", key));
    return value;
  }
  std::optional<Json> optional(Json object, const char* key) const {
    Json value;
    if (object[key].get(value)) return std::nullopt;
    return value;
  }
  std::string string(Json value, std::string_view what) const {
    std::string_view text;
    if (value.get_string().get(text)) corrupted(fmt::format("{} is not a string", what));
    return std::string(text);
  }
  simdjson::dom::array array(Json value, std::string_view what) const {
    simdjson::dom::array list;
    if (value.get_array().get(list)) corrupted(fmt::format("{} is not a list", what));
    return list;
  }
  Json at(simdjson::dom::array row, std::size_t i, std::string_view what) const {
    Json value;
    if (row.at(i).get(value)) corrupted(fmt::format("{} has no field {}", what, i));
    return value;
  }
  std::vector<std::string> strings(Json value, std::string_view what) const {
    std::vector<std::string> out;
    for (Json item : array(value, what)) out.push_back(string(item, what));
    return out;
  }
  // A JSON number as an integer of type T: a float or an out-of-range value is corrupted.
  template <typename T>
  T integer(Json value, std::string_view what) const {
    std::int64_t i = 0;
    std::uint64_t u = 0;
    if (!value.get_int64().get(i)) {
      if (i >= static_cast<std::int64_t>(std::numeric_limits<T>::min()) &&
          (i < 0 || static_cast<std::uint64_t>(i) <=
                        static_cast<std::uint64_t>(std::numeric_limits<T>::max())))
        return static_cast<T>(i);
    } else if (!value.get_uint64().get(u)) {
      if (u <= static_cast<std::uint64_t>(std::numeric_limits<T>::max())) return static_cast<T>(u);
    }
    corrupted(fmt::format("{}: not an integer in range", what));
  }

 private:
  const std::string& m_subject;
};

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
    util::append_json_string(m_out, value);
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
  ManifestReader r(subject);
  simdjson::dom::parser parser;  // its memory freed with it: nothing below keeps a view into it
  Json j;
  if (auto error = parser.parse(text.data(), text.size()).get(j))
    r.corrupted(simdjson::error_message(error));
  if (!j.is_object()) r.corrupted("not a JSON object");
  m.version = r.integer<int>(r.field(j, "ferry_manifest"), "ferry_manifest");
  if (m.version > k_version)
    throw Error(fmt::format("{}: manifest version {} is newer than this ferry understands", subject,
                            m.version));
  // Version 1 listed regular files only: nothing else in such an archive could be verified.
  if (m.version < k_version)
    throw Error(
        fmt::format("{}: packed by an older ferry (manifest version {}), whose archives "
                    "cannot be fully verified: pack it again",
                    subject, m.version));
  if (auto tool = r.optional(j, "tool")) m.tool = r.string(*tool, "tool");
  m.kind = r.string(r.field(j, "kind"), "kind");
  m.source_prefix = r.string(r.field(j, "source_prefix"), "source_prefix");
  if (auto python = r.optional(j, "python_version"))
    m.python_version = r.string(*python, "python_version");
  m.placeholders = r.strings(r.field(j, "placeholders"), "placeholders");
  for (const std::string& p : m.placeholders)
    if (p.empty())
      throw Error(fmt::format("{}: corrupted manifest: an empty placeholder", subject));
  if (auto warnings = r.optional(j, "warnings")) m.warnings = r.strings(*warnings, "warnings");
  for (Json row : r.array(r.field(j, "directories"), "directories")) {
    simdjson::dom::array d = r.array(row, "a directory");
    m.dir_entries.push_back(
        {r.string(r.at(d, 0, "a directory"), "a directory's path"),
         r.integer<std::uint32_t>(r.at(d, 1, "a directory"), "directory mode") & 07777});
  }
  for (const char* kind : {"symlinks", "hardlinks"})
    for (Json row : r.array(r.field(j, kind), kind)) {
      simdjson::dom::array l = r.array(row, kind);
      (kind[0] == 's' ? m.symlink_entries : m.hardlink_entries)
          .push_back({r.string(r.at(l, 0, kind), "a link's path"),
                      r.string(r.at(l, 1, kind), "a link's target")});
    }
  simdjson::dom::array files = r.array(r.field(j, "files"), "files");
  m.files.reserve(files.size());
  for (Json row : files) {
    simdjson::dom::array f_row = r.array(row, "a file");
    ManifestFile f;
    f.path = r.string(r.at(f_row, 0, "a file"), "a file's path");
    f.size = r.integer<std::uint64_t>(r.at(f_row, 1, "a file"), "size");
    std::optional<std::uint64_t> xxh3 =
        util::parse_hex64(r.string(r.at(f_row, 2, "a file"), "a checksum"));
    if (!xxh3) throw Error(fmt::format("{}: corrupted manifest: bad checksum field", subject));
    f.xxh3 = *xxh3;
    f.placeholder = r.integer<std::int32_t>(r.at(f_row, 3, "a file"), "placeholder");
    f.perm = r.integer<std::uint32_t>(r.at(f_row, 5, "a file"), "mode") & 07777;
    std::string mode = r.string(r.at(f_row, 4, "a file"), "a relocation mode");
    f.mode = mode == "text"     ? RelocMode::text
             : mode == "binary" ? RelocMode::binary
             : mode == "rpath"  ? RelocMode::rpath
                                : RelocMode::none;
    if (f.placeholder >= static_cast<std::int32_t>(m.placeholders.size()) ||
        (f.placeholder >= 0 && f.mode == RelocMode::none))
      throw Error(fmt::format("{}: manifest entry for '{}' is inconsistent", subject, f.path));
    m.files.push_back(std::move(f));
  }
  m.m_stored_identity = util::xxh3(text);  // rather than writing it all out again (~5 ms)
  return m;
}

}  // namespace ferry::format
