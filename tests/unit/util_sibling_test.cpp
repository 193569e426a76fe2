// util's building-beside pieces that keep ferry inside DEST and off the user's files: open_beneath
// (also run under a seccomp filter that refuses openat2, see tests/CMakeLists.txt), the lock file,
// the sweep of dead runs' temporaries and absolute_path's "..".
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "temp_dir.hpp"
#include "util/util.hpp"

namespace fs = std::filesystem;
using namespace ferry;

namespace {

void touch(const std::string& path) { std::ofstream(path) << "data\n"; }

}  // namespace

// Under ferry-test-seccomp (FERRY_TEST_OPENAT2 set) the kernel's openat2 must really be refused,
// so that the tests below exercise the walk of O_NOFOLLOW opens.
TEST(OpenBeneath, Openat2IsRefusedWhereTheFilterSaysSo) {
  const char* expected = std::getenv("FERRY_TEST_OPENAT2");
  if (!expected) GTEST_SKIP() << "not under ferry-test-seccomp";
  open_how how{};
  how.flags = O_RDONLY | O_DIRECTORY;
  long fd = ::syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how);
  ASSERT_LT(fd, 0);
  EXPECT_EQ(errno, std::string_view(expected) == "eperm" ? EPERM : ENOSYS);
}

TEST(OpenBeneath, CreatesAndOpensBeneath) {
  TempDir t;
  fs::create_directories(t / "a/b");
  util::UniqueFd root(::open(t.path.c_str(), O_RDONLY | O_DIRECTORY));
  util::UniqueFd fd(util::open_beneath(root.get(), "a/b/new", O_WRONLY | O_CREAT | O_EXCL, 0640));
  ASSERT_TRUE(fd) << std::strerror(errno);
  struct stat st {};
  ASSERT_EQ(::lstat((t / "a/b/new").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST(OpenBeneath, RefusesSymlinksOnTheWayAndAtTheEnd) {
  TempDir t;
  fs::create_directories(t / "inside");
  fs::create_directories(t / "outside");
  fs::create_directory_symlink(t / "outside", t / "inside/dir");
  fs::create_symlink(t / "outside/victim", t / "inside/file");
  util::UniqueFd root(::open((t / "inside").c_str(), O_RDONLY | O_DIRECTORY));
  errno = 0;
  EXPECT_LT(util::open_beneath(root.get(), "dir/new", O_WRONLY | O_CREAT, 0644), 0);
  EXPECT_TRUE(errno == ELOOP || errno == ENOTDIR) << std::strerror(errno);
  errno = 0;
  EXPECT_LT(util::open_beneath(root.get(), "file", O_WRONLY | O_CREAT, 0644), 0);
  EXPECT_EQ(errno, ELOOP) << std::strerror(errno);
  EXPECT_FALSE(fs::exists(t / "outside/new"));
  EXPECT_FALSE(fs::exists(t / "outside/victim"));
}

TEST(OpenBeneath, RefusesNamesThatLeave) {
  TempDir t;
  fs::create_directories(t / "inside/sub");
  util::UniqueFd root(::open((t / "inside").c_str(), O_RDONLY | O_DIRECTORY));
  for (const char* rel : {"../escaped", "sub/../../escaped", "/tmp/escaped"}) {
    errno = 0;
    EXPECT_LT(util::open_beneath(root.get(), rel, O_WRONLY | O_CREAT, 0644), 0) << rel;
    EXPECT_EQ(errno, EXDEV) << rel << ": " << std::strerror(errno);
  }
  EXPECT_FALSE(fs::exists(t / "escaped"));
}

TEST(SiblingLock, RefusesAPlantedSymlinkAndLeavesIt) {
  TempDir t;
  fs::create_symlink(t / "elsewhere", t / ".dest.ferry-lock");
  EXPECT_THROW(util::SiblingLock(t.path.string(), "dest"), Error);
  EXPECT_FALSE(fs::exists(t / "elsewhere"));
  EXPECT_TRUE(fs::is_symlink(t / ".dest.ferry-lock"));
}

TEST(SweepTempSiblings, RemovesOnlyWhatFerryMade) {
  TempDir t;
  std::string parent = t.path.string();
  // The user's own things with names like ferry's.
  touch(t / ".dest.ferry-tmp-ABC123");
  fs::create_directory(t / ".dest.ferry-tmp-mydata");
  touch(t / ".dest.ferry-tmp-mydata/notes");
  fs::create_directory(t / ".dest.ferry-tmp-longer-name");
  touch(t / ".dest.ferry-tmp-longer-name/.ferry-tmp");
  fs::create_directory(t / "marked");
  touch(t / "marked/.ferry-tmp");
  fs::create_directory_symlink(t / "marked", t / ".dest.ferry-tmp-linkxx");
  // What a run killed with -9 leaves.
  std::string dead;
  {
    util::TempSibling tmp(parent, "dest");
    touch(tmp.path() + "/half-made");
    dead = fs::path(tmp.path()).parent_path().string();
    ASSERT_EQ(::rename(dead.c_str(), (t / ".dest.ferry-tmp-Dead01").c_str()), 0);
  }
  util::sweep_temp_siblings(parent, "dest");
  EXPECT_FALSE(fs::exists(t / ".dest.ferry-tmp-Dead01"));
  EXPECT_TRUE(fs::is_regular_file(t / ".dest.ferry-tmp-ABC123"));
  EXPECT_TRUE(fs::is_regular_file(t / ".dest.ferry-tmp-mydata/notes"));
  EXPECT_TRUE(fs::exists(t / ".dest.ferry-tmp-longer-name/.ferry-tmp"));
  EXPECT_TRUE(fs::is_symlink(t / ".dest.ferry-tmp-linkxx"));
  EXPECT_TRUE(fs::exists(t / "marked/.ferry-tmp"));
}

TEST(TempSibling, LeavesNothingAfterTheRenameAndNoMarkerInTheTree) {
  TempDir t;
  {
    util::TempSibling tmp(t.path.string(), "dest");
    EXPECT_TRUE(fs::is_empty(tmp.path()));
    ASSERT_EQ(::rename(tmp.path().c_str(), (t / "dest").c_str()), 0);
    tmp.release();
  }
  EXPECT_TRUE(fs::is_empty(t / "dest"));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(t.path))
    names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"dest"});
}

TEST(AbsolutePath, DotDotStepsUpFromWhereTheKernelIs) {
  TempDir t;
  fs::create_directories(t / "elsewhere/sub");
  fs::create_directory_symlink(t / "elsewhere/sub", t / "link");
  std::string real = fs::canonical(t.path).string();
  EXPECT_EQ(util::absolute_path(t / "link/../dest"), real + "/elsewhere/dest");
  // Symlinks not followed by a ".." stay as named; what does not exist yet is plain.
  EXPECT_EQ(util::absolute_path(t / "link/./x//y/"), t / "link/x/y");
  EXPECT_EQ(util::absolute_path(t / "new/../x"), t / "x");
  EXPECT_EQ(util::absolute_path("/.."), "/");
}

TEST(SiblingPath, RefusesALastPartThatNamesNoEntry) {
  EXPECT_THROW(util::sibling_path("/tmp/x/.."), Error);
  EXPECT_THROW(util::sibling_path("/tmp/x/."), Error);
  EXPECT_THROW(util::sibling_path("/"), Error);
  util::SiblingPath p = util::sibling_path("/tmp/x/dest/");
  EXPECT_EQ(p.parent, "/tmp/x");
  EXPECT_EQ(p.name, "dest");
}
