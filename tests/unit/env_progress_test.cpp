// Progress as pack and unpack report it to their sink: one step each, begun once, advanced as the
// work is done (unpack per frame, so a bar moves during a long unpack), adding up to the total.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "env/env.hpp"
#include "format/format.hpp"
#include "temp_dir.hpp"

namespace env = ferry::env;
namespace util = ferry::util;

namespace {

struct RecordingSink final : util::ProgressSink {
  std::mutex mutex;
  std::vector<std::string> labels;
  std::uint64_t total = 0;
  std::vector<std::uint64_t> advances;
  int finished = 0;

  void begin(std::string_view label, std::uint64_t t) override {
    std::lock_guard lock(mutex);
    labels.emplace_back(label);
    total = t;
  }
  void advance(std::uint64_t amount) override {
    std::lock_guard lock(mutex);
    advances.push_back(amount);
  }
  void finish() override {
    std::lock_guard lock(mutex);
    ++finished;
  }
  std::uint64_t sum() const {
    std::uint64_t s = 0;
    for (std::uint64_t a : advances) s += a;
    return s;
  }
};

// A prefix of eight 1 MiB files that do not compress: its archive has several frames.
void make_prefix(const std::string& dir) {
  std::filesystem::create_directories(dir);
  std::mt19937_64 random(42);
  for (int i = 0; i < 8; ++i) {
    std::string data(1u << 20, '\0');
    for (char& c : data) c = static_cast<char>(random());
    std::ofstream(dir + "/file" + std::to_string(i), std::ios::binary) << data;
  }
  std::string big(5u << 20, '\0');  // past format::k_stream_min: read in pieces
  for (char& c : big) c = static_cast<char>(random());
  std::ofstream(dir + "/big", std::ios::binary) << big;
}

// Options to pack that prefix, made in tmp, into tmp/env.tar.zst.
env::PackOptions packable(const TempDir& tmp) {
  make_prefix(tmp / "prefix");
  env::PackOptions p;
  p.prefix = tmp / "prefix";
  p.output = tmp / "env.tar.zst";
  return p;
}

}  // namespace

TEST(Progress, PackReportsEachReadAndUnpackEachFrame) {
  TempDir tmp;
  RecordingSink packed;
  env::PackOptions p = packable(tmp);
  p.jobs = 2;
  p.progress = &packed;
  env::PackResult pr = env::pack(p);
  ASSERT_GE(pr.frames, 4u);
  EXPECT_EQ(packed.labels, std::vector<std::string>{"pack"});
  // Each file read once, to classify and compress it; one too large to hold, twice (its record
  // first, then its pieces).
  std::uint64_t large = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(tmp / "prefix"))
    if (e.is_regular_file() && !e.is_symlink() && e.file_size() > ferry::format::k_stream_min)
      large += e.file_size();
  EXPECT_GT(large, 0u);
  EXPECT_EQ(packed.total, pr.bytes + large);
  EXPECT_EQ(packed.sum(), packed.total);
  EXPECT_EQ(packed.finished, 1);

  RecordingSink unpacked;
  env::UnpackOptions u;
  u.archive = tmp / "env.tar.zst";
  u.dest = tmp / "out";
  u.jobs = 2;
  u.progress = &unpacked;
  env::unpack(u);
  EXPECT_EQ(unpacked.labels, std::vector<std::string>{"unpack"});
  EXPECT_EQ(unpacked.total, std::filesystem::file_size(tmp / "env.tar.zst"));
  // One advance per frame as it is decoded (and one for the seek table), not one at the end.
  EXPECT_GE(unpacked.advances.size(), pr.frames);
  EXPECT_EQ(unpacked.sum(), unpacked.total);
  EXPECT_EQ(unpacked.finished, 1);
}

TEST(Progress, NoSinkIsSilent) {
  TempDir tmp;
  env::PackOptions p = packable(tmp);
  EXPECT_EQ(p.progress, nullptr);  // the default: nobody listens
  testing::internal::CaptureStderr();
  env::pack(p);
  env::UnpackOptions u;
  u.archive = p.output;
  u.dest = tmp / "out";
  env::unpack(u);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}
