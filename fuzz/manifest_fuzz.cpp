// libFuzzer target for the manifest parser (an archive's first member, untrusted JSON): garbage
// must raise Error, and whatever parse accepts must be what the rest of ferry relies on (every
// placeholder index in range) and must survive to_json() and a second parse unchanged.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "format/format.hpp"

namespace {
using ferry::format::Manifest;

bool same(const Manifest& a, const Manifest& b) {
  if (a.kind != b.kind || a.source_prefix != b.source_prefix || a.placeholders != b.placeholders ||
      a.files.size() != b.files.size() || a.warnings != b.warnings || a.counts() != b.counts())
    return false;
  for (std::size_t i = 0; i < a.files.size(); ++i) {
    const auto &x = a.files[i], &y = b.files[i];
    if (x.path != y.path || x.size != y.size || x.xxh3 != y.xxh3 ||
        x.placeholder != y.placeholder || x.mode != y.mode || x.perm != y.perm)
      return false;
  }
  auto same_links = [](const auto& p, const auto& q) {
    return std::equal(p.begin(), p.end(), q.begin(), q.end(), [](const auto& x, const auto& y) {
      return x.path == y.path && x.target == y.target;
    });
  };
  auto same_dir = [](const auto& x, const auto& y) { return x.path == y.path && x.perm == y.perm; };
  return std::equal(a.dir_entries.begin(), a.dir_entries.end(), b.dir_entries.begin(),
                    b.dir_entries.end(), same_dir) &&
         same_links(a.symlink_entries, b.symlink_entries) &&
         same_links(a.hardlink_entries, b.hardlink_entries);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  Manifest m;
  try {
    m = Manifest::parse(json, "fuzz");
  } catch (const ferry::Error&) {
    return 0;
  }
  for (const auto& f : m.files)
    if (f.placeholder >= static_cast<std::int32_t>(m.placeholders.size()) ||
        (f.placeholder >= 0 && f.mode == ferry::format::RelocMode::none))
      std::abort();                 // unpack indexes placeholders with it
  std::string again = m.to_json();  // throws (a crash here) if parse kept something unwritable
  if (!same(m, Manifest::parse(again, "fuzz again"))) std::abort();
  return 0;
}
