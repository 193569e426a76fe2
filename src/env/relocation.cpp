#include <algorithm>
#include <cstring>

#include "env/env.hpp"

namespace ferry::env::relocation {
namespace {

std::size_t find_bytes(std::string_view data, std::string_view needle, std::size_t from) {
  if (needle.empty() || from >= data.size()) return std::string_view::npos;
  const void* hit = ::memmem(data.data() + from, data.size() - from, needle.data(), needle.size());
  return hit ? static_cast<std::size_t>(static_cast<const char*>(hit) - data.data())
             : std::string_view::npos;
}

}  // namespace

bool replace_text(std::string_view data, std::string_view from, std::string_view to,
                  std::string& out) {
  std::size_t hit = find_bytes(data, from, 0);
  if (hit == std::string_view::npos) return false;
  out.clear();
  out.reserve(data.size() + 64);
  std::size_t pos = 0;
  while (hit != std::string_view::npos) {
    out.append(data.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
    hit = find_bytes(data, from, pos);
  }
  out.append(data.substr(pos));
  return true;
}

BinaryResult replace_binary(std::string_view data, std::string_view from, std::string_view to,
                            std::string& out) {
  std::size_t hit = find_bytes(data, from, 0);
  if (hit == std::string_view::npos) return BinaryResult::unchanged;
  out.clear();
  out.reserve(data.size());
  std::size_t pos = 0;
  bool changed = false;
  while (hit != std::string_view::npos) {
    std::size_t nul = data.find('\0', hit + from.size());
    if (nul == std::string_view::npos) break;  // no terminating NUL: conda leaves it alone
    if (to.size() > from.size()) return BinaryResult::too_long;
    // The C string [hit, nul): replace every occurrence inside it, then pad after the NUL.
    out.append(data.substr(pos, hit - pos));
    append_padded_cstring(data.substr(hit, nul - hit), from, to, out);
    pos = nul + 1;  // the padding made up for the bytes the shorter strings gave back
    changed = true;
    hit = find_bytes(data, from, pos);
  }
  if (!changed) return BinaryResult::unchanged;
  out.append(data.substr(pos));
  return BinaryResult::replaced;
}

void append_padded_cstring(std::string_view cstring, std::string_view from, std::string_view to,
                           std::string& out) {
  std::size_t count = 0;
  std::size_t p = 0;
  for (std::size_t q = find_bytes(cstring, from, 0); q != std::string_view::npos;
       q = find_bytes(cstring, from, p)) {
    out.append(cstring.substr(p, q - p));
    out.append(to);
    p = q + from.size();
    ++count;
  }
  out.append(cstring.substr(p));
  out.push_back('\0');
  out.append((from.size() - to.size()) * count, '\0');
}

bool fix_long_shebang(std::string& data) {
  if (data.size() < 3 || data[0] != '#' || data[1] != '!') return false;
  std::size_t eol = data.find('\n');
  std::size_t line_end = eol == std::string::npos ? data.size() : eol;
  std::string_view line(data.data(), line_end);
  // #! [spaces] /exe-with-escaped-spaces [opts]  (conda's SHEBANG_REGEX)
  std::size_t p = 2;
  while (p < line.size() && line[p] == ' ') ++p;
  if (p >= line.size() || line[p] != '/') return false;
  std::size_t exe_start = p;
  while (p < line.size()) {
    if (line[p] == '\\' && p + 1 < line.size() && line[p + 1] == ' ') {
      p += 2;
      continue;
    }
    if (line[p] == ' ' || line[p] == '\t' || line[p] == '\r') break;
    ++p;
  }
  std::string_view exe = line.substr(exe_start, p - exe_start);
  std::string_view opts = line.substr(p);
  bool escaped_space = exe.find("\\ ") != std::string_view::npos;
  if (line.size() <= 127 && !escaped_space) return false;
  std::string name(exe.substr(exe.rfind('/') + 1));
  bool is_python = name.starts_with("python") &&
                   std::all_of(name.begin() + 6, name.end(),
                               [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
  std::string replacement;
  if (is_python && !escaped_space) {
    // The trampoline: sh runs the exact interpreter; python sees a harmless string literal.
    std::string_view trimmed = opts;
    while (!trimmed.empty() && (trimmed.back() == '\r')) trimmed.remove_suffix(1);
    replacement = "#!/bin/sh\n'''exec' \"" + std::string(exe) + "\"" + std::string(trimmed) +
                  " \"$0\" \"$@\" #'''";
  } else {
    replacement = "#!/usr/bin/env " + name + std::string(opts);
  }
  data.replace(0, line_end, replacement);
  return true;
}

}  // namespace ferry::env::relocation
