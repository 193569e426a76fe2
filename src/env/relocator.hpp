// Private to env: applies relocation records to file contents for one DEST, and collects what
// could not be relocated. Shared by ferry's own archives and conda-pack's records.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "env/env.hpp"

namespace ferry::env {

struct Relocator {
  std::string dest;
  std::mutex mutex;
  std::vector<std::string> too_long;
  std::atomic<std::uint64_t> relocated{0};

  // Applies one record to data; true when out holds new content.
  bool apply(const std::string& path, std::string_view data, format::RelocMode mode,
             const std::string& placeholder, std::string& out) {
    if (placeholder == dest) return false;
    if (mode == format::RelocMode::text) {
      if (!relocation::replace_text(data, placeholder, dest, out)) return false;
      relocation::fix_long_shebang(out);
    } else {
      auto res = mode == format::RelocMode::rpath
                     ? relocation::replace_search_paths(data, placeholder, dest, out)
                     : relocation::replace_binary(data, placeholder, dest, out);
      if (res == relocation::BinaryResult::unchanged) return false;
      if (res == relocation::BinaryResult::too_long) {
        std::lock_guard lock(mutex);
        too_long.push_back(path);
        return false;
      }
    }
    relocated.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
};

}  // namespace ferry::env
