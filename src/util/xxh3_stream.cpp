// xxh3-64 over a stream of pieces.
#include <xxhash.h>
#if defined(__x86_64__) && __has_include(<xxh_x86dispatch.h>)
#include <xxh_x86dispatch.h>
#endif

#include <new>

#include "util/util.hpp"

namespace ferry::util {

Xxh3Stream::Xxh3Stream() : m_state(XXH3_createState()) {
  if (!m_state) throw std::bad_alloc();
  XXH3_64bits_reset(static_cast<XXH3_state_t*>(m_state));
}

Xxh3Stream::~Xxh3Stream() { XXH3_freeState(static_cast<XXH3_state_t*>(m_state)); }

void Xxh3Stream::update(std::string_view piece) {
#if defined(__x86_64__) && __has_include(<xxh_x86dispatch.h>)
  XXH3_64bits_update_dispatch(static_cast<XXH3_state_t*>(m_state), piece.data(), piece.size());
#else
  XXH3_64bits_update(static_cast<XXH3_state_t*>(m_state), piece.data(), piece.size());
#endif
}

std::uint64_t Xxh3Stream::digest() const {
  return XXH3_64bits_digest(static_cast<const XXH3_state_t*>(m_state));  // the same for any update
}

}  // namespace ferry::util
