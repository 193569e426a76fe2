#include "env/conda_unpack_records.hpp"

#include <fmt/format.h>

namespace ferry::env {
namespace {

class Reader {
 public:
  Reader(std::string_view text, const std::string& subject) : m_text(text), m_subject(subject) {}

  void skip_space() {
    while (m_pos < m_text.size() && (m_text[m_pos] == ' ' || m_text[m_pos] == '\n' ||
                                     m_text[m_pos] == '\t' || m_text[m_pos] == '\r'))
      ++m_pos;
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
  // A Python str literal as repr() writes it.
  std::string string() {
    skip_space();
    if (m_pos >= m_text.size() || (m_text[m_pos] != '\'' && m_text[m_pos] != '"')) fail("expected a string");
    char quote = m_text[m_pos++];
    std::string out;
    while (m_pos < m_text.size() && m_text[m_pos] != quote) {
      char c = m_text[m_pos++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (m_pos >= m_text.size()) break;
      char e = m_text[m_pos++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'x': out += static_cast<char>(hex(2)); break;
        case 'u': append_utf8(out, hex(4)); break;
        case 'U': append_utf8(out, hex(8)); break;
        default: out += e;  // \\ \' \"
      }
    }
    if (m_pos >= m_text.size()) fail("unterminated string");
    ++m_pos;
    return out;
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(fmt::format("{}: cannot read conda-unpack's records near byte {}: {}", m_subject, m_pos, why));
  }
  std::size_t m_pos = 0;

 private:
  std::uint32_t hex(int digits) {
    std::uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      if (m_pos >= m_text.size()) fail("bad escape");
      char c = m_text[m_pos++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<std::uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<std::uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<std::uint32_t>(c - 'A' + 10);
      else fail("bad escape");
    }
    return v;
  }
  static void append_utf8(std::string& out, std::uint32_t cp) {
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
  std::string_view m_text;
  const std::string& m_subject;
};

}  // namespace

std::vector<CondaUnpackRecord> parse_conda_unpack_records(std::string_view script,
                                                          const std::string& subject) {
  std::vector<CondaUnpackRecord> records;
  std::size_t start = script.find("_prefix_records = [");
  if (start == std::string_view::npos)
    throw Error(fmt::format("{}: bin/conda-unpack has no _prefix_records list", subject));
  Reader in(script, subject);
  in.m_pos = start + 19;
  while (!in.accept(']')) {
    in.expect('(');
    CondaUnpackRecord rec;
    rec.path = in.string();
    in.expect(',');
    rec.placeholder = in.string();
    in.expect(',');
    std::string mode = in.string();
    in.expect(')');
    in.accept(',');
    if (mode == "binary") rec.mode = format::RelocMode::binary;
    else if (mode == "text") rec.mode = format::RelocMode::text;
    else in.fail(fmt::format("unknown mode '{}'", mode));
    records.push_back(std::move(rec));
  }
  return records;
}

}  // namespace ferry::env
