// libFuzzer target for the parser of the relocation records that conda-pack writes (Python
// reprs) into an untrusted archive's bin/conda-unpack: garbage must raise Error, never crash or
// read past the script.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "env/conda_unpack_records.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // libFuzzer's buffer is exactly size bytes: ASan sees any read past the script's end.
  std::string_view script(reinterpret_cast<const char*>(data), size);
  try {
    auto records = ferry::env::parse_conda_unpack_records(script, "fuzz");
    for (const auto& r : records.list)
      if (r.mode != ferry::format::RelocMode::text && r.mode != ferry::format::RelocMode::binary)
        std::abort();
  } catch (const ferry::Error&) {
  }
  return 0;
}
