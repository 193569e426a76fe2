// libFuzzer target for ferry's frame index (the zstd seek table, or the gzip members' FEXTRA
// sizes and ISIZE) and the decoding of the frames it finds. index_frames must refuse every frame
// claim over k_frame_max before anything allocates for it (a claim is an allocation: a crash
// here), and decoding must raise Error on garbage.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "format/format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace format = ferry::format;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  format::FrameIndex index;
  try {
    index = format::index_frames(bytes, "fuzz");
  } catch (const ferry::Error&) {
    return 0;
  }
  std::uint64_t end = 0;
  for (const auto& f : index.frames) {
    if (f.decompressed_size > format::k_frame_max) std::abort();
    if (f.offset < end || f.offset + f.compressed_size > size) std::abort();  // frames in the file
    end = f.offset + f.compressed_size;
    try {
      std::string out = format::decompress_frame(index.layout, bytes, f, "fuzz");
      if (out.size() != f.decompressed_size) std::abort();
    } catch (const ferry::Error&) {
    }
  }
  return 0;
}
