// Frames: every codec round-trips, the index finds every frame, damage is detected.
#include <gtest/gtest.h>

#include "format/format.hpp"

using namespace ferry::format;

namespace {

std::string make_archive(Codec codec, const std::vector<std::string>& chunks) {
  std::string out;
  std::vector<std::uint32_t> csizes, dsizes;
  for (const auto& chunk : chunks)
    for (auto& f : compress_chunk(codec, codec == Codec::zstd ? 3 : 6, chunk)) {
      out += f.bytes;
      csizes.push_back(static_cast<std::uint32_t>(f.bytes.size()));
      dsizes.push_back(f.decompressed_size);
    }
  return out + frames_trailer(codec, csizes, dsizes);
}

std::vector<std::string> sample_chunks() {
  std::string big;
  for (std::uint64_t i = 0; big.size() < 2 * k_frame_max + (1u << 20); ++i)
    big += "line " + std::to_string(i * 7919 % 100003) + "\n";
  return {"first chunk", std::string(1000, 'z'), big};
}

}  // namespace

class Frames : public ::testing::TestWithParam<Codec> {};

TEST_P(Frames, IndexAndDecodeEveryFrame) {
  auto chunks = sample_chunks();
  std::string archive = make_archive(GetParam(), chunks);
  FrameIndex index = index_frames(archive, "t");
  EXPECT_EQ(index.layout,
            GetParam() == Codec::zstd ? ArchiveLayout::ferry_zstd : ArchiveLayout::ferry_gzip);
  ASSERT_EQ(index.frames.size(), 2u + 3u);  // the chunk over twice k_frame_max: three frames
  std::string joined;
  for (const auto& f : index.frames) joined += decompress_frame(index.layout, archive, f, "t");
  EXPECT_EQ(joined, chunks[0] + chunks[1] + chunks[2]);
}

TEST_P(Frames, TruncationIsDetected) {
  std::string archive = make_archive(GetParam(), sample_chunks());
  std::string cut = archive.substr(0, archive.size() - 100);
  bool detected = false;
  try {
    FrameIndex index = index_frames(cut, "t");
    if (index.layout == ArchiveLayout::foreign) detected = true;  // no seek table: not ours
    for (const auto& f : index.frames) decompress_frame(index.layout, cut, f, "t");
  } catch (const ferry::Error&) {
    detected = true;
  }
  EXPECT_TRUE(detected);
}

TEST_P(Frames, FlippedByteIsDetected) {
  std::string archive = make_archive(GetParam(), sample_chunks());
  archive[archive.size() / 2] ^= 0x20;
  FrameIndex index = index_frames(archive, "t");
  EXPECT_THROW(
      {
        for (const auto& f : index.frames) decompress_frame(index.layout, archive, f, "t");
      },
      ferry::Error);
}

INSTANTIATE_TEST_SUITE_P(Codecs, Frames, ::testing::Values(Codec::zstd, Codec::gzip));

TEST(FramesForeign, PlainBytesAreForeign) {
  EXPECT_EQ(index_frames("just some text that is not compressed", "t").layout,
            ArchiveLayout::foreign);
}

TEST(FramesForeign, CompressionIsToldByTheFirstBytes) {
  // The frames ferry writes start as any gzip member or zstd frame does.
  EXPECT_EQ(compression_of(compress_chunk(Codec::zstd, 3, "data")[0].bytes), Codec::zstd);
  EXPECT_EQ(compression_of(compress_chunk(Codec::gzip, 3, "data")[0].bytes), Codec::gzip);
  EXPECT_EQ(compression_of("\x1f"), std::nullopt);          // too short to tell
  EXPECT_EQ(compression_of("\x28\xb5\x2f"), std::nullopt);  // a zstd magic cut short
  EXPECT_EQ(compression_of("ustar and plain text"), std::nullopt);
}

TEST(FramesPadding, AFrameWithPaddingAfterItDecodesAsTheFrameAlone) {
  // What pack leaves where the manifest's frames came out smaller than the room kept for them:
  // the padding counts in the last manifest frame's entry of the seek table.
  std::vector<CompressedFrame> first = compress_chunk(Codec::zstd, 3, "the manifest's frame");
  std::vector<CompressedFrame> second = compress_chunk(Codec::zstd, 3, std::string(5000, 'f'));
  for (std::size_t pad : {8u, 9u, 4096u}) {
    std::string padded = first[0].bytes + zstd_padding(pad);
    std::string archive = padded + second[0].bytes +
                          frames_trailer(Codec::zstd,
                                         {static_cast<std::uint32_t>(padded.size()),
                                          static_cast<std::uint32_t>(second[0].bytes.size())},
                                         {first[0].decompressed_size, second[0].decompressed_size});
    FrameIndex index = index_frames(archive, "t");
    ASSERT_EQ(index.frames.size(), 2u);
    EXPECT_EQ(decompress_frame(index.layout, archive, index.frames[0], "t"),
              "the manifest's frame");
    EXPECT_EQ(decompress_frame(index.layout, archive, index.frames[1], "t"),
              std::string(5000, 'f'));
    EXPECT_EQ(zstd_padding(pad).size(), pad);
  }
  EXPECT_THROW(zstd_padding(7), ferry::Error);
}

// A zstd frame's window spans the whole frame: a repeat farther back than level 3's own 2 MiB
// window (a file and its copy some MiB apart in one frame) still costs almost nothing.
TEST(FramesWindow, ARepeatFartherBackThanTwoMiBIsFound) {
  std::string block(3u << 20, '\0');
  std::uint64_t x = 88172645463325252ull;  // xorshift: bytes that do not compress on their own
  for (char& c : block) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  std::string twice = block + block;
  ASSERT_LE(twice.size(), k_frame_max);
  std::vector<CompressedFrame> frames = compress_chunk(Codec::zstd, 3, twice);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_LT(frames[0].bytes.size(), block.size() + block.size() / 16);
}
