// The receiving side of a streamed archive (the MPI path of ferry stage): the archive goes out in
// units of whole frames, and a receiving node holds a window of a few units, never all of it.
// No MPI here: ferry-mpi posts the receives; this decides where they land and when a buffer may
// be reused.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "format/format.hpp"

namespace ferry::stage {

// Units: large enough for the bandwidth of a large MPI broadcast, small enough that extraction
// starts early and runs alongside the next units.
constexpr std::uint64_t k_unit_bytes = 4u << 20;
// Units a receiving node holds at once: 32 MiB whatever the archive's size (a frame that does not
// compress makes a unit of up to k_frame_max, and the window 64 MiB).
constexpr std::size_t k_window_units = 8;

// Consecutive frames, together at most k_unit_bytes (or one larger frame alone).
struct Unit {
  std::uint64_t offset = 0, size = 0;
  std::size_t first_frame = 0, end_frame = 0;
};
std::vector<Unit> cut_units(const format::FrameIndex& index);

// Unit u lands in slot u % slots, which is free again once every frame of unit u - slots has been
// decoded. Thread-safe: the broadcast thread calls slot_free/slot/arrived, the extraction threads
// go through source().
class ReceiveWindow {
 public:
  // Throws std::bad_alloc when the window cannot be mapped.
  ReceiveWindow(const format::FrameIndex& index, std::size_t slots);

  const std::vector<Unit>& units() const { return m_units; }
  // May unit u be received now? Its slot's previous unit must have arrived and been decoded.
  // Once extraction gave up, units are still received (the broadcast is collective) but land in
  // a discard area that nothing reads, so a decoder still finishing never sees its bytes change.
  bool slot_free(std::size_t u);
  char* slot(std::size_t u);
  void arrived(std::size_t u);  // units [0, u] are all here
  // Extraction stopped: frame() waits no more and hands out nothing (it throws).
  void abandon();
  // Frames for UnpackSession::extract: frame(i) waits for its unit; released(i) counts it down.
  format::FrameSource source();

 private:
  format::FrameIndex m_index;
  std::vector<Unit> m_units;
  std::vector<std::size_t> m_unit_of;  // frame -> unit
  std::vector<std::size_t> m_pending;  // unit -> frames not decoded yet
  std::size_t m_slots = 0;
  std::uint64_t m_slot_size = 0;
  std::unique_ptr<util::PageBuffer> m_memory;   // all slots, one mapping
  std::unique_ptr<util::PageBuffer> m_discard;  // the same, for units received after abandon()
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::size_t m_arrived = 0;  // units [0, m_arrived) are here
  bool m_abandoned = false;
};

}  // namespace ferry::stage
