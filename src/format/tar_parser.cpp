// An incremental ustar/pax/GNU tar parser for untrusted streams.
#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "format/format.hpp"

namespace ferry::format {
namespace {

constexpr std::size_t k_block = 512;
constexpr std::uint64_t k_max_member_size = 1ULL << 40;  // 1 TiB: beyond any environment file
constexpr std::uint64_t k_max_meta_size = 1u << 20;      // pax and GNU long-name payloads

std::uint64_t round_up(std::uint64_t n) { return (n + k_block - 1) / k_block * k_block; }

std::string field_string(const char* p, std::size_t n) { return std::string(p, strnlen(p, n)); }

// Octal (possibly space/NUL padded) or GNU base-256 numbers.
std::optional<std::uint64_t> field_number(const char* p, std::size_t n) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  if (u[0] & 0x80) {
    if (u[0] != 0x80) return std::nullopt;  // negative base-256
    std::uint64_t v = 0;
    for (std::size_t i = 1; i < n; ++i) {
      if (v >> 56) return std::nullopt;
      v = (v << 8) | u[i];
    }
    return v;
  }
  std::size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\0')) ++i;
  if (i == n) return 0;
  std::uint64_t v = 0;
  bool any = false;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) {
    if (v >> 60) return std::nullopt;
    v = v * 8 + static_cast<std::uint64_t>(p[i] - '0');
    any = true;
  }
  for (; i < n; ++i)
    if (p[i] != ' ' && p[i] != '\0') return std::nullopt;
  return any ? std::optional(v) : std::nullopt;
}

bool checksum_ok(const char* block) {
  auto stored = field_number(block + 148, 8);
  if (!stored) return false;
  std::uint64_t unsigned_sum = 0;
  std::int64_t signed_sum = 0;
  for (std::size_t i = 0; i < k_block; ++i) {
    bool in_field = i >= 148 && i < 156;
    unsigned char c = in_field ? ' ' : static_cast<unsigned char>(block[i]);
    unsigned_sum += c;
    signed_sum += in_field ? ' ' : static_cast<signed char>(block[i]);
  }
  return *stored == unsigned_sum || static_cast<std::int64_t>(*stored) == signed_sum;
}

}  // namespace

void TarParser::feed(std::string_view bytes, const std::shared_ptr<const void>& owner,
                     std::vector<Member>& out) {
  std::size_t pos = 0;
  while (pos < bytes.size() && !m_end) {
    std::size_t avail = bytes.size() - pos;
    if (m_pad > 0) {
      std::size_t skip = static_cast<std::size_t>(std::min<std::uint64_t>(m_pad, avail));
      m_pad -= skip;
      pos += skip;
      m_offset += skip;
      continue;
    }
    if (m_state == State::header) {
      if (m_header.empty() && avail >= k_block) {
        parse_header(bytes.data() + pos, out);
        pos += k_block;
      } else {
        std::size_t take = std::min(avail, k_block - m_header.size());
        m_header.append(bytes.substr(pos, take));
        pos += take;
        if (m_header.size() == k_block) {
          std::string header = std::move(m_header);
          m_header.clear();
          parse_header(header.data(), out);
        }
      }
      m_offset += k_block;  // approximate for split headers; used only in messages
      continue;
    }
    // Payload.
    std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(m_need, avail));
    if (m_payload == Payload::file && m_streaming) {
      // A large file: this chunk's part of it goes out as a piece, pointing into the chunk.
      Member piece;
      piece.entry = m_current.entry;
      piece.data = std::string_view(bytes.data() + pos, take);
      piece.storage = owner;
      piece.offset = m_streamed;
      piece.streamed = true;
      m_streamed += take;
      m_need -= take;
      piece.last = m_need == 0;
      pos += take;
      m_offset += take;
      out.push_back(std::move(piece));
      if (m_need == 0) complete_payload(out);
      continue;
    }
    if (m_payload == Payload::file && !m_assembly && take == m_need) {
      // The whole file lies inside this chunk: point at it.
      m_current.data = std::string_view(bytes.data() + pos, take);
      m_current.storage = owner;
      m_need = 0;
    } else if (m_payload == Payload::file) {
      // Split across chunks: assembled in one buffer of its stated size, whose pages are only
      // committed as bytes arrive (the size is untrusted until they do).
      if (!m_assembly) {
        try {
          m_assembly = std::make_shared<util::PageBuffer>(static_cast<std::size_t>(m_need));
        } catch (const std::bad_alloc&) {
          throw Error(fmt::format("{}: member '{}': {} bytes do not fit in memory", m_subject,
                                  util::printable(m_current.entry.path), m_need));
        }
        m_assembled = 0;
      }
      std::memcpy(m_assembly->data() + m_assembled, bytes.data() + pos, take);
      m_assembled += take;
      m_need -= take;
    } else if (m_payload != Payload::skip) {
      m_buffer.append(bytes.substr(pos, take));
      m_need -= take;
    } else {
      m_need -= take;
    }
    pos += take;
    m_offset += take;
    if (m_need == 0) complete_payload(out);
  }
}

