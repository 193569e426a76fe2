// Just enough ELF to find the library search paths (DT_RPATH, DT_RUNPATH) of a 64-bit LE file,
// from bytes in memory or, for files too large to hold, through pread.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "env/env.hpp"

namespace ferry::env::relocation {
namespace {

// The file's bytes in memory.
struct MemoryBytes {
  std::string_view d;
  std::uint64_t size() const { return d.size(); }
  bool read(std::uint64_t off, void* out, std::size_t n) const {
    if (off > d.size() || d.size() - off < n) return false;
    std::memcpy(out, d.data() + off, n);
    return true;
  }
  std::optional<std::uint64_t> find_nul(std::uint64_t from) const {
    std::size_t nul = d.find('\0', static_cast<std::size_t>(from));
    return nul == std::string_view::npos ? std::nullopt : std::optional<std::uint64_t>(nul);
  }
};

// The file's bytes through pread: a search path is short, so the NUL is looked for in a bounded
// window (a longer string is no search path ferry rewrites).
struct FileBytes {
  int fd;
  std::uint64_t bytes;
  std::uint64_t size() const { return bytes; }
  bool read(std::uint64_t off, void* out, std::size_t n) const {
    if (off > bytes || bytes - off < n) return false;
    return ::pread(fd, out, n, static_cast<off_t>(off)) == static_cast<ssize_t>(n);
  }
  std::optional<std::uint64_t> find_nul(std::uint64_t from) const {
    char window[1 << 16];
    if (from >= bytes) return std::nullopt;
    auto n = static_cast<std::size_t>(std::min<std::uint64_t>(sizeof window, bytes - from));
    if (!read(from, window, n)) return std::nullopt;
    const void* nul = std::memchr(window, '\0', n);
    if (!nul) return std::nullopt;
    return from + static_cast<std::uint64_t>(static_cast<const char*>(nul) - window);
  }
};

template <typename Bytes, typename T>
bool load(const Bytes& d, std::uint64_t off, T& out) {
  return d.read(off, &out, sizeof(T));
}

template <typename Bytes>
std::vector<std::pair<std::uint64_t, std::uint64_t>> search_paths(const Bytes& d) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  char ident[6];
  if (d.size() < 64 || !d.read(0, ident, sizeof ident) ||
      std::memcmp(ident,
                  "\x7f"
                  "ELF",
                  4) != 0 ||
      ident[4] != 2 /*64-bit*/ || ident[5] != 1 /*LE*/)
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
  // A real dynamic section has a few dozen entries and at most one DT_RPATH and one DT_RUNPATH:
  // a crafted one cannot make this read or keep more than these bounds.
  constexpr std::uint64_t k_max_entries = 4096;
  constexpr std::size_t k_max_paths = 8;
  std::vector<std::uint64_t> paths;
  std::uint64_t end =
      dynamic->offset + std::min<std::uint64_t>(dynamic->filesz, k_max_entries * 16);
  for (std::uint64_t at = dynamic->offset; at + 16 <= end; at += 16) {
    std::int64_t tag = 0;
    std::uint64_t val = 0;
    if (!load(d, at, tag) || !load(d, at + 8, val)) return out;
    if (tag == 0) break;
    if (tag == 5) strtab_vaddr = val;  // DT_STRTAB
    if ((tag == 15 || tag == 29) && paths.size() < k_max_paths &&
        std::find(paths.begin(), paths.end(), val) == paths.end())
      paths.push_back(val);  // DT_RPATH, DT_RUNPATH
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
    auto nul = d.find_nul(begin);
    if (!nul) continue;
    out.emplace_back(begin, *nul);
  }
  return out;
}

}  // namespace

std::vector<std::pair<std::size_t, std::size_t>> elf_search_paths(std::string_view d) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  for (auto [begin, end] : search_paths(MemoryBytes{d}))
    out.emplace_back(static_cast<std::size_t>(begin), static_cast<std::size_t>(end));
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

std::vector<std::pair<std::uint64_t, std::uint64_t>> elf_search_paths_in_file(int fd) {
  off_t size = ::lseek(fd, 0, SEEK_END);
  if (size < 0) return {};
  return search_paths(FileBytes{fd, static_cast<std::uint64_t>(size)});
}

BinaryResult search_path_patches(int fd, std::string_view from, std::string_view to,
                                 const std::string& subject,
                                 std::vector<std::pair<std::uint64_t, std::string>>& patches) {
  off_t size = ::lseek(fd, 0, SEEK_END);
  if (size < 0) util::throw_errno(subject, "cannot read", errno);
  FileBytes bytes{fd, static_cast<std::uint64_t>(size)};
  for (auto [begin, end] : search_paths(bytes)) {
    std::string cstring(static_cast<std::size_t>(end - begin + 1), '\0');  // with its NUL
    if (!bytes.read(begin, cstring.data(), cstring.size()))
      util::throw_errno(subject, "cannot read", errno);
    std::string replaced;
    BinaryResult r = replace_binary(cstring, from, to, replaced);
    if (r == BinaryResult::too_long) return r;
    if (r == BinaryResult::replaced) patches.emplace_back(begin, std::move(replaced));
  }
  return patches.empty() ? BinaryResult::unchanged : BinaryResult::replaced;
}

BinaryResult replace_search_paths_in_file(int fd, std::string_view from, std::string_view to,
                                          const std::string& subject) {
  std::vector<std::pair<std::uint64_t, std::string>> patches;  // all checked before any is made
  BinaryResult result = search_path_patches(fd, from, to, subject, patches);
  if (result == BinaryResult::too_long) return result;
  for (const auto& [at, text] : patches)
    if (::pwrite(fd, text.data(), text.size(), static_cast<off_t>(at)) !=
        static_cast<ssize_t>(text.size()))
      util::throw_errno(subject, "cannot rewrite", errno ? errno : ENOSPC);
  return result;
}

}  // namespace ferry::env::relocation
