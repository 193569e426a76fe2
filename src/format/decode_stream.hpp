// A compressed file decoded on a thread of its own, so that decoding overlaps parsing what came
// before: the reader of foreign .tar.gz and .tar.zst archives (conda-pack's) hands libarchive the
// tar bytes from here. gzip is inflated by ISA-L (igzip), two to three times zlib's speed; zstd
// by libzstd. Internal to format.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "format/format.hpp"
#include "util/util.hpp"

namespace ferry::format {

class DecodeStream {
 public:
  // Maps the file and starts decoding it with codec.
  DecodeStream(const std::string& path, Codec codec);
  ~DecodeStream();
  DecodeStream(const DecodeStream&) = delete;
  DecodeStream& operator=(const DecodeStream&) = delete;

  // The next decompressed block, valid until the next call; empty at the end of the last member
  // or frame. Throws Error saying what is wrong with corrupt or truncated data (checksums
  // included); the caller names the archive.
  std::string_view next();
  // Compressed bytes decoded so far (for progress).
  std::uint64_t consumed() const;
  // How it is decoded, for messages: "gzip, ISA-L" or "zstd".
  const char* description() const;

 private:
  void inflate_gzip();
  void decode_zstd();
  // Waits until block's slot in the ring is free; false when the reader is gone.
  bool wait_for_slot(std::size_t block);
  // Hands the reader what the decoder made of a block; true when that ended the stream.
  bool publish(std::size_t& block, std::size_t produced, std::uint64_t input_used,
               const std::string& error, bool end);

  static constexpr std::size_t k_block = 1u << 20, k_blocks = 4;
  Codec m_codec;
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
