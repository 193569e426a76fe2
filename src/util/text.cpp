// Text from untrusted sources, made safe to print.
#include <fmt/format.h>

#include "util/util.hpp"

namespace ferry::util {

std::string printable(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  std::size_t i = 0;
  while (i < name.size()) {
    auto c = static_cast<unsigned char>(name[i]);
    if (c >= 0x80) {
      // A valid UTF-8 sequence is kept whole (names in any script print as they are).
      std::size_t len = (c & 0xE0) == 0xC0   ? 2
                        : (c & 0xF0) == 0xE0 ? 3
                        : (c & 0xF8) == 0xF0 ? 4
                                             : 0;
      if (len && i + len <= name.size() && is_valid_utf8(name.substr(i, len))) {
        std::string_view seq = name.substr(i, len);
        // C1 controls (U+0080-U+009F) act on terminals too.
        bool c1 = len == 2 && c == 0xC2 && static_cast<unsigned char>(seq[1]) < 0xA0;
        if (!c1) {
          out.append(seq);
          i += len;
          continue;
        }
        for (char b : seq) out += fmt::format("\\x{:02x}", static_cast<unsigned char>(b));
        i += len;
        continue;
      }
      out += fmt::format("\\x{:02x}", c);
      ++i;
      continue;
    }
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\\': out += "\\\\"; break;
      default:
        if (c < 0x20 || c == 0x7f)
          out += fmt::format("\\x{:02x}", c);
        else
          out += static_cast<char>(c);
    }
    ++i;
  }
  return out;
}

}  // namespace ferry::util
