#include "env/pieces.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "format/format.hpp"

namespace ferry::env {

void read_pieces(int fd, const std::string& subject,
                 const std::function<void(std::string_view)>& piece, std::uint64_t offset,
                 std::uint64_t size) {
  std::string buffer(static_cast<std::size_t>(std::min<std::uint64_t>(size, format::k_stream_min)),
                     '\0');
  while (size > 0) {
    auto want = static_cast<std::size_t>(std::min<std::uint64_t>(size, buffer.size()));
    ssize_t n = ::pread(fd, buffer.data(), want, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) util::throw_errno(subject, "cannot read", errno);
    if (n == 0) break;
    piece(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
    offset += static_cast<std::uint64_t>(n);
    size -= static_cast<std::uint64_t>(n);
  }
}

void PieceSearch::feed(std::string_view piece) {
  if (m_found || m_needle.empty()) return;
  std::size_t keep = m_needle.size() - 1;
  // Across the boundary: the tail and the piece's first bytes; then inside the piece.
  std::string boundary = m_tail + std::string(piece.substr(0, std::min(piece.size(), keep)));
  m_found = boundary.find(m_needle) != std::string::npos ||
            piece.find(m_needle) != std::string_view::npos;
  std::string joined = piece.size() >= keep ? std::string(piece.substr(piece.size() - keep))
                                            : m_tail + std::string(piece);
  m_tail = joined.substr(joined.size() > keep ? joined.size() - keep : 0);
}

}  // namespace ferry::env
