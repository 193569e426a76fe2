// The relocation rules over a stream of pieces, for files too large to hold in memory.
#include <cstring>

#include <fmt/format.h>

#include "env/env.hpp"

namespace ferry::env::relocation {
namespace {

// The first line may need a new #! (fix_long_shebang); it is held until whole, up to this much
// (a longer first line is no interpreter line Linux would run anyway).
constexpr std::size_t k_head_max = 64u << 10;

}  // namespace

StreamReplacer::StreamReplacer(Rule rule, std::string from, std::string to, std::string subject)
    : m_rule(rule), m_from(std::move(from)), m_to(std::move(to)), m_subject(std::move(subject)) {}

void StreamReplacer::feed(std::string_view piece, std::string& out) {
  if (m_from.empty()) {  // nothing to find (the whole-buffer rules say so too)
    out.append(piece);
    return;
  }
  m_pending.append(piece);
  drain(out, false);
}

void StreamReplacer::finish(std::string& out) {
  if (m_from.empty()) return;
  drain(out, true);  // at the end the first line is whole: drain has written it out
}

void StreamReplacer::drain(std::string& out, bool at_end) {
  std::string& sink = (m_rule == Rule::text && !m_head_done) ? m_head : out;
  std::size_t pos = 0;
  const std::size_t keep = m_from.size() - 1;  // a match may start in the last keep bytes
  while (true) {
    if (!m_in_run) {
      std::string_view rest = std::string_view(m_pending).substr(pos);
      const void* hit = ::memmem(rest.data(), rest.size(), m_from.data(), m_from.size());
      if (!hit) {
        std::size_t safe = at_end ? rest.size() : (rest.size() > keep ? rest.size() - keep : 0);
        sink.append(rest.substr(0, safe));
        pos += safe;
        break;
      }
      std::size_t at = static_cast<std::size_t>(static_cast<const char*>(hit) - rest.data());
      sink.append(rest.substr(0, at));
      pos += at;
      if (m_rule == Rule::text) {
        sink.append(m_to);
        pos += m_from.size();
        m_changed = true;
        continue;
      }
      m_in_run = true;
    }
    // Binary: m_pending[pos...] starts at an occurrence; its C string ends at the next NUL.
    std::string_view run = std::string_view(m_pending).substr(pos);
    std::size_t nul = run.find('\0', m_from.size());
    if (nul == std::string_view::npos) {
      if (at_end) {  // no NUL before the end: left alone, as conda does
        sink.append(run);
        pos += run.size();
        m_in_run = false;
      } else if (run.size() > k_max_run) {
        throw Error(
            fmt::format("{}: a string of over {} MiB holds the prefix: ferry does not "
                        "relocate such a file",
                        m_subject, k_max_run >> 20));
      }
      break;
    }
    m_in_run = false;
    if (m_to.size() > m_from.size()) {  // cannot fit: the file stays as it is (caller warns)
      m_too_long = true;
      sink.append(run.substr(0, nul + 1));
      pos += nul + 1;
      continue;
    }
    append_padded_cstring(run.substr(0, nul), m_from, m_to, sink);
    pos += nul + 1;
    m_changed = true;
  }
  m_pending.erase(0, pos);
  bool line_whole = m_head.find('\n') != std::string::npos || at_end;
  if (m_rule == Rule::text && !m_head_done && (line_whole || m_head.size() > k_head_max)) {
    if (line_whole && m_changed) fix_long_shebang(m_head);  // as Relocator: only after a match
    out.append(m_head);
    m_head.clear();
    m_head_done = true;
  }
}

}  // namespace ferry::env::relocation
