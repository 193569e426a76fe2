// libFuzzer target for the archive reader: the frame index, frame decoding and the tar parser,
// fed untrusted bytes in arbitrary chunks. Any crash, leak or sanitizer report is a bug; Error is
// the expected outcome for garbage.
#include <cstddef>
#include <cstdint>

#include "format/format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    ferry::format::FrameIndex index = ferry::format::index_frames(bytes, "fuzz");
    if (index.layout != ferry::format::ArchiveLayout::foreign) {
      ferry::format::TarParser parser("fuzz");
      std::vector<ferry::format::Member> out;
      for (const auto& f : index.frames) {
        if (f.decompressed_size > (64u << 20)) return 0;
        parser.feed(std::make_shared<const std::string>(
                        ferry::format::decompress_frame(index.layout, bytes, f, "fuzz")),
                    out);
      }
      parser.finish();
    }
  } catch (const ferry::Error&) {
  }
  // The raw bytes as a tar stream, cut in chunks whose size the first byte picks.
  try {
    std::size_t chunk = size ? 1 + data[0] * 7 : 1;
    ferry::format::TarParser parser("fuzz");
    std::vector<ferry::format::Member> out;
    for (std::size_t pos = 0; pos < size; pos += chunk) {
      parser.feed(std::make_shared<const std::string>(bytes.substr(pos, chunk)), out);
      for (const auto& m : out)
        (void)ferry::format::normalize_member_path(m.entry.path.empty() ? "x" : m.entry.path,
                                                   "fuzz");
      out.clear();
    }
    parser.finish();
  } catch (const ferry::Error&) {
  }
  return 0;
}
