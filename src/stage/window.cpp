#include "stage/window.hpp"

#include <algorithm>

namespace ferry::stage {

std::vector<Unit> cut_units(const format::FrameIndex& index) {
  std::vector<Unit> units;
  for (std::size_t i = 0; i < index.frames.size(); ++i) {
    const format::FrameIndexEntry& f = index.frames[i];
    if (units.empty() || units.back().size + f.compressed_size > k_unit_bytes)
      units.push_back({f.offset, 0, i, i});
    units.back().size += f.compressed_size;  // frames lie back to back
    units.back().end_frame = i + 1;
  }
  return units;
}

ReceiveWindow::ReceiveWindow(const format::FrameIndex& index, std::size_t slots)
    : m_index(index),
      m_units(cut_units(index)),
      m_unit_of(index.frames.size()),
      m_pending(m_units.size()) {
  m_slots = std::max<std::size_t>(1, std::min(slots, m_units.size()));
  for (std::size_t u = 0; u < m_units.size(); ++u) {
    m_pending[u] = m_units[u].end_frame - m_units[u].first_frame;
    m_slot_size = std::max(m_slot_size, m_units[u].size);
    for (std::size_t i = m_units[u].first_frame; i < m_units[u].end_frame; ++i) m_unit_of[i] = u;
  }
  m_slot_size = (m_slot_size + 4095) / 4096 * 4096;  // every slot starts on a page
  // One mapping for all slots (huge pages; its pages are committed as the first units land), and
  // one for dropped units (only committed if extraction fails).
  m_memory = std::make_unique<util::PageBuffer>(std::max<std::uint64_t>(1, m_slots * m_slot_size));
  m_discard = std::make_unique<util::PageBuffer>(std::max<std::uint64_t>(1, m_slots * m_slot_size));
}

bool ReceiveWindow::slot_free(std::size_t u) {
  if (u < m_slots) return true;
  std::lock_guard lock(m_mutex);
  std::size_t before = u - m_slots;
  return m_arrived > before && (m_pending[before] == 0 || m_abandoned);
}

char* ReceiveWindow::slot(std::size_t u) {
  std::lock_guard lock(m_mutex);
  return (m_abandoned ? m_discard : m_memory)->data() + (u % m_slots) * m_slot_size;
}

void ReceiveWindow::arrived(std::size_t u) {
  {
    std::lock_guard lock(m_mutex);
    m_arrived = u + 1;
  }
  m_cv.notify_all();
}

void ReceiveWindow::abandon() {
  {
    std::lock_guard lock(m_mutex);
    m_abandoned = true;
  }
  m_cv.notify_all();
}

format::FrameSource ReceiveWindow::source() {
  format::FrameSource s;
  s.frame = [this](std::size_t i) {
    std::size_t u = m_unit_of[i];
    std::unique_lock lock(m_mutex);
    m_cv.wait(lock, [&] { return m_arrived > u || m_abandoned; });
    if (m_abandoned) throw Error("extraction stopped");  // the pipeline is unwinding
    const format::FrameIndexEntry& f = m_index.frames[i];
    return std::string_view(
        m_memory->data() + (u % m_slots) * m_slot_size + (f.offset - m_units[u].offset),
        f.compressed_size);
  };
  s.released = [this](std::size_t i) {
    std::lock_guard lock(m_mutex);
    --m_pending[m_unit_of[i]];
  };
  s.abandoned = [this] { abandon(); };
  s.size = m_units.empty() ? 0 : m_units.back().offset + m_units.back().size;
  return s;
}

}  // namespace ferry::stage
