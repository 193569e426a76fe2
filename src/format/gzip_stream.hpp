// A gzip file inflated by ISA-L (igzip), two to three times zlib's speed, on a thread of its own
// so that inflating overlaps parsing what came before: the reader of foreign .tar.gz archives
// (conda-pack's) hands libarchive the tar bytes from here. Internal to format.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "util/util.hpp"

namespace ferry::format {

class GzipStream {
 public:
  // Maps the file and starts inflating. The file must start with gzip's magic.
  explicit GzipStream(const std::string& path);
  ~GzipStream();
  GzipStream(const GzipStream&) = delete;
  GzipStream& operator=(const GzipStream&) = delete;

  // The next decompressed block, valid until the next call; empty at the end of the last member.
  // Throws Error saying what is wrong with corrupt or truncated data (checksums included); the
  // caller names the archive.
  std::string_view next();
  // Compressed bytes inflated so far (for progress).
  std::uint64_t consumed() const;

  static bool starts_with_magic(std::string_view bytes);

 private:
  void inflate_all();

  static constexpr std::size_t k_block = 1u << 20, k_blocks = 4;
  std::string m_path;
  util::MappedFile m_map;
  std::vector<std::string> m_blocks;
  std::vector<std::size_t> m_sizes;
  mutable std::mutex m_mutex;
  std::condition_variable m_cv;
  std::size_t m_produced = 0, m_consumed_blocks = 0;  // blocks published, blocks handed out
  bool m_done = false, m_stop = false;
  std::string m_error;
  std::uint64_t m_input_used = 0;
  std::thread m_thread;
};

}  // namespace ferry::format
