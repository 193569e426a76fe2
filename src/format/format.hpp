// ferry::format — archives: tar members, compressed frames, the manifest, and safe extraction.
// Built on util only; knows nothing of Python environments (relocation arrives as a hook).
//
// A ferry archive is a POSIX pax tar stream cut, at member boundaries where possible, into
// independent compressed frames:
//   * tar.zst: zstd frames followed by a zstd seekable-format seek table (a skippable frame), so
//     `tar --zstd -xf` reads it and ferry decodes frames in parallel;
//   * tar.gz: gzip members, each carrying its own length in an FEXTRA subfield "FY" (as BGZF does),
//     so `tar -xzf` reads it and ferry inflates members in parallel.
// The first member is .ferry/manifest.json (see Manifest).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "util/util.hpp"

namespace ferry::format {

enum class EntryType : std::uint8_t { file, directory, symlink, hardlink };

struct Entry {
  std::string path;  // relative, '/'-separated, as stored
  EntryType type = EntryType::file;
  std::uint32_t mode = 0644;  // permission bits (and setuid/setgid/sticky as stored)
  std::int64_t mtime_sec = 0;
  std::uint32_t mtime_nsec = 0;
  std::string link;  // symlink target, or the member a hardlink names
  std::uint64_t size = 0;
};

// What a tree holds, as pack, extraction and inspect count it: regular files (a hardlink is not
// one) and their bytes, directories, symlinks, hardlinks. Results that report a tree derive from
// it, so the counts are their own fields (in code and in their JSON forms alike).
struct TreeCounts {
  std::uint64_t files = 0, directories = 0, symlinks = 0, hardlinks = 0, bytes = 0;
  bool operator==(const TreeCounts&) const = default;
  // The counts alone, of a result that derives from them: result.counts() = stats.counts().
  TreeCounts& counts() { return *this; }
  const TreeCounts& counts() const { return *this; }
};

// Files larger than this are never held whole: they arrive as pieces (about a frame each) that
// flow to their file in order, so memory does not grow with a member's size.
constexpr std::uint64_t k_stream_min = 4u << 20;

// A parsed member with its data. data stays valid while storage lives (a decoded frame, a string).
// A file larger than k_stream_min comes as several Members in a row, streamed: each holds the
// entry and the piece of data at offset; last marks the final piece.
struct Member {
  Entry entry;
  std::string_view data;
  std::shared_ptr<const void> storage;
  std::uint64_t offset = 0;
  bool streamed = false;
  bool last = true;
};

// Verification and relocation of a streamed file, fed its pieces in order.
class MemberFilter {
 public:
  virtual ~MemberFilter() = default;
  // The next piece: returns false to write it unchanged, or true when out (cleared by the caller)
  // holds what to write instead (possibly nothing yet).
  virtual bool feed(std::string_view piece, std::string& out) = 0;
  // After the last piece: appends what is still held back to out; throws if the data was wrong.
  virtual void finish(std::string& out) = 0;
  // Once everything is written: a last change in place through fd (pread/pwrite), if any.
  virtual void patch(int /*fd*/) {}
};

// ---------------------------------------------------------------------------------------------
// Tar encoding (libarchive, pax format). Not thread-safe: one encoder per stream.
class TarEncoder {
 public:
  TarEncoder();
  ~TarEncoder();
  TarEncoder(const TarEncoder&) = delete;
  TarEncoder& operator=(const TarEncoder&) = delete;
  // Appends the member's header, data and padding to out.
  void add(const Entry& entry, std::string_view data, std::string& out);
  // A file too large to hold, in pieces: begin_file (header), file_data (each piece, in order,
  // size bytes in all), end_file (padding). Each appends to out.
  void begin_file(const Entry& entry, std::uint64_t size, std::string& out);
  void file_data(std::string_view piece, std::string& out);
  void end_file(std::string& out);
  // Appends the end-of-archive blocks to out.
  void finish(std::string& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

// Tar decoding: an incremental parser that accepts the stream in arbitrary chunks (frames, network
// chunks) and yields whole members. Data inside one chunk is not copied. Untrusted input: malformed
// headers raise Error naming the offending member or offset.
class TarParser {
 public:
  explicit TarParser(std::string subject) : m_subject(std::move(subject)) {}
  // bytes stay valid while owner lives; members that lie whole inside them keep owner.
  void feed(std::string_view bytes, const std::shared_ptr<const void>& owner,
            std::vector<Member>& out);
  void feed(const std::shared_ptr<const std::string>& chunk, std::vector<Member>& out) {
    feed(*chunk, chunk, out);
  }
  bool at_end() const { return m_end; }
  // Throws if the stream stopped inside a member or before the end-of-archive marker.
  void finish() const;

 private:
  enum class State { header, payload };
  enum class Payload { file, skip, pax, gnu_name, gnu_link };
  void parse_header(const char* block, std::vector<Member>& out);
  void complete_payload(std::vector<Member>& out);
  void parse_pax(std::string_view records);

  std::string m_subject;
  State m_state = State::header;
  Payload m_payload = Payload::skip;
  std::string m_header;                          // a header split across chunks
  std::string m_buffer;                          // a pax or GNU name payload split across chunks
  std::shared_ptr<util::PageBuffer> m_assembly;  // a file split across chunks
  std::uint64_t m_assembled = 0;
  bool m_streaming = false;       // the current file is larger than k_stream_min: pieces
  std::uint64_t m_streamed = 0;   // its bytes handed out so far
  std::uint64_t m_need = 0;       // payload bytes still to come
  std::uint64_t m_pad = 0;        // padding bytes to skip now
  std::uint64_t m_pad_after = 0;  // padding that follows the current payload
  std::uint64_t m_offset = 0;     // stream offset, for messages
  Member m_current;
  std::optional<std::string> m_next_path, m_next_link;
  std::optional<std::uint64_t> m_next_size;
  std::optional<std::pair<std::int64_t, std::uint32_t>> m_next_mtime;
  bool m_end = false;
};

// ---------------------------------------------------------------------------------------------
// Compressed frames.
enum class Codec { zstd, gzip };

// Chunk sizes: the packer cuts the tar stream at member boundaries before a chunk would pass
// k_chunk_target; a chunk longer than k_frame_max (one large file) is split into several frames.
// Frames are compressed alone (so they decode in parallel), each with a window as large as the
// frame: on the file-heavy bench env, frames near 4 MiB with zstd's default 2 MiB window made the
// archive 1.4% larger than one `zstd -3` stream of a tar, frames near 8 MiB with an 8 MiB window
// 0.2% smaller, at the same CPU time.
constexpr std::size_t k_chunk_target = (8u << 20) - (64u << 10);
constexpr std::size_t k_frame_max = 8u << 20;
constexpr int k_frame_window_log = 23;
static_assert(std::size_t{1} << k_frame_window_log == k_frame_max);
// Frames (or chunks of up to k_frame_max) that pack or unpack holds in flight at most, whatever
// the core count: 128 MiB.
constexpr std::size_t k_frames_in_flight_max = (128u << 20) / k_frame_max;

struct CompressedFrame {
  std::string bytes;
  std::uint32_t decompressed_size = 0;
};

// Thread-safe: every thread gets its own compression context.
std::vector<CompressedFrame> compress_chunk(Codec codec, int level, std::string_view chunk);
// ferry never writes a frame that decodes to more than k_frame_max bytes, nor one whose compressed
// form (padding included) exceeds this bound: readers refuse larger claims before they allocate
// anything for them (a 127-byte file could otherwise make every reader allocate 4 GiB).
std::size_t max_compressed_frame();
// A zstd skippable frame of exactly `bytes` bytes (at least 8), which every zstd reader passes
// over: what fills the room a packer kept for frames that came out smaller. Appended to a frame,
// the two decode as that frame alone.
std::string zstd_padding(std::size_t bytes);
// What follows the last frame: the zstd seek table, or nothing for gzip.
std::string frames_trailer(Codec codec, const std::vector<std::uint32_t>& compressed_sizes,
                           const std::vector<std::uint32_t>& decompressed_sizes);

struct FrameIndexEntry {
  std::uint64_t offset = 0;
  std::uint32_t compressed_size = 0;
  std::uint32_t decompressed_size = 0;
};

enum class ArchiveLayout { ferry_zstd, ferry_gzip, foreign };

struct FrameIndex {
  ArchiveLayout layout = ArchiveLayout::foreign;
  std::vector<FrameIndexEntry> frames;
};

// Finds the frames of a ferry archive; layout foreign when the bytes are anything else.
FrameIndex index_frames(std::string_view archive, const std::string& subject);
// The compression that a file's first bytes announce (gzip's or zstd's magic), if either.
std::optional<Codec> compression_of(std::string_view first_bytes);
// Decompresses one frame (thread-safe). Corruption raises Error naming subject and frame.
std::string decompress_frame(ArchiveLayout layout, std::string_view archive,
                             const FrameIndexEntry& frame, const std::string& subject);
// The same from the frame's own bytes into out, which holds frame.decompressed_size bytes.
void decompress_frame_into(ArchiveLayout layout, std::string_view frame_bytes,
                           const FrameIndexEntry& frame, const std::string& subject, char* out);

// Whether path is a SquashFS image (a regular file that starts with its magic, "hsqs"): images
// are staged and run whole, never extracted.
bool is_squashfs_file(const std::string& path);

// ---------------------------------------------------------------------------------------------
// The manifest: the archive's first member.
constexpr std::string_view k_manifest_path = ".ferry/manifest.json";
// Written into an unpacked tree: which archive it came from and where it was relocated to.
constexpr std::string_view k_unpacked_marker = ".ferry/unpacked.json";

// text: replace everywhere; binary: conda's NUL-padded C-string rule over the whole file;
// rpath: the binary rule applied only to an ELF file's DT_RPATH/DT_RUNPATH strings.
enum class RelocMode : std::uint8_t { none, text, binary, rpath };

struct ManifestFile {
  std::string path;
  std::uint64_t size = 0;
  std::uint64_t xxh3 = 0;
  std::int32_t placeholder = -1;  // index into Manifest::placeholders, -1: nothing to relocate
  RelocMode mode = RelocMode::none;
  std::uint32_t perm = 0644;  // the member's mode bits, as its tar header stores them
};
struct ManifestDir {
  std::string path;
  std::uint32_t perm = 0755;
};
struct ManifestLink {
  std::string path, target;  // a symlink's target, or the member a hardlink names
};

// Version 2 lists every member, not only regular files: a directory with its mode, a symlink with
// its target, a hardlink with its member. So the identity (the manifest's hash) covers the whole
// tree, and unpack refuses any member the manifest does not list exactly.
struct Manifest {
  static constexpr int k_version = 2;
  int version = k_version;
  std::string tool;
  std::string kind;           // conda | venv | prefix
  std::string source_prefix;  // where the environment lived when packed
  std::string python_version;
  std::vector<std::string> placeholders;
  std::vector<ManifestFile> files;       // regular files (not hardlinks), in archive order
  std::vector<ManifestDir> dir_entries;  // directory members (other directories are implied)
  std::vector<ManifestLink> symlink_entries, hardlink_entries;
  std::vector<std::string> warnings;

  TreeCounts counts() const;  // of the lists
  std::string to_json() const;
  static Manifest parse(std::string_view json, const std::string& subject);
  // The archive's identity: the xxh3 of the manifest's JSON (which holds every file's checksum),
  // as stored when parsed, else as to_json() writes it (the same bytes for ferry's archives).
  std::uint64_t identity() const {
    return m_stored_identity ? *m_stored_identity : util::xxh3(to_json());
  }

 private:
  std::optional<std::uint64_t> m_stored_identity;
};

// ---------------------------------------------------------------------------------------------
// Extraction of untrusted archives into a fresh directory.
//
// Nothing is ever created outside root: names that are absolute or hold "..", members below a
// symlink member, hardlinks to anything but an earlier regular member, device files and FIFOs
// are refused; files are created with util::open_beneath (never through a symlink); setuid and
// setgid bits are dropped. Errors name the member (escaped with util::printable). Memory stays
// bounded: files over k_stream_min flow to their file in pieces, a member repeating an earlier
// name replaces it at the end (the last one wins, as with tar) without its data being held.
struct ExtractHooks {
  // Serial, in archive order, before the member is written: sees the manifest first (a streamed
  // file once, with its first piece).
  std::function<void(const Member&)> on_member;
  // Parallel: may verify data (throw) and replace it; returns true when out holds the new data.
  std::function<bool(const Entry&, std::string_view data, std::string& out)> transform;
  // Serial, for a file larger than k_stream_min: the filter its pieces go through (nullptr: none).
  std::function<std::unique_ptr<MemberFilter>(const Entry&)> stream;
  util::ProgressSink* progress = nullptr;  // told the compressed bytes consumed
};

struct ExtractStats : TreeCounts {
  std::string format;  // "ferry tar.zst", "tar.gz", ...
  std::uint64_t frames = 0;
};

// Reads the archive at archive_path (a ferry archive, or any tar, tar.gz, tar.bz2, tar.xz,
// tar.zst or zip) and writes its members under root, which must be an empty directory.
ExtractStats extract_archive(const std::string& archive_path, const std::string& root,
                             unsigned jobs, const ExtractHooks& hooks);

// Where extraction gets each frame's compressed bytes: an archive all in memory, or frames that
// arrive (a broadcast into a bounded window). frame(i) returns frame i's bytes, waiting for them if
// need be; released(i), when set, is told once frame i's bytes are no longer read (decoded, or
// its decoding failed) and may be reused.
struct FrameSource {
  std::function<std::string_view(std::size_t index)> frame;
  std::function<void(std::size_t index)> released;
  // Called as soon as extraction fails, before it unwinds: a source whose frame() waits on the
  // releases must stop waiting (and throw) from then on.
  std::function<void()> abandoned;
  std::uint64_t size = 0;  // compressed bytes in all (progress)

  static FrameSource in_memory(std::string_view archive, const FrameIndex& index);
};

// Extracts a ferry archive while it streams in: each frame is decoded as soon as its bytes have
// arrived, in parallel with the arrival of the next ones. index comes from the sender.
ExtractStats extract_frames(const FrameSource& source, const FrameIndex& index,
                            const std::string& root, unsigned jobs, const ExtractHooks& hooks,
                            const std::string& subject);

// Streams members of any archive in order (inspect, the manifest); stops when visit returns false.
// Every member comes once: whole when it is at most k_read_whole_max bytes, else with its entry
// only (streamed set, data empty), so that no archive can make it hold more.
constexpr std::uint64_t k_read_whole_max = 64u << 20;
void read_members(const std::string& archive_path, const std::function<bool(const Member&)>& visit);
// The manifest's text, as unpack reads it: it counts only as the archive's first member (after the
// .ferry directory; one further in is refused as tampering when extraction meets it). nullopt when
// there is none there; Error when it is larger than k_read_whole_max.
std::optional<std::string> read_manifest_text(const std::string& archive_path);

// Lists a member name in its safe, normalised form, or throws Error naming it.
std::string normalize_member_path(std::string_view name, const std::string& subject);

}  // namespace ferry::format
