// util's two ways to commit beside the final place: StagedTree (built whole in a temporary
// sibling under the lock, renamed or swapped in, what killed runs left swept) and AtomicFileSet
// (several files renamed in together; on any failure nothing half-written and no temporary left).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>

#include "temp_dir.hpp"
#include "util/util.hpp"

namespace fs = std::filesystem;
using namespace ferry;

namespace {

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// What a run killed with -9 leaves: a marked TempSibling that no destructor removed.
void leave_dead_temp(const TempDir& t, const std::string& name) {
  util::TempSibling tmp(t.path.string(), name);
  write(tmp.path() + "/half-made", "x");
  std::string dir = fs::path(tmp.path()).parent_path().string();
  ASSERT_EQ(::rename(dir.c_str(), (t / ("." + name + ".ferry-tmp-Dead01")).c_str()), 0);
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(StagedTree, CommitsTheBuiltTreeAndLeavesOnlyItAndTheLock) {
  TempDir t;
  {
    util::StagedTree tree(util::sibling_path(t / "dest"));
    EXPECT_FALSE(tree.staged());
    const std::string& root = tree.stage();
    EXPECT_TRUE(fs::is_empty(root));
    write(root + "/a", "new\n");
    EXPECT_FALSE(fs::exists(t / "dest"));
    tree.commit();
    EXPECT_FALSE(tree.staged());
  }
  EXPECT_EQ(util::read_file(t / "dest/a"), "new\n");
  EXPECT_EQ(t.names(), (std::vector<std::string>{".dest.ferry-lock", "dest"}));
}

TEST(StagedTree, DestroyedUncommittedLeavesNothingOfTheTree) {
  TempDir t;
  {
    util::StagedTree tree(util::sibling_path(t / "dest"));
    write(tree.stage() + "/a", "half\n");
  }
  EXPECT_EQ(t.names(), std::vector<std::string>{".dest.ferry-lock"});
}

TEST(StagedTree, ReplaceSwapsTheOldTreeAwayWhole) {
  TempDir t;
  fs::create_directories(t / "dest");
  write(t / "dest/old", "old\n");
  {
    util::StagedTree tree(util::sibling_path(t / "dest"));
    write(tree.stage() + "/new", "new\n");
    tree.commit(true);
  }
  EXPECT_EQ(t.names("dest"), std::vector<std::string>{"new"});
  EXPECT_EQ(t.names(), (std::vector<std::string>{".dest.ferry-lock", "dest"}));
}

TEST(StagedTree, RenameOntoATreeFailsInOneLineAndKeepsIt) {
  TempDir t;
  fs::create_directories(t / "dest");
  write(t / "dest/old", "old\n");
  {
    util::StagedTree tree(util::sibling_path(t / "dest"));
    write(tree.stage() + "/new", "new\n");
    std::string what = message_of([&] { tree.commit(); });
    EXPECT_EQ(what.rfind(t / "dest" + ": cannot rename into place: ", 0), 0u) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
  EXPECT_EQ(t.names("dest"), std::vector<std::string>{"old"});
  EXPECT_EQ(t.names(), (std::vector<std::string>{".dest.ferry-lock", "dest"}));
}

TEST(StagedTree, SweepsWhatAKilledRunLeftAndStagesAFile) {
  TempDir t;
  leave_dead_temp(t, "out.tar");
  ASSERT_TRUE(fs::exists(t / ".out.tar.ferry-tmp-Dead01/tree/half-made"));
  util::StagedTree tree(util::sibling_path(t / "out.tar"));
  EXPECT_FALSE(fs::exists(t / ".out.tar.ferry-tmp-Dead01"));
  const std::string& file = tree.stage(util::TempSibling::Kind::file);
  EXPECT_FALSE(fs::exists(file));
  write(file, "archive");
  tree.commit();
  EXPECT_EQ(util::read_file(t / "out.tar"), "archive");
  EXPECT_EQ(t.names(), (std::vector<std::string>{".out.tar.ferry-lock", "out.tar"}));
}

TEST(StagedTree, StagesOnceAndCommitsOnlyWhatWasStaged) {
  TempDir t;
  util::StagedTree tree(util::sibling_path(t / "dest"));
  EXPECT_NE(message_of([&] { tree.commit(); }).find("nothing staged"), std::string::npos);
  tree.stage();
  EXPECT_NE(message_of([&] { tree.stage(); }).find("staged twice"), std::string::npos);
  tree.discard();
  EXPECT_FALSE(tree.staged());
  EXPECT_EQ(t.names(), std::vector<std::string>{".dest.ferry-lock"});
}

TEST(AtomicFileSet, CommitsEveryFileAndSymlinkWithNoTemporaryLeft) {
  TempDir t;
  write(t / "old", "before\n");
  {
    util::AtomicFileSet set;
    set.make_directories(t / "a/b");
    set.add(t / "a/b/hostfile", "node1\n", 0600);
    set.add(t / "old", "after\n", 0644);
    set.add_symlink(t / "latest", "a/b/hostfile");
    EXPECT_EQ(util::read_file(t / "old"), "before\n");
    EXPECT_FALSE(fs::exists(t / "a/b/hostfile"));
    set.commit();
  }
  EXPECT_EQ(util::read_file(t / "a/b/hostfile"), "node1\n");
  EXPECT_EQ(util::read_file(t / "old"), "after\n");
  EXPECT_EQ(fs::read_symlink(t / "latest"), "a/b/hostfile");
  struct stat st {};
  ASSERT_EQ(::stat((t / "a/b/hostfile").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(t.names(), (std::vector<std::string>{"a", "latest", "old"}));
  EXPECT_EQ(t.names("a/b"), std::vector<std::string>{"hostfile"});
}

TEST(AtomicFileSet, UncommittedLeavesNothingItMadeAndTheOldFilesAlone) {
  TempDir t;
  write(t / "old", "before\n");
  {
    util::AtomicFileSet set;
    set.make_directories(t / "a/b");
    set.add(t / "a/b/f", "x", 0644);
    set.add(t / "old", "after\n", 0644);
  }
  EXPECT_EQ(util::read_file(t / "old"), "before\n");
  EXPECT_EQ(t.names(), std::vector<std::string>{"old"});
}

TEST(AtomicFileSet, AFailedAddLeavesNothingOfTheSet) {
  TempDir t;
  {
    util::AtomicFileSet set;
    set.add(t / "first", "1", 0644);
    std::string what = message_of([&] { set.add(t / "missing/second", "2", 0644); });
    EXPECT_NE(what.find(t / "missing"), std::string::npos) << what;
  }
  EXPECT_TRUE(t.names().empty());
}

TEST(AtomicFileSet, ARenameFailingPartWayLeavesEarlierFilesWholeAndNoTemporary) {
  TempDir t;
  fs::create_directories(t / "blocked/child");
  {
    util::AtomicFileSet set;
    set.add(t / "first", "whole\n", 0644);
    set.add(t / "blocked", "x", 0644);  // a directory that is not empty: the rename fails
    set.add(t / "third", "never\n", 0644);
    std::string what = message_of([&] { set.commit(); });
    EXPECT_EQ(what.rfind(t / "blocked" + ": cannot rename into place: ", 0), 0u) << what;
  }
  EXPECT_EQ(util::read_file(t / "first"), "whole\n");
  EXPECT_EQ(t.names(), (std::vector<std::string>{"blocked", "first"}));
}

TEST(AtomicFileSet, MakeDirectoriesNamesWhatIsInTheWay) {
  TempDir t;
  write(t / "file", "x");
  util::AtomicFileSet set;
  EXPECT_EQ(message_of([&] { set.make_directories(t / "file/sub", "the module directory"); }),
            t / "file" + ": not a directory");
}

TEST(AtomicFileSet, AKilledRunsTemporaryIsOneTheSweepRemoves) {
  TempDir t;
  {
    util::AtomicFileSet set;
    set.add(t / "env.sh", "export A=1\n", 0644);
    std::vector<std::string> names = t.names();
    ASSERT_EQ(names.size(), 1u);
    ASSERT_EQ(::rename((t / names[0]).c_str(), (t / ".env.sh.ferry-tmp-Dead01").c_str()), 0);
  }
  ASSERT_TRUE(fs::exists(t / ".env.sh.ferry-tmp-Dead01/file"));
  util::sweep_temp_siblings(t.path.string(), "env.sh");
  EXPECT_TRUE(t.names().empty());
}
