// Private to env: files too large to hold, read and searched a piece at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>

namespace ferry::env {

// Reads the file open at fd from offset, at most size bytes, in pieces of at most
// format::k_stream_min: piece(bytes) in order. subject names the file in errors.
void read_pieces(int fd, const std::string& subject,
                 const std::function<void(std::string_view)>& piece, std::uint64_t offset = 0,
                 std::uint64_t size = std::numeric_limits<std::uint64_t>::max());

// Whether needle occurs in data that comes in pieces (a match may straddle two).
class PieceSearch {
 public:
  explicit PieceSearch(std::string needle) : m_needle(std::move(needle)) {}
  void feed(std::string_view piece);
  bool found() const { return m_found; }

 private:
  std::string m_needle;
  std::string m_tail;  // the last bytes seen, fewer than the needle's
  bool m_found = false;
};

}  // namespace ferry::env