void TarParser::complete_payload(std::vector<Member>& out) {
  m_state = State::header;
  m_pad = m_pad_after;
  m_pad_after = 0;
  switch (m_payload) {
    case Payload::file:
      if (m_streaming) {  // its pieces are out already
        m_streaming = false;
        break;
      }
      if (m_assembly) {
        m_current.data =
            std::string_view(m_assembly->data(), static_cast<std::size_t>(m_assembled));
        m_current.storage = std::move(m_assembly);
        m_assembly.reset();
      }
      out.push_back(std::move(m_current));
      break;
    case Payload::pax: parse_pax(m_buffer); break;
    case Payload::gnu_name: m_next_path = std::string(m_buffer.c_str()); break;
    case Payload::gnu_link: m_next_link = std::string(m_buffer.c_str()); break;
    case Payload::skip: break;
  }
  m_buffer.clear();
  m_current = Member{};
}

void TarParser::parse_header(const char* block, std::vector<Member>& out) {
  if (std::all_of(block, block + k_block, [](char c) { return c == 0; })) {
    m_end = true;  // end-of-archive marker: what follows is padding
    return;
  }
  if (!checksum_ok(block))
    throw Error(
        fmt::format("{}: corrupted tar header near byte {} (bad checksum)", m_subject, m_offset));
  Entry e;
  std::string name = field_string(block, 100);
  if (std::memcmp(block + 257, "ustar\0", 6) == 0) {  // POSIX ustar: name may have a prefix
    std::string prefix = field_string(block + 345, 155);
    if (!prefix.empty()) name = prefix + "/" + name;
  }
  e.path = m_next_path ? *m_next_path : name;
  auto mode = field_number(block + 100, 8);
  auto size = field_number(block + 124, 12);
  auto mtime = field_number(block + 136, 12);
  if (!mode || !size || !mtime)
    throw Error(
        fmt::format("{}: member '{}': malformed tar header", m_subject, util::printable(e.path)));
  e.mode = static_cast<std::uint32_t>(*mode & 07777);
  std::uint64_t payload = m_next_size ? *m_next_size : *size;
  e.mtime_sec = static_cast<std::int64_t>(*mtime);
  if (m_next_mtime) {
    e.mtime_sec = m_next_mtime->first;
    e.mtime_nsec = m_next_mtime->second;
  }
  e.link = m_next_link ? *m_next_link : field_string(block + 157, 100);
  char type = block[156];
  if (payload > k_max_member_size)
    throw Error(fmt::format("{}: member '{}': size {} is too large", m_subject,
                            util::printable(e.path), payload));

  bool meta = type == 'x' || type == 'g' || type == 'L' || type == 'K';
  if (!meta) {
    m_next_path.reset();
    m_next_link.reset();
    m_next_size.reset();
    m_next_mtime.reset();
  } else if (payload > k_max_meta_size) {
    throw Error(fmt::format("{}: extended header of {} bytes near byte {} is too large", m_subject,
                            payload, m_offset));
  }
  m_need = payload;
  m_pad_after = round_up(payload) - payload;
  m_payload = Payload::skip;
  switch (type) {
    case '0':
    case '\0':
    case '7':
      e.type = EntryType::file;
      e.size = payload;
      m_payload = Payload::file;
      break;
    case '1': e.type = EntryType::hardlink; break;
    case '2': e.type = EntryType::symlink; break;
    case '5': e.type = EntryType::directory; break;
    case 'x': m_payload = Payload::pax; break;
    case 'g': break;  // global pax headers carry nothing ferry uses
    case 'L': m_payload = Payload::gnu_name; break;
    case 'K': m_payload = Payload::gnu_link; break;
    case '3':
    case '4':
      throw Error(fmt::format("{}: member '{}': device files are not allowed", m_subject,
                              util::printable(e.path)));
    case '6':
      throw Error(fmt::format("{}: member '{}': FIFOs are not allowed", m_subject,
                              util::printable(e.path)));
    default:
      throw Error(fmt::format("{}: member '{}': unsupported tar member type '{}'", m_subject,
                              e.path, type));
  }
  if (meta) {
    if (m_need == 0)
      complete_payload(out);
    else
      m_state = State::payload;
    return;
  }
  if (m_payload != Payload::file) {
    // Directories and links carry no data; any payload they declare is skipped.
    out.push_back(Member{std::move(e), {}, nullptr});
    if (m_need > 0) m_state = State::payload;
    return;
  }
  m_current.entry = std::move(e);
  m_streaming = m_need > k_stream_min;
  m_streamed = 0;
  if (m_need == 0) {
    out.push_back(std::move(m_current));
    m_current = Member{};
    return;
  }
  m_state = State::payload;
}

