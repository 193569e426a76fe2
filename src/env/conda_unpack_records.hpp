// Private to env: the relocation records that conda-pack embeds in bin/conda-unpack.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "format/format.hpp"

namespace ferry::env {

struct CondaUnpackRecord {
  std::string path;
  std::string placeholder;
  format::RelocMode mode = format::RelocMode::text;
};

// Parses `_prefix_records = [ ('path', 'placeholder', 'text'), ... ]` (Python reprs) from the
// script's text. Throws Error naming subject when the list is malformed.
std::vector<CondaUnpackRecord> parse_conda_unpack_records(std::string_view script,
                                                          const std::string& subject);

struct Relocator;
// Applies the records to the tree extracted at root (in parallel, jobs threads).
void apply_conda_unpack_records(const std::string& root, const std::vector<CondaUnpackRecord>& records,
                                Relocator& relocator, unsigned jobs);

}  // namespace ferry::env
