// util: atomic file writes (the new content whole, the asked mode, hidden until committed, no
// temporary left, and on failure the old file untouched and nothing new beside it) and counts
// from the environment.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "temp_dir.hpp"
#include "util/util.hpp"

namespace fs = std::filesystem;
using namespace ferry;

TEST(WriteFileAtomically, ReplacesWholeWithModeAndLeavesNoTemporary) {
  TempDir d;
  std::string file = (d.path / "hostfile").string();
  util::write_file_atomically(file, "old\n", 0644);
  util::write_file_atomically(file, "node1\nnode2\n", 0600);
  EXPECT_EQ(util::read_file(file), "node1\nnode2\n");
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(d.names(), std::vector<std::string>{"hostfile"});
}

TEST(AtomicFileSet, IsHiddenBesideThePathUntilCommitted) {
  TempDir d;
  std::string file = (d.path / ".condarc").string();
  util::AtomicFileSet set;
  set.add(file, "channels: []\n", 0640);
  std::vector<std::string> names = d.names();
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(names[0].rfind("..condarc.ferry-tmp-", 0), 0u) << names[0];
  EXPECT_FALSE(fs::exists(file));
  EXPECT_EQ(util::read_file((d.path / names[0] / "file").string()), "channels: []\n");
  set.commit();
  EXPECT_EQ(d.names(), std::vector<std::string>{".condarc"});
  EXPECT_EQ(util::read_file(file), "channels: []\n");
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
}

TEST(WriteFileAtomically, FailureLeavesTheOldFileAndNothingBesideIt) {
  TempDir d;
  std::string file = (d.path / "env.sh").string();
  util::write_file_atomically(file, "export A=1\n", 0644);
  // A directory in the way of the rename: the write fails after the temporary was made.
  std::string blocked = (d.path / "sub").string();
  fs::create_directories(fs::path(blocked) / "child");
  EXPECT_THROW(util::write_file_atomically(blocked, "x", 0644), Error);
  EXPECT_EQ(util::read_file(file), "export A=1\n");
  EXPECT_EQ(d.names(), (std::vector<std::string>{"env.sh", "sub"}));
  try {
    util::write_file_atomically((d.path / "missing" / "f").string(), "x", 0644);
    FAIL() << "writing into a missing directory must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((d.path / "missing").string()), std::string::npos)
        << e.what();
  }
}

TEST(ParseDecimal, TakesDigitsOnlyUpToMax) {
  EXPECT_EQ(util::parse_decimal("0", 10), 0u);
  EXPECT_EQ(util::parse_decimal("128", 1u << 24), 128u);
  EXPECT_EQ(util::parse_decimal("16777216", 1u << 24), 1u << 24);
  EXPECT_EQ(util::parse_decimal("16777217", 1u << 24), std::nullopt);
  EXPECT_EQ(util::parse_decimal("99999999999", 1u << 30), std::nullopt);  // past 32 bits
  for (const char* bad : {"", " 5", "5 ", "+5", "-1", "5x", "0x10", "1e3"})
    EXPECT_EQ(util::parse_decimal(bad, 1000), std::nullopt) << "'" << bad << "'";
}
