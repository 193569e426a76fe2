// Private to env: the relocation records that conda-pack embeds in bin/conda-unpack.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "format/format.hpp"

namespace ferry::env {

struct CondaUnpackRecord {
  std::string path;         // bytes of the file name, as os.fsencode gives them to open()
  std::string placeholder;  // UTF-8, as conda-unpack encodes it
  format::RelocMode mode = format::RelocMode::text;
};

// The records of one archive, which errors about them name.
struct CondaUnpackRecords {
  std::string archive;
  std::vector<CondaUnpackRecord> list;
};

// Parses `_prefix_records = [ ('path', 'placeholder', 'text'), ... ]` from the script's text. The
// strings are Python literals, which conda-pack writes with repr(): they are read exactly as
// Python reads them (\xNN is the code point U+00NN; a lone surrogate U+DC80-U+DCFF is the raw byte
// that surrogateescape stood it for). Throws Error naming archive when the list is malformed or a
// string is not one that conda-unpack could use.
CondaUnpackRecords parse_conda_unpack_records(std::string_view script, const std::string& archive);

struct Relocator;
// Applies the records to the tree extracted at root (in parallel, jobs threads). A record that
// cannot be applied (its file missing, not a regular file, not writable) is an Error naming the
// archive and the file: the tree would otherwise keep the build placeholder.
void apply_conda_unpack_records(const std::string& root, const CondaUnpackRecords& records,
                                Relocator& relocator, unsigned jobs);

}  // namespace ferry::env