// pax's decimal fields are read here rather than by util::parse_decimal: sizes pass 32 bits, an
// empty size record reads 0, and a bad one is an error naming the header's offset.
void TarParser::parse_pax(std::string_view records) {
  while (!records.empty()) {
    std::size_t space = records.find(' ');
    if (space == std::string_view::npos || space == 0) break;
    std::uint64_t length = 0;
    for (std::size_t i = 0; i < space; ++i) {
      if (records[i] < '0' || records[i] > '9' || length > (1u << 24))
        throw Error(fmt::format("{}: malformed pax header near byte {}", m_subject, m_offset));
      length = length * 10 + static_cast<std::uint64_t>(records[i] - '0');
    }
    if (length <= space + 1 || length > records.size() || records[length - 1] != '\n')
      throw Error(fmt::format("{}: malformed pax header near byte {}", m_subject, m_offset));
    std::string_view record = records.substr(space + 1, length - space - 2);
    records.remove_prefix(length);
    std::size_t eq = record.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = record.substr(0, eq);
    std::string_view value = record.substr(eq + 1);
    if (key == "path") {
      m_next_path = std::string(value);
    } else if (key == "linkpath") {
      m_next_link = std::string(value);
    } else if (key == "size") {
      std::uint64_t v = 0;
      for (char c : value) {
        if (c < '0' || c > '9' || v > (1ULL << 50))
          throw Error(fmt::format("{}: malformed pax size near byte {}", m_subject, m_offset));
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
      }
      m_next_size = v;
    } else if (key == "mtime") {
      std::int64_t sec = 0;
      std::uint32_t nsec = 0;
      std::size_t dot = value.find('.');
      std::string_view whole = value.substr(0, dot);
      bool negative = !whole.empty() && whole[0] == '-';
      if (negative) whole.remove_prefix(1);
      bool readable = !whole.empty();
      for (char c : whole) {
        if (c < '0' || c > '9' || sec > (1LL << 50)) {
          readable = false;  // a mtime we cannot read is ignored; the header's other records stay
          break;
        }
        sec = sec * 10 + (c - '0');
      }
      if (!readable) continue;
      if (negative) sec = -sec;
      if (dot != std::string_view::npos) {
        std::string_view frac = value.substr(dot + 1, 9);
        std::uint32_t scale = 100000000;
        for (char c : frac) {
          if (c < '0' || c > '9') break;
          nsec += static_cast<std::uint32_t>(c - '0') * scale;
          scale /= 10;
        }
      }
      m_next_mtime = {sec, nsec};
    }
  }
}

void TarParser::finish() const {
  if (m_state == State::payload || !m_header.empty())
    throw Error(fmt::format("{}: archive is truncated (stream ends inside a member)", m_subject));
  if (!m_end)
    throw Error(fmt::format("{}: archive is truncated (no end-of-archive marker)", m_subject));
}

}  // namespace ferry::format
