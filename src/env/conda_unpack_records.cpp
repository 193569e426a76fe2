#include "env/conda_unpack_records.hpp"

#include <fmt/format.h>

namespace ferry::env {
namespace {

// How a decoded Python str becomes the bytes ferry uses.
enum class Encoding {
  filename,  // os.fsencode: UTF-8, and U+DC80-U+DCFF (surrogateescape) back to the bytes 0x80-0xFF
  utf8,      // str.encode('utf-8'): a surrogate cannot be encoded
};

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Reader {
 public:
  Reader(std::string_view text, std::size_t pos, const std::string& archive)
      : m_text(text), m_pos(pos), m_archive(archive) {}

  // Blanks and comments between the tokens of the list.
  void skip_space() {
    while (m_pos < m_text.size()) {
      char c = m_text[m_pos];
      if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f') {
        ++m_pos;
      } else if (c == '#') {
        while (m_pos < m_text.size() && m_text[m_pos] != '\n') ++m_pos;
      } else {
        break;
      }
    }
  }
  bool accept(char c) {
    skip_space();
    if (m_pos < m_text.size() && m_text[m_pos] == c) {
      ++m_pos;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!accept(c)) fail(fmt::format("expected '{}'", c));
  }

  // A single-line Python str literal (what repr() writes), decoded as Python does, then encoded.
  std::string string(Encoding encoding) {
    skip_space();
    if (m_pos >= m_text.size() || (m_text[m_pos] != '\'' && m_text[m_pos] != '"'))
      fail("expected a string");
    char quote = m_text[m_pos++];
    std::string out;
    while (true) {
      if (m_pos >= m_text.size()) fail("unterminated string");
      char c = m_text[m_pos];
      if (c == quote) break;
      if (c == '\n' || c == '\r') fail("unterminated string");
      if (c != '\\') {
        add(out, source_char(), encoding);
        continue;
      }
      if (++m_pos >= m_text.size()) fail("unterminated string");
      char e = m_text[m_pos++];
      switch (e) {
        case '\n': break;  // a line continuation
        case '\\':
        case '\'':
        case '"': out += e; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case 'x': add(out, hex(2), encoding); break;
        case 'u': add(out, hex(4), encoding); break;
        case 'U': add(out, hex(8), encoding); break;
        case 'N': fail("\\N{...} escapes are not supported");
        default:
          if (is_octal(e)) {
            char32_t v = static_cast<char32_t>(e - '0');
            for (int i = 0; i < 2 && m_pos < m_text.size() && is_octal(m_text[m_pos]); ++i)
              v = v * 8 + static_cast<char32_t>(m_text[m_pos++] - '0');
            add(out, v, encoding);
          } else {
            // Python keeps an unknown escape as it is, backslash included.
            out += '\\';
            --m_pos;
          }
      }
    }
    ++m_pos;
    return out;
  }

  [[noreturn]] void fail(const std::string& why) const {
    throw Error(fmt::format("{}: bin/conda-unpack: cannot read its records near byte {}: {}",
                            m_archive, m_pos, why));
  }

 private:
  static bool is_octal(char c) { return c >= '0' && c <= '7'; }

  // Python reads its source as UTF-8 (PEP 3120): anything else is a syntax error.
  char32_t source_char() {
    auto byte = [&](std::size_t i) { return static_cast<unsigned char>(m_text[i]); };
    unsigned char c = byte(m_pos);
    if (c == 0) fail("a NUL byte in the script");
    std::size_t len = c < 0x80             ? 1
                      : (c & 0xE0) == 0xC0 ? 2
                      : (c & 0xF0) == 0xE0 ? 3
                      : (c & 0xF8) == 0xF0 ? 4
                                           : 0;
    if (len == 0 || m_pos + len > m_text.size()) fail("the script is not UTF-8");
    char32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (std::size_t i = 1; i < len; ++i) {
      if ((byte(m_pos + i) & 0xC0) != 0x80) fail("the script is not UTF-8");
      cp = (cp << 6) | (byte(m_pos + i) & 0x3F);
    }
    static constexpr char32_t k_least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < k_least[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      fail("the script is not UTF-8");
    m_pos += len;
    return cp;
  }

  char32_t hex(int digits) {
    char32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      char c = m_pos < m_text.size() ? m_text[m_pos] : '\0';
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<char32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<char32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<char32_t>(c - 'A' + 10);
      else
        fail("truncated \\x, \\u or \\U escape");
      ++m_pos;
    }
    if (v > 0x10FFFF) fail("escape beyond U+10FFFF");
    return v;
  }

  void add(std::string& out, char32_t cp, Encoding encoding) const {
    if (cp >= 0xD800 && cp <= 0xDFFF) {
      if (encoding == Encoding::filename && cp >= 0xDC80 && cp <= 0xDCFF) {
        out += static_cast<char>(cp - 0xDC00);
        return;
      }
      fail(fmt::format("the surrogate U+{:04X} cannot be encoded", static_cast<std::uint32_t>(cp)));
    }
    if (cp == 0) fail("a NUL character in a string");  // neither a file name nor a prefix holds one
    append_utf8(out, cp);
  }

  std::string_view m_text;
  std::size_t m_pos;
  const std::string& m_archive;
};

}  // namespace

CondaUnpackRecords parse_conda_unpack_records(std::string_view script, const std::string& archive) {
  CondaUnpackRecords records{archive, {}};
  static constexpr std::string_view k_start = "_prefix_records = [";
  std::size_t start = script.find(k_start);
  if (start == std::string_view::npos)
    throw Error(fmt::format("{}: bin/conda-unpack has no _prefix_records list", archive));
  Reader in(script, start + k_start.size(), archive);
  while (!in.accept(']')) {
    in.expect('(');
    CondaUnpackRecord rec;
    rec.path = in.string(Encoding::filename);
    in.expect(',');
    rec.placeholder = in.string(Encoding::utf8);
    in.expect(',');
    std::string mode = in.string(Encoding::utf8);
    in.accept(',');
    in.expect(')');
    if (mode == "binary")
      rec.mode = format::RelocMode::binary;
    else if (mode == "text")
      rec.mode = format::RelocMode::text;
    else
      in.fail(fmt::format("unknown mode '{}'", mode));
    if (rec.placeholder.empty()) in.fail("an empty placeholder");
    records.list.push_back(std::move(rec));
    if (!in.accept(',')) {
      in.expect(']');
      break;
    }
  }
  return records;
}

}  // namespace ferry::env
