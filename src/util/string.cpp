// Splitting, trimming, joining and number parsing: one rule each, for every layer.
#include <fmt/format.h>

#include "util/util.hpp"

namespace ferry::util {

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  while (true) {
    std::size_t end = text.find(separator, start);
    if (end == std::string_view::npos) {
      fields.push_back(text.substr(start));
      return fields;
    }
    fields.push_back(text.substr(start, end - start));
    start = end + 1;
  }
}

std::vector<std::string_view> split_lines(std::string_view text) {
  if (text.empty()) return {};
  if (text.back() == '\n') text.remove_suffix(1);
  return split(text, '\n');
}

std::string_view trim(std::string_view text) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && blank(text.back())) text.remove_suffix(1);
  return text;
}

std::map<std::string, std::string> key_value_lines(std::string_view text, char separator) {
  std::map<std::string, std::string> values;
  for (std::string_view line : split_lines(text)) {
    std::size_t at = line.find(separator);
    if (at != std::string_view::npos)
      values[std::string(trim(line.substr(0, at)))] = std::string(trim(line.substr(at + 1)));
  }
  return values;
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += separator;
    out += parts[i];
  }
  return out;
}

namespace {

// Decimal digits only, at most 20 (the width of 2^64 - 1), without overflow.
std::optional<std::uint64_t> digits_value(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    auto digit = static_cast<std::uint64_t>(c - '0');
    if (n > (UINT64_MAX - digit) / 10) return std::nullopt;
    n = n * 10 + digit;
  }
  return n;
}

}  // namespace

std::optional<unsigned> parse_decimal(std::string_view text, unsigned max) {
  auto n = digits_value(text);
  if (!n || *n > max) return std::nullopt;
  return static_cast<unsigned>(*n);
}

std::uint64_t parse_unsigned(std::string_view text, std::uint64_t min, std::uint64_t max,
                             std::string_view what) {
  auto n = digits_value(text);
  if (!n || *n < min || *n > max)
    throw Error(fmt::format("{}: '{}' is not a whole number from {} to {}", what, printable(text),
                            min, max),
                Error::Kind::usage);
  return *n;
}

std::optional<std::uint64_t> parse_hex64(std::string_view text) {
  if (text.empty() || text.size() > 16) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : text) {
    unsigned digit;
    if (c >= '0' && c <= '9')
      digit = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f')
      digit = static_cast<unsigned>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      digit = static_cast<unsigned>(c - 'A' + 10);
    else
      return std::nullopt;
    n = n << 4 | digit;
  }
  return n;
}

}  // namespace ferry::util
