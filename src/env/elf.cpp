// Just enough ELF to find the library search paths (DT_RPATH, DT_RUNPATH) of a 64-bit LE file.
#include <cstring>

#include "env/env.hpp"

namespace ferry::env::relocation {
namespace {

template <typename T>
bool load(std::string_view d, std::uint64_t off, T& out) {
  if (off > d.size() || d.size() - off < sizeof(T)) return false;
  std::memcpy(&out, d.data() + off, sizeof(T));
  return true;
}

}  // namespace

std::vector<std::pair<std::size_t, std::size_t>> elf_search_paths(std::string_view d) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  if (d.size() < 64 || d.substr(0, 4) != "\x7f" "ELF" || d[4] != 2 /*64-bit*/ || d[5] != 1 /*LE*/)
    return out;
  std::uint64_t phoff = 0;
  std::uint16_t phentsize = 0, phnum = 0;
  if (!load(d, 0x20, phoff) || !load(d, 0x36, phentsize) || !load(d, 0x38, phnum) || phentsize < 56)
    return out;
  struct Segment {
    std::uint64_t offset, vaddr, filesz;
  };
  std::vector<Segment> loads;
  std::optional<Segment> dynamic;
  for (std::uint16_t i = 0; i < phnum; ++i) {
    std::uint64_t at = phoff + std::uint64_t{i} * phentsize;
    std::uint32_t type = 0;
    Segment s{};
    if (!load(d, at, type) || !load(d, at + 8, s.offset) || !load(d, at + 16, s.vaddr) ||
        !load(d, at + 32, s.filesz))
      return out;
    if (type == 1) loads.push_back(s);
    if (type == 2) dynamic = s;
  }
  if (!dynamic) return out;
  std::uint64_t strtab_vaddr = 0;
  std::vector<std::uint64_t> paths;
  for (std::uint64_t at = dynamic->offset; at + 16 <= dynamic->offset + dynamic->filesz; at += 16) {
    std::int64_t tag = 0;
    std::uint64_t val = 0;
    if (!load(d, at, tag) || !load(d, at + 8, val)) return out;
    if (tag == 0) break;
    if (tag == 5) strtab_vaddr = val;              // DT_STRTAB
    if (tag == 15 || tag == 29) paths.push_back(val);  // DT_RPATH, DT_RUNPATH
  }
  if (paths.empty()) return out;
  std::optional<std::uint64_t> strtab;
  for (const Segment& s : loads)
    if (strtab_vaddr >= s.vaddr && strtab_vaddr < s.vaddr + s.filesz)
      strtab = strtab_vaddr - s.vaddr + s.offset;
  if (!strtab) return out;
  for (std::uint64_t p : paths) {
    std::uint64_t begin = *strtab + p;
    if (begin >= d.size()) continue;
    std::size_t nul = d.find('\0', begin);
    if (nul == std::string_view::npos) continue;
    out.emplace_back(static_cast<std::size_t>(begin), nul);
  }
  return out;
}

BinaryResult replace_search_paths(std::string_view data, std::string_view from, std::string_view to,
                                  std::string& out) {
  BinaryResult result = BinaryResult::unchanged;
  for (auto [begin, end] : elf_search_paths(data)) {
    std::string_view cstring = data.substr(begin, end - begin + 1);  // with its NUL
    std::string replaced;
    BinaryResult r = replace_binary(cstring, from, to, replaced);
    if (r == BinaryResult::too_long) return r;
    if (r == BinaryResult::unchanged) continue;
    if (result == BinaryResult::unchanged) out.assign(data);
    out.replace(begin, replaced.size(), replaced);  // same length: the padding fills the gap
    result = BinaryResult::replaced;
  }
  return result;
}

}  // namespace ferry::env::relocation
