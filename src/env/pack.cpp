// ferry pack: collect, then one pipelined pass over the files that reads each file once, finds its
// relocation record and checksum, and tars and compresses it in frames. The manifest (the records
// and checksums) is the archive's first member but is known only at the end: for zstd the files'
// frames go straight into OUT after room kept for the manifest's (estimated from a stand-in), for
// gzip to a spill file beside OUT, copied after the manifest's frames once they are written. Only
// the files too large to hold (read in pieces) are read twice: once before, for their records.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <mutex>

#include <fmt/format.h>
#include <simdjson.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_pipeline.h>
#include <nlohmann/json.hpp>

#include "env/collect.hpp"
#include "env/pieces.hpp"

namespace ferry::env {
namespace {

struct Classified {
  std::uint64_t size = 0;
  std::uint64_t hash = 0;
  format::RelocMode mode = format::RelocMode::none;
  std::string placeholder;
  bool unrelocatable = false;  // holds the prefix in a form ferry does not rewrite
  bool streamed = false;       // larger than k_stream_min: read in pieces, never held whole
  std::shared_ptr<util::UniqueFd> relocated;  // streamed with --dest-prefix: its relocated copy
};

bool contains(std::string_view data, std::string_view needle) {
  return !needle.empty() && ::memmem(data.data(), data.size(), needle.data(), needle.size());
}

bool is_elf(std::string_view data) {
  return data.starts_with(
      "\x7f"
      "ELF");
}

// Where a UTF-8 sequence cut by the end of data begins (data.size() when none is cut): the bytes
// from there are validated with the next piece.
std::size_t utf8_cut(std::string_view data) {
  for (std::size_t back = 1; back <= 3 && back <= data.size(); ++back) {
    auto c = static_cast<unsigned char>(data[data.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    std::size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return len > back ? data.size() - back : data.size();
  }
  return data.size();
}

// read_pieces of the file at path.
void read_file_pieces(const std::string& path, const std::function<void(std::string_view)>& piece,
                      std::uint64_t offset = 0,
                      std::uint64_t size = std::numeric_limits<std::uint64_t>::max()) {
  util::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) util::throw_errno(path, "cannot open", errno);
  read_pieces(fd.get(), path, piece, offset, size);
}

// --dest-prefix for a file too large to hold: its content relocated to dest is written, in
// pieces, to an unnamed temporary file in scratch_dir (O_TMPFILE), which pass 2 then reads
// instead of the source; out gets that content's size and hash. false when the file system has
// no O_TMPFILE (the caller then reads the file whole).
bool relocate_large(const PackItem& item, const std::string& dest, const std::string& scratch_dir,
                    Classified& out) {
  int raw = ::open(scratch_dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (raw < 0) return false;
  auto relocated = std::make_shared<util::UniqueFd>(raw);
  util::Xxh3Stream hash;
  std::uint64_t bytes = 0;
  auto emit = [&](std::string_view data) {
    util::write_all(raw, data, scratch_dir + ": temporary copy of " + item.source);
    hash.update(data);
    bytes += data.size();
  };
  auto too_long = [&] {
    throw Error(
        fmt::format("{}: --dest-prefix {} is longer than the {}-byte prefix space in this "
                    "binary file",
                    item.source, dest, out.placeholder.size()));
  };
  if (out.mode == format::RelocMode::rpath) {
    // Same length: the search-path strings are rewritten, everything else passes as it is.
    util::UniqueFd fd(::open(item.source.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) util::throw_errno(item.source, "cannot open", errno);
    std::vector<std::pair<std::uint64_t, std::string>> patches;
    if (relocation::search_path_patches(fd.get(), out.placeholder, dest, item.source, patches) ==
        relocation::BinaryResult::too_long)
      too_long();
    std::uint64_t at = 0;
    std::string piece_copy;
    read_pieces(fd.get(), item.source, [&](std::string_view piece) {
      piece_copy.assign(piece);
      for (const auto& [where, text] : patches)
        for (std::size_t k = 0; k < text.size(); ++k)
          if (where + k >= at && where + k < at + piece.size())
            piece_copy[where + k - at] = text[k];
      emit(piece_copy);
      at += piece.size();
    });
  } else {
    relocation::StreamReplacer replacer(out.mode, out.placeholder, dest, item.source);
    std::string piece_out;
    read_file_pieces(item.source, [&](std::string_view piece) {
      piece_out.clear();
      replacer.feed(piece, piece_out);
      emit(piece_out);
    });
    piece_out.clear();
    replacer.finish(piece_out);
    emit(piece_out);
    if (replacer.too_long()) too_long();
  }
  out.size = bytes;
  out.hash = hash.digest();
  out.placeholder = dest;
  out.relocated = std::move(relocated);
  return true;
}

// load()'s decision for a file too large to hold, reading it once in pieces: its hash, whether it
// holds the placeholder, whether it is UTF-8, and for ELF files whether the placeholder is in a
// search path. false when the data must be relocated at pack time (--dest-prefix): that case is
// left to load().
bool classify_large(const PackItem& item, std::uint64_t size,
                    const std::optional<std::string>& dest, Classified& out) {
  out = Classified{};
  util::Xxh3Stream hash;
  bool utf8 = true, elf = false;
  PieceSearch search(item.detect != Detect::none ? item.placeholder : std::string());
  std::string cut;  // a UTF-8 sequence the previous piece ended inside
  std::uint64_t bytes = 0;
  const std::string& needle = item.placeholder;
  read_file_pieces(item.source, [&](std::string_view piece) {
    if (bytes == 0) elf = is_elf(piece);
    bytes += piece.size();
    hash.update(piece);
    search.feed(piece);
    if (utf8) {
      std::string_view body = piece;
      if (!cut.empty()) {  // complete the sequence the last piece ended inside
        auto c0 = static_cast<unsigned char>(cut[0]);
        std::size_t len = (c0 & 0xE0) == 0xC0 ? 2 : (c0 & 0xF0) == 0xE0 ? 3 : 4;
        std::size_t need = len - cut.size();
        if (piece.size() < need) {
          cut.append(piece);
          body = {};
        } else {
          utf8 = util::is_valid_utf8(cut + std::string(piece.substr(0, need)));
          body = piece.substr(need);
          cut.clear();
        }
      }
      if (utf8 && !body.empty()) {
        std::size_t at = utf8_cut(body);
        utf8 = util::is_valid_utf8(body.substr(0, at));
        cut = std::string(body.substr(at));
      }
    }
  });
  if (bytes != size) throw Error(fmt::format("{}: changed while packing", item.source));
  if (!cut.empty()) utf8 = false;
  bool found = search.found();
  out.size = bytes;
  out.hash = hash.digest();
  out.streamed = true;
  if (item.detect == Detect::known && found) {
    out.mode = item.reloc;
    out.placeholder = item.placeholder;
  } else if (item.detect == Detect::scan && found) {
    out.placeholder = item.placeholder;
    bool in_search_path = false;
    if (!utf8 && elf) {
      util::UniqueFd fd(::open(item.source.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) util::throw_errno(item.source, "cannot open", errno);
      for (auto [begin, end] : relocation::elf_search_paths_in_file(fd.get())) {
        std::string text(static_cast<std::size_t>(end - begin), '\0');
        if (::pread(fd.get(), text.data(), text.size(), static_cast<off_t>(begin)) ==
                static_cast<ssize_t>(text.size()) &&
            contains(text, needle))
          in_search_path = true;
      }
    }
    if (utf8)
      out.mode = format::RelocMode::text;
    else if (in_search_path)
      out.mode = format::RelocMode::rpath;
    else if (elf)
      out.mode = format::RelocMode::none;
    else
      out.unrelocatable = !item.target.ends_with(".pyc");
  }
  return !(dest && out.mode != format::RelocMode::none);
}

// The package cache's paths mean nothing where the archive lands (conda-pack does the same): the
// record's values for them are blanked. In the record's own text, kept otherwise as conda wrote
// it (simdjson finds the values: parsing a large env's records into a tree and writing them out
// again cost more than reading their files); through a tree where a value is not a scalar.
std::string blank_cache_paths_in_tree(const std::string& text, const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: invalid JSON: {}", path, e.what()));
  }
  for (const char* key : {"extracted_package_dir", "package_tarball_full_path"})
    if (j.contains(key)) j[key] = "";
  if (j.contains("link") && j["link"].is_object() && j["link"].contains("source"))
    j["link"]["source"] = "";
  return j.dump(1, ' ', true);
}

std::string rewrite_conda_meta(const std::string& text, const std::string& path) {
  namespace od = simdjson::ondemand;
  simdjson::padded_string padded(text);
  thread_local od::parser parser;
  std::vector<std::pair<std::size_t, std::size_t>> spans;  // offset, length: values to blank
  try {
    auto blank = [&](od::value value) {
      od::json_type type = value.type();
      if (type == od::json_type::object || type == od::json_type::array) return false;
      std::string_view token = value.raw_json_token();  // with the blanks after it
      while (!token.empty() &&
             std::string_view(" \t\r\n").find(token.back()) != std::string_view::npos)
        token.remove_suffix(1);
      spans.emplace_back(static_cast<std::size_t>(token.data() - padded.data()), token.size());
      return true;
    };
    od::document record = parser.iterate(padded);
    for (auto field : record.get_object()) {
      std::string_view key = field.unescaped_key();
      if (key == "extracted_package_dir" || key == "package_tarball_full_path") {
        if (!blank(field.value())) return blank_cache_paths_in_tree(text, path);
      } else if (key == "link" && field.value().type() == od::json_type::object) {
        for (auto link_field : field.value().get_object())
          if (std::string_view(link_field.unescaped_key()) == "source" &&
              !blank(link_field.value()))
            return blank_cache_paths_in_tree(text, path);
      }
    }
  } catch (const simdjson::simdjson_error&) {
    return blank_cache_paths_in_tree(text, path);  // which names what is wrong
  }
  std::sort(spans.begin(), spans.end());
  std::string out;
  out.reserve(text.size());
  std::size_t at = 0;
  for (auto [offset, length] : spans) {
    if (offset < at) continue;  // the same value twice: cannot happen, but never overlap
    out.append(text, at, offset - at);
    out += "\"\"";
    at = offset + length;
  }
  out.append(text, at);
  return out;
}

// --dest-prefix applied at pack time: the placeholder in data replaced as mode says.
void relocate_to_dest(std::string& data, const PackItem& item, format::RelocMode mode,
                      const std::string& placeholder, const std::string& dest) {
  std::string replaced;
  if (mode == format::RelocMode::text) {
    if (relocation::replace_text(data, placeholder, dest, replaced)) data.swap(replaced);
    relocation::fix_long_shebang(data);
  } else if ((mode == format::RelocMode::rpath
                  ? relocation::replace_search_paths(data, placeholder, dest, replaced)
                  : relocation::replace_binary(data, placeholder, dest, replaced)) ==
             relocation::BinaryResult::too_long) {
    throw Error(fmt::format(
        "{}: --dest-prefix {} is longer than the {}-byte prefix space in this binary file",
        item.source, dest, placeholder.size()));
  } else if (!replaced.empty()) {
    data.swap(replaced);
  }
}

// Reads an item as it goes into the archive and decides its relocation record.
std::string load(const PackItem& item, const std::optional<std::string>& dest, Classified& out) {
  std::string data = util::read_file(item.source);
  if (item.rewrite_conda_meta) data = rewrite_conda_meta(data, item.source);
  out = Classified{};
  if (item.detect == Detect::known && contains(data, item.placeholder)) {
    out.mode = item.reloc;
    out.placeholder = item.placeholder;
  } else if (item.detect == Detect::scan && contains(data, item.placeholder)) {
    out.placeholder = item.placeholder;
    bool in_search_path = false;
    if (!util::is_valid_utf8(data) && is_elf(data))
      for (auto [begin, end] : relocation::elf_search_paths(data))
        if (contains(data.substr(begin, end - begin), item.placeholder)) in_search_path = true;
    if (util::is_valid_utf8(data))
      out.mode = format::RelocMode::text;
    else if (in_search_path)
      out.mode = format::RelocMode::rpath;
    else if (is_elf(data))
      out.mode = format::RelocMode::none;  // a built-in default path; see elf_search_paths
    else
      out.unrelocatable = !item.target.ends_with(".pyc");
  }
  if (dest && out.mode != format::RelocMode::none) {
    relocate_to_dest(data, item, out.mode, out.placeholder, *dest);
    out.placeholder = *dest;
  }
  out.size = data.size();
  out.hash = util::xxh3(data);
  return data;
}

// The archive is written to a hidden sibling of OUT (.OUT.ferry-tmp-XXXXXX/file, see
// util::StagedTree) under the lock .OUT.ferry-lock and renamed into place: a failed pack removes
// it, SIGINT or SIGTERM too, and the next pack of the same OUT sweeps what a kill -9 left.
class TempOutput {
 public:
  TempOutput(const std::string& output, bool force) : m_output(output) {
    util::SiblingPath where = util::sibling_path(output);
    struct stat st {};
    if (::stat(output.c_str(), &st) == 0 && !force)
      throw Error(fmt::format("{}: already exists (use --force to overwrite)", output),
                  Error::Kind::usage);
    if (::stat(where.parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      throw Error(fmt::format("{}: output directory does not exist", where.parent),
                  Error::Kind::usage);
    m_tree.emplace(where);
    const std::string& path = m_tree->stage(util::TempSibling::Kind::file);
    m_fd = util::UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!m_fd) util::throw_errno(path, "cannot create", errno);
  }
  TempOutput(const TempOutput&) = delete;
  TempOutput& operator=(const TempOutput&) = delete;
  void write(std::string_view data) {
    util::write_all(m_fd.get(), data, m_output);
    m_written += data.size();
  }
  // Appends size bytes of fd from its start: in the kernel (copy_file_range; a reflink where the
  // file system shares extents), else through a buffer. One thread: writers of one file take its
  // inode's lock in turn, so more threads only spin.
  void append(int fd, std::uint64_t size) {
    copy_range(fd, 0, m_written, size);
    m_written += size;
    // copy_range writes at explicit offsets; what follows (the seek table) at the file's.
    if (::lseek(m_fd.get(), static_cast<off_t>(m_written), SEEK_SET) < 0)
      util::throw_errno(m_output, "cannot seek in", errno);
  }
  // Writing goes on at offset (the room before it is filled by write_at).
  void seek_to(std::uint64_t offset) {
    if (::lseek(m_fd.get(), static_cast<off_t>(offset), SEEK_SET) < 0)
      util::throw_errno(m_output, "cannot seek in", errno);
    m_written = offset;
  }
  void write_at(std::uint64_t offset, std::string_view data) {
    while (!data.empty()) {
      ssize_t put = ::pwrite(m_fd.get(), data.data(), data.size(), static_cast<off_t>(offset));
      if (put < 0 && errno == EINTR) continue;
      if (put < 0) util::throw_errno(m_output, "cannot write", errno);
      data.remove_prefix(static_cast<std::size_t>(put));
      offset += static_cast<std::uint64_t>(put);
    }
  }
  // Moves everything from offset `from` on to `to`, in pieces taken in the order that reads none
  // after it was overwritten; writing then goes on after it.
  void move(std::uint64_t from, std::uint64_t to) {
    std::uint64_t length = m_written - from;
    std::string buffer(std::size_t{4} << 20, '\0');
    for (std::uint64_t done = 0; done < length;) {
      std::size_t piece =
          static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), length - done));
      std::uint64_t at = to > from ? length - done - piece : done;  // up: the last piece first
      read_at(m_fd.get(), from + at, buffer.data(), piece, "cannot read back");
      write_at(to + at, std::string_view(buffer.data(), piece));
      done += piece;
    }
    if (to < from && ::ftruncate(m_fd.get(), static_cast<off_t>(to + length)) != 0)
      util::throw_errno(m_output, "cannot truncate", errno);
    seek_to(to + length);
  }
  void commit() {
    if (::fsync(m_fd.get()) != 0) util::throw_errno(m_output, "cannot sync", errno);
    m_fd = util::UniqueFd();
    m_tree->commit();
  }
  std::uint64_t written() const { return m_written; }

 private:
  // length bytes of fd at offset into buffer, short reads continued; what says what failed.
  void read_at(int fd, std::uint64_t offset, char* buffer, std::size_t length, const char* what) {
    for (std::size_t got = 0; got < length;) {
      ssize_t n = ::pread(fd, buffer + got, length - got, static_cast<off_t>(offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) util::throw_errno(m_output, what, n < 0 ? errno : EIO);
      got += static_cast<std::size_t>(n);
    }
  }
  void copy_range(int fd, std::uint64_t from, std::uint64_t to, std::uint64_t length) {
    auto in = static_cast<off_t>(from), out = static_cast<off_t>(to);
    auto end = static_cast<off_t>(from + length);
    while (in < end) {
      ssize_t n =
          ::copy_file_range(fd, &in, m_fd.get(), &out, static_cast<std::size_t>(end - in), 0);
      if (n > 0) continue;
      if (n == 0) throw Error(fmt::format("{}: its spill file ended early", m_output));
      if (errno == EINTR) continue;
      if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
        util::throw_errno(m_output, "cannot write", errno);
      // No copy_file_range here (another file system, an old kernel): through a buffer.
      std::string buffer(std::size_t{4} << 20, '\0');
      while (in < end) {
        std::size_t want = std::min<std::size_t>(buffer.size(), static_cast<std::size_t>(end - in));
        read_at(fd, static_cast<std::uint64_t>(in), buffer.data(), want,
                "cannot read its spill file");
        write_at(static_cast<std::uint64_t>(out), std::string_view(buffer.data(), want));
        in += static_cast<off_t>(want);
        out += static_cast<off_t>(want);
      }
    }
  }

  std::string m_output;
  std::optional<util::StagedTree> m_tree;
  util::UniqueFd m_fd;
  std::uint64_t m_written = 0;
};

// Where the files' frames wait while the manifest is not known: an unnamed file (O_TMPFILE) in
// OUT's directory, so that it is on OUT's file system and vanishes with the process; a named one,
// removed at once, where the file system has no O_TMPFILE.
class SpillFile {
 public:
  explicit SpillFile(const std::string& output) : m_subject(output + " (its spill file)") {
    util::SiblingPath where = util::sibling_path(output);
    m_fd = util::UniqueFd(::open(where.parent.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (m_fd) return;
    std::string pattern = fmt::format("{}/.{}.ferry-spill-XXXXXX", where.parent, where.name);
    m_fd = util::UniqueFd(::mkostemp(pattern.data(), O_CLOEXEC));
    if (!m_fd) util::throw_errno(pattern, "cannot create", errno);
    ::unlink(pattern.c_str());
  }
  void write(std::string_view data) {
    util::write_all(m_fd.get(), data, m_subject);
    m_written += data.size();
  }
  int fd() const { return m_fd.get(); }
  std::uint64_t written() const { return m_written; }

 private:
  std::string m_subject;
  util::UniqueFd m_fd;
  std::uint64_t m_written = 0;
};

// pack's passes share one Packing: the options, the result as far as it is known, the items and
// what was found in each, the archive being written and the spill file of its files' frames.
struct Packing {
  const PackOptions& o;
  PackResult r{};
  int level = 0;                      // the codec's, checked
  std::optional<TempOutput> out{};    // the archive, beside OUT until the end
  std::optional<SpillFile> spill{};   // gzip: the files' frames, until the manifest is written
  std::uint64_t files_at = 0;         // zstd: where the files' frames begin in OUT
  std::vector<PackItem> items{};      // in archive order
  std::vector<Classified> classes{};  // what each item's reading found
  std::uint64_t total_bytes = 0;      // the files' bytes, as collected
  std::uint64_t large_bytes = 0;      // of those, the bytes read twice (streamed files)
  unsigned jobs = 0;                  // -j
  std::optional<JobArena> arena{};    // its threads, for both passes
  format::Manifest manifest{};
  format::TarEncoder encoder{};
  std::vector<std::uint32_t> compressed_sizes{}, decompressed_sizes{};  // the frames so far
  std::vector<std::uint32_t> spilled_compressed{}, spilled_decompressed{};

  void write_frames(const std::vector<format::CompressedFrame>& frames) {
    for (const auto& f : frames) {
      out->write(f.bytes);
      compressed_sizes.push_back(static_cast<std::uint32_t>(f.bytes.size()));
      decompressed_sizes.push_back(f.decompressed_size);
    }
  }
  void spill_frames(const std::vector<format::CompressedFrame>& frames) {
    for (const auto& f : frames) {
      if (spill)
        spill->write(f.bytes);
      else
        out->write(f.bytes);
      spilled_compressed.push_back(static_cast<std::uint32_t>(f.bytes.size()));
      spilled_decompressed.push_back(f.decompressed_size);
    }
  }
  // The spilled frames after those written so far (the manifest's).
  void append_spill() {
    out->append(spill->fd(), spill->written());
    compressed_sizes.insert(compressed_sizes.end(), spilled_compressed.begin(),
                            spilled_compressed.end());
    decompressed_sizes.insert(decompressed_sizes.end(), spilled_decompressed.begin(),
                              spilled_decompressed.end());
    spill.reset();
  }
  void advance(std::uint64_t bytes) {
    if (o.progress) o.progress->advance(bytes);
  }
};

// The paths (UTF-8, absolute, the output outside the environment), --dest-prefix and --level.
void check_options(Packing& pk) {
  const PackOptions& o = pk.o;
  PackResult& r = pk.r;
  // The manifest (JSON) records the prefix, and unpack refuses an ARCHIVE path that is not UTF-8.
  for (const std::string* p : {&o.prefix, &o.output})
    if (!util::is_valid_utf8(*p))
      throw Error(
          fmt::format("{}: the path is not valid UTF-8 (ferry's manifest and unpack's marker "
                      "are JSON): rename it",
                      util::printable(*p)),
          Error::Kind::usage);
  r.prefix = util::absolute_path(o.prefix);
  r.output = util::absolute_path(o.output);
  r.kind = detect_kind(r.prefix);
  if (r.output.starts_with(r.prefix + "/"))
    throw Error(
        fmt::format("{}: the output must not be inside the environment {}", r.output, r.prefix),
        Error::Kind::usage);
  if (o.dest_prefix && (o.dest_prefix->empty() || (*o.dest_prefix)[0] != '/'))
    throw Error(fmt::format("--dest-prefix {}: must be an absolute path", *o.dest_prefix),
                Error::Kind::usage);
  pk.level = o.level.value_or(o.codec == format::Codec::zstd ? 3 : 6);
  if (o.codec == format::Codec::zstd ? (pk.level < 1 || pk.level > 19)
                                     : (pk.level < 1 || pk.level > 12))
    throw Error(fmt::format("--level {}: out of range ({})", pk.level,
                            o.codec == format::Codec::zstd ? "1-19 for zstd" : "1-12 for gzip"),
                Error::Kind::usage);
}

// What goes into the archive: the collection less --exclude, a file with several links stored
// once (its later names become hardlink members).
void collect_items(Packing& pk) {
  const PackOptions& o = pk.o;
  PackResult& r = pk.r;
  Collection c =
      r.kind == Kind::conda ? collect_conda(o, r.prefix) : collect_tree(o, r.prefix, r.kind);
  r.python_version = c.python_version;
  r.warnings = c.warnings;
  for (PackItem& item : c.items) {
    bool excluded = false;
    for (const std::string& pattern : o.excludes)
      if (util::glob_match(pattern, item.target)) excluded = true;
    if (excluded) continue;
    // Refused before anything is read: the manifest that lists it is JSON.
    for (const std::string* name : {&item.target, &item.link})
      if (!util::is_valid_utf8(*name))
        throw Error(
            fmt::format("{}/{}: {} not valid UTF-8 (ferry's manifest is JSON): rename it, "
                        "or leave it out with --exclude",
                        r.prefix, util::printable(item.target),
                        name == &item.link ? "its link target is" : "the name is"));
    pk.items.push_back(std::move(item));
  }
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::string> first_link;
  for (PackItem& item : pk.items) {
    if (item.type != format::EntryType::file || item.nlink < 2) continue;
    auto [it, inserted] = first_link.emplace(std::pair(item.device, item.inode), item.target);
    if (!inserted) {
      item.type = format::EntryType::hardlink;
      item.link = it->second;
    }
  }
}

// Pass 1, in parallel, for the files too large to hold only: each read once, in pieces, for its
// checksum and relocation record, which pass 2 needs before it streams the file. Every other file
// is classified in pass 2, as it is read for the archive.
void classify_large_files(Packing& pk) {
  const PackOptions& o = pk.o;
  const std::vector<PackItem>& items = pk.items;
  pk.jobs = o.jobs ? o.jobs : util::default_jobs();
  pk.arena.emplace(pk.jobs);  // for pass 2 too
  pk.classes.resize(items.size());
  std::vector<std::size_t> large;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].type != format::EntryType::file) continue;
    pk.total_bytes += items[i].size;
    if (!items[i].rewrite_conda_meta && items[i].size > format::k_stream_min) {
      large.push_back(i);
      pk.large_bytes += items[i].size;
    }
  }
  if (o.progress) o.progress->begin("pack", pk.total_bytes + pk.large_bytes);
  pk.arena->execute([&] {
    tbb::parallel_for(std::size_t{0}, large.size(), [&](std::size_t n) {
      const PackItem& item = items[large[n]];
      Classified& k = pk.classes[large[n]];
      bool done = classify_large(item, item.size, o.dest_prefix, k);
      if (!done) {
        done = relocate_large(item, *o.dest_prefix, util::sibling_path(pk.r.output).parent, k);
        if (!done) k = Classified{};  // no O_TMPFILE: read whole, in pass 2
      }
      pk.advance(item.size);
    });
  });
}

// The manifest from the items and what reading them found (classes), with r's counts and warnings.
format::Manifest make_manifest(const Packing& pk, const std::vector<Classified>& classes,
                               PackResult& r) {
  const PackOptions& o = pk.o;
  format::Manifest manifest;
  manifest.tool = k_tool;
  manifest.kind = util::name(r.kind);
  manifest.source_prefix = o.dest_prefix ? *o.dest_prefix : r.prefix;
  manifest.python_version = r.python_version;
  std::map<std::string, std::int32_t> placeholder_index;
  std::uint64_t unrelocatable = 0;
  std::string first_unrelocatable;
  for (std::size_t i = 0; i < pk.items.size(); ++i) {
    const PackItem& item = pk.items[i];
    switch (item.type) {
      case format::EntryType::directory:
        ++r.directories;
        manifest.dir_entries.push_back({item.target, item.mode & 07777});
        continue;
      case format::EntryType::symlink:
        ++r.symlinks;
        manifest.symlink_entries.push_back({item.target, item.link});
        continue;
      case format::EntryType::hardlink:
        ++r.hardlinks;
        manifest.hardlink_entries.push_back({item.target, item.link});
        continue;
      case format::EntryType::file: break;
    }
    const Classified& k = classes[i];
    format::ManifestFile f;
    f.path = item.target;
    f.size = k.size;
    f.xxh3 = k.hash;
    f.mode = k.mode;
    f.perm = item.mode & 07777;
    if (k.mode != format::RelocMode::none) {
      auto [it, inserted] = placeholder_index.emplace(
          k.placeholder, static_cast<std::int32_t>(manifest.placeholders.size()));
      if (inserted) manifest.placeholders.push_back(k.placeholder);
      f.placeholder = it->second;
      (k.mode == format::RelocMode::text ? r.text_records : r.binary_records)++;  // rpath: binary
    }
    if (k.unrelocatable && unrelocatable++ == 0) first_unrelocatable = item.target;
    r.bytes += k.size;
    ++r.files;
    manifest.files.push_back(std::move(f));
  }
  if (unrelocatable)
    r.warnings.push_back(fmt::format(
        "{}: {} files hold the prefix in a format ferry does not rewrite (e.g. {}); they are "
        "packed unchanged",
        r.prefix, unrelocatable, first_unrelocatable));
  manifest.warnings = r.warnings;
  return manifest;
}

void build_manifest(Packing& pk) { pk.manifest = make_manifest(pk, pk.classes, pk.r); }

// The archive's first members, the .ferry directory and the manifest, compressed in frames of
// their own (megabytes of JSON for a large env: the frames at once).
std::vector<format::CompressedFrame> manifest_frames(Packing& pk,
                                                     const format::Manifest& manifest) {
  std::string chunk;
  std::string json = manifest.to_json();
  format::TarEncoder encoder;  // the same headers the archive's own encoder writes
  format::Entry e;
  e.path = ".ferry";
  e.type = format::EntryType::directory;
  e.mode = 0755;
  e.mtime_sec = static_cast<std::int64_t>(::time(nullptr));
  encoder.add(e, {}, chunk);
  e.path = std::string(format::k_manifest_path);
  e.type = format::EntryType::file;
  e.mode = 0644;
  encoder.add(e, json, chunk);
  std::vector<std::vector<format::CompressedFrame>> pieces(
      (chunk.size() + format::k_frame_max - 1) / format::k_frame_max);
  pk.arena->execute([&] {
    tbb::parallel_for(std::size_t{0}, pieces.size(), [&](std::size_t i) {
      pieces[i] = format::compress_chunk(
          pk.o.codec, pk.level,
          std::string_view(chunk).substr(i * format::k_frame_max, format::k_frame_max));
    });
  });
  std::vector<format::CompressedFrame> frames;
  for (auto& p : pieces)
    for (auto& f : p) frames.push_back(std::move(f));
  return frames;
}

std::uint64_t total_size(const std::vector<format::CompressedFrame>& frames) {
  std::uint64_t n = 0;
  for (const auto& f : frames) n += f.bytes.size();
  return n;
}

// Where the files' frames go. zstd: straight into OUT, after room for the manifest's frames, which
// are known only at the end: the room is what a stand-in manifest compresses to (the real one's
// paths, sizes and types; random checksums, as incompressible as the real ones; every file that
// may be relocated marked so), plus a sixteenth and 512 bytes (a small archive that outgrows it
// moves little). Copying the frames from a spill file after the manifest was most of a large
// pack's tail. gzip: the spill file.
void reserve_manifest(Packing& pk) {
  if (pk.o.codec != format::Codec::zstd) {
    pk.spill.emplace(pk.r.output);
    return;
  }
  std::vector<Classified> stand_in(pk.items.size());
  std::uint64_t random = 0x9E3779B97F4A7C15ull;
  for (std::size_t i = 0; i < pk.items.size(); ++i) {
    const PackItem& item = pk.items[i];
    Classified& k = stand_in[i];
    k.size = pk.classes[i].streamed ? pk.classes[i].size : item.size;
    random ^= random << 13, random ^= random >> 7, random ^= random << 17;  // xorshift64
    k.hash = random;
    if (item.detect != Detect::none) {
      k.mode = format::RelocMode::binary;
      k.placeholder = item.placeholder;
    }
  }
  PackResult counts = pk.r;
  std::uint64_t estimate = total_size(manifest_frames(pk, make_manifest(pk, stand_in, counts)));
  pk.files_at = estimate + estimate / 16 + 512;
  // For the tests only: a room of this size instead, to exercise what follows a wrong estimate.
  if (const char* room = std::getenv("FERRY_TEST_MANIFEST_ROOM"))
    pk.files_at = std::strtoull(room, nullptr, 10);
  pk.out->seek_to(pk.files_at);
}

// The manifest's frames before the files'. zstd: in the room kept for them, what is left of it a
// skippable frame counted in the last one's entry; a manifest that outgrew the room moves the
// files' frames up first. gzip: written, then the spill file copied after them.
void write_manifest(Packing& pk) {
  std::vector<format::CompressedFrame> frames = manifest_frames(pk, pk.manifest);
  if (pk.spill) {
    pk.write_frames(frames);
    pk.append_spill();
    return;
  }
  std::uint64_t size = total_size(frames);
  std::uint64_t left = pk.files_at - std::min(size, pk.files_at);
  bool fits = size <= pk.files_at && (left == 0 || left >= 8) &&
              frames.back().bytes.size() + left <= format::max_compressed_frame();
  if (!fits) {  // the files' frames moved to just after the manifest's, no padding between
    pk.out->move(pk.files_at, size);
    pk.files_at = size;
    left = 0;
  }
  if (left > 0) frames.back().bytes += format::zstd_padding(left);
  std::uint64_t at = 0;
  for (const auto& f : frames) {
    pk.out->write_at(at, f.bytes);
    at += f.bytes.size();
    pk.compressed_sizes.push_back(static_cast<std::uint32_t>(f.bytes.size()));
    pk.decompressed_sizes.push_back(f.decompressed_size);
  }
  pk.compressed_sizes.insert(pk.compressed_sizes.end(), pk.spilled_compressed.begin(),
                             pk.spilled_compressed.end());
  pk.decompressed_sizes.insert(pk.decompressed_sizes.end(), pk.spilled_decompressed.begin(),
                               pk.spilled_decompressed.end());
}

// Pass 2's unit of work: a run of small items, or one piece (about a frame) of a streamed file.
struct Batch {
  std::size_t begin = 0, end = 0;
  bool piece = false, first = false, last = false;
  std::uint64_t offset = 0, length = 0;
  std::uint64_t tar_bytes = 0;  // about what its tar takes (headers estimated): the chunk's room
  std::vector<std::string> data;
  std::string chunk;
  std::vector<format::CompressedFrame> frames;
};

// An item's tar header.
format::Entry tar_entry(const PackItem& item) {
  format::Entry e;
  e.path = item.target;
  e.type = item.type;
  e.mode = item.mode;
  e.mtime_sec = item.mtime_sec;
  e.mtime_nsec = item.mtime_nsec;
  e.link = item.link;
  return e;
}

// Pass 2's stages, in pipeline order. plan_batch (serial) cuts the items into batches;
// read_batch (parallel) reads and classifies them (a streamed file's piece: reads it);
// encode_batch (serial, in order) tars them; compress_batch (parallel) cuts and compresses frames;
// spill_frames (serial, in order) appends them to OUT, after the manifest's room (gzip: the spill).
class FileWriter {
 public:
  explicit FileWriter(Packing& pk) : m_pk(pk) {}

  std::shared_ptr<Batch> plan_batch(tbb::flow_control& fc) {
    const std::vector<PackItem>& items = m_pk.items;
    const std::vector<Classified>& classes = m_pk.classes;
    if (m_next == items.size()) {
      fc.stop();
      return nullptr;
    }
    auto b = std::make_shared<Batch>();
    b->begin = m_next;
    if (classes[m_next].streamed) {
      b->piece = true;
      b->end = m_next + 1;
      b->offset = m_piece_offset;
      // A piece fills a frame (its header or the tar's padding fit in what k_chunk_target leaves).
      b->length =
          std::min<std::uint64_t>(format::k_chunk_target, classes[m_next].size - m_piece_offset);
      b->first = m_piece_offset == 0;
      b->tar_bytes = b->length + 2048;
      m_piece_offset += b->length;
      b->last = m_piece_offset == classes[m_next].size;
      if (b->last) {
        m_piece_offset = 0;
        ++m_next;
      }
      return b;
    }
    // Whole members up to k_chunk_target (a header and long-name pax records: about 1 KiB each),
    // so that a chunk is one frame; a member larger than the room left starts the next chunk.
    std::uint64_t bytes = 0;
    while (m_next < items.size() && !classes[m_next].streamed) {
      std::uint64_t member = 1024 + (items[m_next].type == format::EntryType::file
                                         ? (items[m_next].size + 511) / 512 * 512
                                         : 0);
      if (bytes > 0 && bytes + member > format::k_chunk_target) break;
      bytes += member;
      ++m_next;
    }
    b->end = m_next;
    b->tar_bytes = bytes;
    return b;
  }

  std::shared_ptr<Batch> read_batch(std::shared_ptr<Batch> b) const {
    const std::vector<PackItem>& items = m_pk.items;
    b->data.resize(b->end - b->begin);
    if (b->piece) {
      const PackItem& item = items[b->begin];
      auto append = [&](std::string_view bytes) { b->data[0].append(bytes); };
      if (const auto& copy = m_pk.classes[b->begin].relocated)
        read_pieces(copy->get(), item.source, append, b->offset, b->length);
      else
        read_file_pieces(item.source, append, b->offset, b->length);
      if (b->data[0].size() != b->length)
        throw Error(fmt::format("{}: changed while packing", item.source));
      m_pk.advance(b->length);
      return b;
    }
    // Each batch has items of its own, so the classes it fills are its own too.
    for (std::size_t i = b->begin; i < b->end; ++i) {
      if (items[i].type != format::EntryType::file) continue;
      b->data[i - b->begin] = load(items[i], m_pk.o.dest_prefix, m_pk.classes[i]);
      m_pk.advance(items[i].size);
    }
    return b;
  }

  std::shared_ptr<Batch> encode_batch(std::shared_ptr<Batch> b) {
    format::TarEncoder& encoder = m_pk.encoder;
    b->chunk.reserve(b->tar_bytes);  // grown by appends, it would be copied over and over
    if (b->piece) {                  // in order: the streamed file's hash is checked at its end
      const PackItem& item = m_pk.items[b->begin];
      if (b->first) {
        encoder.begin_file(tar_entry(item), m_pk.classes[b->begin].size, b->chunk);
        m_streamed_hash.emplace();
      }
      encoder.file_data(b->data[0], b->chunk);
      m_streamed_hash->update(b->data[0]);
      if (b->last) {
        encoder.end_file(b->chunk);
        if (m_streamed_hash->digest() != m_pk.classes[b->begin].hash)
          throw Error(fmt::format("{}: changed while packing", item.source));
      }
      b->data.clear();
      return b;
    }
    for (std::size_t i = b->begin; i < b->end; ++i)
      encoder.add(tar_entry(m_pk.items[i]), b->data[i - b->begin], b->chunk);
    b->data.clear();
    return b;
  }

  std::shared_ptr<Batch> compress_batch(std::shared_ptr<Batch> b) const {
    b->frames = format::compress_chunk(m_pk.o.codec, m_pk.level, b->chunk);
    b->chunk.clear();
    return b;
  }

 private:
  Packing& m_pk;
  std::size_t m_next = 0;                           // the next item to plan
  std::uint64_t m_piece_offset = 0;                 // of the streamed file being planned
  std::optional<util::Xxh3Stream> m_streamed_hash;  // of the streamed file being encoded
};

// Pass 2, pipelined: every item read (a streamed one again), classified, tarred and compressed in
// frames, into OUT after the manifest's room (gzip: to the spill file).
void write_files(Packing& pk) {
  using BatchPtr = std::shared_ptr<Batch>;
  FileWriter w(pk);
  constexpr auto serial = tbb::filter_mode::serial_in_order;
  constexpr auto parallel = tbb::filter_mode::parallel;
  pk.arena->execute([&] {
    tbb::parallel_pipeline(
        std::min<std::size_t>(pk.jobs * 3, format::k_frames_in_flight_max),  // memory: bounded
        tbb::make_filter<void, BatchPtr>(serial, [&](tbb::flow_control& fc) {
          return w.plan_batch(fc);
        }) & tbb::make_filter<BatchPtr, BatchPtr>(parallel, [&](BatchPtr b) {
          return w.read_batch(b);
        }) & tbb::make_filter<BatchPtr, BatchPtr>(serial, [&](BatchPtr b) {
          return w.encode_batch(b);
        }) & tbb::make_filter<BatchPtr, BatchPtr>(parallel, [&](BatchPtr b) {
          return w.compress_batch(b);
        }) & tbb::make_filter<BatchPtr, void>(serial, [&](BatchPtr b) {
          pk.spill_frames(b->frames);
        }));
  });
}

// The tar's end, the seek table, and the rename into place.
void finish_archive(Packing& pk) {
  std::string tail;
  pk.encoder.finish(tail);
  pk.write_frames(format::compress_chunk(pk.o.codec, pk.level, tail));
  pk.out->write(format::frames_trailer(pk.o.codec, pk.compressed_sizes, pk.decompressed_sizes));
  pk.out->commit();
  if (pk.o.progress) pk.o.progress->finish();
}

}  // namespace

PackResult pack(const PackOptions& o) {
  util::Stopwatch clock;
  Packing pk{o};
  double mark = 0;
  auto phase = [&](const char* name) {
    double now = clock.seconds();
    pk.r.phases.emplace_back(name, now - mark);
    mark = now;
  };
  check_options(pk);                     // paths, --dest-prefix, --level
  pk.out.emplace(pk.r.output, o.force);  // refuses an OUT that exists, unless --force
  collect_items(pk);                     // what goes in
  phase("collect");
  classify_large_files(pk);  // pass 1: the records of files read in pieces
  phase("classify");
  reserve_manifest(pk);  // zstd: room for the manifest in OUT; gzip: a spill file beside it
  write_files(pk);       // pass 2: read, classify, tar and compress, after the room (or spilled)
  phase("files");
  build_manifest(pk);  // the records and checksums
  write_manifest(pk);  // the archive's first member, in its room (gzip: then the spill copied)
  phase("manifest");
  finish_archive(pk);  // the tar's end, the seek table, the rename into place
  phase("finish");

  PackResult& r = pk.r;
  r.frames = pk.compressed_sizes.size();
  r.bytes_out = pk.out->written();
  r.format = o.codec == format::Codec::zstd ? "tar.zst" : "tar.gz";
  r.seconds = clock.seconds();
  return std::move(pk.r);
}

}  // namespace ferry::env
