// Independent compressed frames: zstd with a seekable-format seek table, or gzip members that
// carry their own length (FEXTRA subfield "FY").
#include <libdeflate.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "format/format.hpp"

namespace ferry::format {
namespace {

constexpr std::uint32_t k_zstd_magic = 0xFD2FB528;
constexpr std::uint32_t k_skippable_seek_magic = 0x184D2A5E;
constexpr std::uint32_t k_skippable_pad_magic = 0x184D2A50;
constexpr std::uint32_t k_seekable_magic = 0x8F92EAB1;
constexpr std::size_t k_seek_footer = 9;
constexpr std::size_t k_gzip_header = 20;  // fixed 10, XLEN 2, "FY" 2, length 2, size 4

std::uint32_t load_le32(const char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;  // x86-64 and aarch64 builds are little-endian
}
void store_le32(std::string& out, std::uint32_t v) { out.append(reinterpret_cast<char*>(&v), 4); }
void store_le16(std::string& out, std::uint16_t v) { out.append(reinterpret_cast<char*>(&v), 2); }

struct ZstdCCtx {
  ZSTD_CCtx* ctx = ZSTD_createCCtx();
  int level = -1000;
  ~ZstdCCtx() { ZSTD_freeCCtx(ctx); }
};
struct ZstdDCtx {
  ZSTD_DCtx* ctx = ZSTD_createDCtx();
  ~ZstdDCtx() { ZSTD_freeDCtx(ctx); }
};
struct DeflateCompressor {
  libdeflate_compressor* ctx = nullptr;
  int level = -1;
  ~DeflateCompressor() {
    if (ctx) libdeflate_free_compressor(ctx);
  }
};
struct DeflateDecompressor {
  libdeflate_decompressor* ctx = libdeflate_alloc_decompressor();
  ~DeflateDecompressor() { libdeflate_free_decompressor(ctx); }
};

std::string zstd_frame(int level, std::string_view data) {
  thread_local ZstdCCtx cctx;
  if (cctx.level != level) {
    ZSTD_CCtx_reset(cctx.ctx, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(cctx.ctx, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cctx.ctx, ZSTD_c_checksumFlag, 1);
    // Matches may reach back to the frame's start; zstd's own windows for the fast levels are
    // smaller than a frame (and it shrinks this one for a smaller frame).
    ZSTD_CCtx_setParameter(cctx.ctx, ZSTD_c_windowLog, k_frame_window_log);
    cctx.level = level;
  }
  // Into a buffer kept per thread, so that the worst case's room is not cleared for every frame.
  thread_local std::string room;
  if (room.size() < ZSTD_compressBound(data.size())) room.resize(ZSTD_compressBound(data.size()));
  std::size_t n = ZSTD_compress2(cctx.ctx, room.data(), room.size(), data.data(), data.size());
  if (ZSTD_isError(n)) throw Error(fmt::format("zstd: {}", ZSTD_getErrorName(n)));
  return room.substr(0, n);
}

// A gzip member: header with FEXTRA "FY" (4-byte total member length), raw deflate, CRC32, ISIZE.
std::string gzip_member(int level, std::string_view data) {
  thread_local DeflateCompressor comp;
  if (comp.level != level) {
    if (comp.ctx) libdeflate_free_compressor(comp.ctx);
    comp.ctx = libdeflate_alloc_compressor(level);
    if (!comp.ctx) throw Error(fmt::format("gzip: invalid level {}", level));
    comp.level = level;
  }
  std::string out;
  const char fixed[10] = {'\x1f', '\x8b', 8, 4 /*FEXTRA*/, 0, 0, 0, 0, 0, 3 /*unix*/};
  out.append(fixed, 10);
  store_le16(out, 8);  // XLEN: one subfield of 4 + 4 bytes
  out.append("FY", 2);
  store_le16(out, 4);
  store_le32(out, 0);  // member length, filled below
  std::size_t header = out.size();
  out.resize(header + libdeflate_deflate_compress_bound(comp.ctx, data.size()));
  std::size_t n = libdeflate_deflate_compress(comp.ctx, data.data(), data.size(),
                                              out.data() + header, out.size() - header);
  if (n == 0) throw Error("gzip: compression failed");
  out.resize(header + n);
  store_le32(out, libdeflate_crc32(0, data.data(), data.size()));
  store_le32(out, static_cast<std::uint32_t>(data.size()));
  auto total = static_cast<std::uint32_t>(out.size());
  std::memcpy(out.data() + 16, &total, 4);
  return out;
}

void check_claims(const FrameIndexEntry& f, const std::string& subject) {
  if (f.decompressed_size > k_frame_max || f.compressed_size > max_compressed_frame())
    throw Error(
        fmt::format("{}: frame at byte {} claims {} bytes ({} compressed); ferry frames hold "
                    "at most {} (corrupted archive)",
                    subject, f.offset, f.decompressed_size, f.compressed_size, k_frame_max));
}

}  // namespace

std::size_t max_compressed_frame() {
  static const std::size_t bound =
      std::max<std::size_t>(ZSTD_compressBound(k_frame_max), k_frame_max + k_frame_max / 64 + 1024);
  return bound;
}

std::vector<CompressedFrame> compress_chunk(Codec codec, int level, std::string_view chunk) {
  std::vector<CompressedFrame> frames;
  do {
    std::string_view piece = chunk.substr(0, k_frame_max);
    chunk.remove_prefix(piece.size());
    CompressedFrame f;
    f.bytes = codec == Codec::zstd ? zstd_frame(level, piece) : gzip_member(level, piece);
    f.decompressed_size = static_cast<std::uint32_t>(piece.size());
    frames.push_back(std::move(f));
  } while (!chunk.empty());
  return frames;
}

std::string zstd_padding(std::size_t bytes) {
  if (bytes < 8 || bytes - 8 > std::numeric_limits<std::uint32_t>::max())
    throw Error(fmt::format("zstd: no skippable frame is {} bytes long", bytes));
  std::string out;
  store_le32(out, k_skippable_pad_magic);
  store_le32(out, static_cast<std::uint32_t>(bytes - 8));
  out.resize(bytes, '\0');
  return out;
}

std::string frames_trailer(Codec codec, const std::vector<std::uint32_t>& compressed_sizes,
                           const std::vector<std::uint32_t>& decompressed_sizes) {
  if (codec == Codec::gzip) return {};
  std::string out;
  store_le32(out, k_skippable_seek_magic);
  store_le32(out, static_cast<std::uint32_t>(compressed_sizes.size() * 8 + k_seek_footer));
  for (std::size_t i = 0; i < compressed_sizes.size(); ++i) {
    store_le32(out, compressed_sizes[i]);
    store_le32(out, decompressed_sizes[i]);
  }
  store_le32(out, static_cast<std::uint32_t>(compressed_sizes.size()));
  out.push_back('\0');  // descriptor: no per-frame checksums (zstd frames carry their own)
  store_le32(out, k_seekable_magic);
  return out;
}

std::optional<Codec> compression_of(std::string_view first_bytes) {
  if (first_bytes.size() >= 2 && first_bytes[0] == '\x1f' && first_bytes[1] == '\x8b')
    return Codec::gzip;
  if (first_bytes.size() >= 4 && load_le32(first_bytes.data()) == k_zstd_magic) return Codec::zstd;
  return std::nullopt;
}

FrameIndex index_frames(std::string_view a, const std::string& subject) {
  FrameIndex index;
  if (a.size() >= 4 + k_seek_footer && load_le32(a.data()) == k_zstd_magic &&
      load_le32(a.data() + a.size() - 4) == k_seekable_magic) {
    std::uint32_t count = load_le32(a.data() + a.size() - k_seek_footer);
    auto descriptor = static_cast<unsigned char>(a[a.size() - 5]);
    std::size_t entry_size = (descriptor & 0x80) ? 12 : 8;
    std::uint64_t table = static_cast<std::uint64_t>(count) * entry_size + k_seek_footer + 8;
    if (table > a.size())
      throw Error(fmt::format("{}: corrupted seek table (archive truncated?)", subject));
    const char* entries = a.data() + a.size() - table + 8;
    if (load_le32(entries - 8) != k_skippable_seek_magic)
      throw Error(fmt::format("{}: corrupted seek table", subject));
    std::uint64_t offset = 0;
    index.frames.reserve(count);  // count * entry_size fits in the file: checked above
    for (std::uint32_t i = 0; i < count; ++i) {
      FrameIndexEntry f;
      f.offset = offset;
      f.compressed_size = load_le32(entries + i * entry_size);
      f.decompressed_size = load_le32(entries + i * entry_size + 4);
      check_claims(f, subject);
      offset += f.compressed_size;
      index.frames.push_back(f);
    }
    if (offset + table != a.size())
      throw Error(
          fmt::format("{}: seek table does not match the file size (truncated or "
                      "corrupted archive)",
                      subject));
    index.layout = ArchiveLayout::ferry_zstd;
    return index;
  }
  auto is_ferry_gzip = [&](std::uint64_t at) {
    return at + k_gzip_header <= a.size() && a[at] == '\x1f' && a[at + 1] == '\x8b' &&
           (a[at + 3] & 4) && a[at + 12] == 'F' && a[at + 13] == 'Y';
  };
  if (is_ferry_gzip(0)) {
    std::uint64_t offset = 0;
    while (offset < a.size()) {
      if (!is_ferry_gzip(offset))
        throw Error(fmt::format("{}: corrupted gzip member at byte {}", subject, offset));
      FrameIndexEntry f;
      f.offset = offset;
      f.compressed_size = load_le32(a.data() + offset + 16);
      if (f.compressed_size < k_gzip_header + 8 || offset + f.compressed_size > a.size())
        throw Error(
            fmt::format("{}: archive is truncated (gzip member at byte {})", subject, offset));
      f.decompressed_size = load_le32(a.data() + offset + f.compressed_size - 4);
      check_claims(f, subject);
      offset += f.compressed_size;
      index.frames.push_back(f);
    }
    index.layout = ArchiveLayout::ferry_gzip;
  }
  return index;
}

void decompress_frame_into(ArchiveLayout layout, std::string_view src, const FrameIndexEntry& f,
                           const std::string& subject, char* out) {
  if (layout == ArchiveLayout::ferry_zstd) {
    thread_local ZstdDCtx dctx;
    std::size_t n = ZSTD_decompressDCtx(dctx.ctx, out, f.decompressed_size, src.data(), src.size());
    if (ZSTD_isError(n) || n != f.decompressed_size)
      throw Error(fmt::format("{}: corrupted data in frame at byte {}: {}", subject, f.offset,
                              ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong size"));
    return;
  }
  thread_local DeflateDecompressor dd;
  std::size_t actual = 0;
  auto rc =
      libdeflate_gzip_decompress(dd.ctx, src.data(), src.size(), out, f.decompressed_size, &actual);
  if (rc != LIBDEFLATE_SUCCESS || actual != f.decompressed_size)
    throw Error(fmt::format("{}: corrupted data in gzip member at byte {}", subject, f.offset));
}

std::string decompress_frame(ArchiveLayout layout, std::string_view a, const FrameIndexEntry& f,
                             const std::string& subject) {
  std::string out(f.decompressed_size, '\0');
  decompress_frame_into(layout, a.substr(f.offset, f.compressed_size), f, subject, out.data());
  return out;
}

}  // namespace ferry::format
