// The receiving window of ferry stage's MPI path, without MPI: units cover every frame, a slot is
// reused only after its unit's frames are decoded, frame() waits for its unit, and a failed
// extraction frees everything without deadlocking the broadcast.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <future>
#include <numeric>

#include "stage/window.hpp"

using namespace ferry;
using namespace std::chrono_literals;

namespace {

// Frames of the given compressed sizes, back to back.
format::FrameIndex frames_of(const std::vector<std::uint32_t>& sizes) {
  format::FrameIndex index;
  index.layout = format::ArchiveLayout::ferry_zstd;
  std::uint64_t offset = 0;
  for (std::uint32_t size : sizes) {
    index.frames.push_back({offset, size, size * 3});
    offset += size;
  }
  return index;
}

constexpr std::uint32_t MiB = 1u << 20;

}  // namespace

TEST(CutUnits, WholeFramesUpToTheUnitSizeAndLargeFramesAlone) {
  auto index = frames_of({MiB, MiB, MiB, MiB, MiB, 9 * MiB, 100, 200});
  auto units = stage::cut_units(index);
  ASSERT_EQ(units.size(), 4u);
  EXPECT_EQ(units[0].first_frame, 0u);
  EXPECT_EQ(units[0].end_frame, 4u);  // four 1 MiB frames fill 4 MiB
  EXPECT_EQ(units[1].end_frame, 5u);
  EXPECT_EQ(units[2].first_frame, 5u);  // the 9 MiB frame alone
  EXPECT_EQ(units[2].size, 9u * MiB);
  EXPECT_EQ(units[3].end_frame, 8u);
  std::uint64_t covered = 0;
  for (const auto& u : units) {
    EXPECT_EQ(u.offset, covered) << "units lie back to back";
    covered += u.size;
  }
  EXPECT_EQ(covered, 14u * MiB + 300);
}

TEST(ReceiveWindow, ReusesASlotOnlyAfterItsUnitIsDecoded) {
  auto index = frames_of(std::vector<std::uint32_t>(6, 3 * MiB));  // one frame per unit
  stage::ReceiveWindow w(index, 2);
  ASSERT_EQ(w.units().size(), 6u);
  EXPECT_TRUE(w.slot_free(0));
  EXPECT_TRUE(w.slot_free(1));
  EXPECT_EQ(w.slot(2), w.slot(0));
  EXPECT_NE(w.slot(1), w.slot(0));
  EXPECT_FALSE(w.slot_free(2)) << "unit 0 has not even arrived";
  std::memset(w.slot(0), 'a', 3 * MiB);
  w.arrived(0);
  EXPECT_FALSE(w.slot_free(2)) << "unit 0 arrived but is not decoded";
  auto source = w.source();
  std::string_view f0 = source.frame(0);
  EXPECT_EQ(f0.size(), 3u * MiB);
  EXPECT_EQ(f0.front(), 'a');
  source.released(0);
  EXPECT_TRUE(w.slot_free(2));
  EXPECT_FALSE(w.slot_free(3));
}

TEST(ReceiveWindow, FrameWaitsForItsUnit) {
  auto index = frames_of({MiB, MiB, 3 * MiB, MiB});  // units: frames {0,1} and {2,3}
  stage::ReceiveWindow w(index, 8);
  auto source = w.source();
  auto later = std::async(std::launch::async, [&] { return source.frame(2); });
  w.arrived(0);
  EXPECT_EQ(later.wait_for(50ms), std::future_status::timeout) << "frame 2 is in unit 1";
  std::memcpy(w.slot(1), "frame two", 9);
  w.arrived(1);
  ASSERT_EQ(later.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(later.get().substr(0, 9), "frame two");
  EXPECT_EQ(source.frame(1).data(), w.slot(0) + MiB)
      << "frame 1 sits after frame 0 in unit 0's slot";
}

TEST(ReceiveWindow, AbandonWakesWaitersAndDropsLaterUnitsElsewhere) {
  auto index = frames_of(std::vector<std::uint32_t>(4, 3 * MiB));
  stage::ReceiveWindow w(index, 1);
  auto source = w.source();
  char* real_slot = w.slot(0);
  auto waiting = std::async(std::launch::async, [&] { return source.frame(1); });
  w.arrived(0);  // unit 0 arrives, nobody finishes decoding it: the extraction failed
  EXPECT_FALSE(w.slot_free(1));
  source.abandoned();
  ASSERT_EQ(waiting.wait_for(5s), std::future_status::ready) << "a waiting frame() must not hang";
  EXPECT_THROW(waiting.get(), Error);
  EXPECT_THROW(source.frame(0), Error) << "nothing is handed out after abandon, arrived or not";
  EXPECT_TRUE(w.slot_free(1)) << "the broadcast goes on, dropping the bytes";
  EXPECT_NE(w.slot(1), real_slot) << "a decoder still reading unit 0 must not see its bytes change";
  EXPECT_FALSE(w.slot_free(2)) << "unit 1 has not arrived: its slot is still being received into";
}
