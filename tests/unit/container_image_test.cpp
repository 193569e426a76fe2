// Images: /ch/environment's lines both ways, and the ch-run line ferry run builds (the host's
// Python variables unset before the image's environment, the working directory bound, bind
// targets made, bad input named).
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "container/container.hpp"

namespace ferry::container {
namespace {

namespace fs = std::filesystem;

TEST(ChEnvironment, RoundTrip) {
  auto vars = parse_environment("PATH=/opt/env/bin:/usr/bin\nQUOTED='a b'\nEMPTY=\n\nnoequals\n");
  EXPECT_EQ(vars.at("PATH"), "/opt/env/bin:/usr/bin");
  EXPECT_EQ(vars.at("QUOTED"), "a b");  // ch-run strips single quotes
  EXPECT_EQ(vars.at("EMPTY"), "");
  EXPECT_EQ(vars.size(), 3U);
  EXPECT_EQ(format_environment({{"B", "2"}, {"A", "1"}}), "A=1\nB=2\n");
  EXPECT_THROW(format_environment({{"A", "two\nlines"}}), Error);
}

class RunLine : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-image-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root = tmpl;
    image = root + "/image";
    fs::create_directories(image + "/ch");
    fs::create_directories(image + "/usr/bin");
    util::write_file_atomically(image + "/ch/environment", "PATH=/opt/env/bin:/usr/bin\n", 0644);
    fs::create_directories(root + "/work/data");
  }
  void TearDown() override { fs::remove_all(root); }
  RunOptions options() {
    RunOptions o;
    o.image = image;
    o.command = {"python", "-c", "pass"};
    o.ch_run = "sh";  // any program on PATH: the line is only built here
    return o;
  }
  std::string root, image;
};

TEST_F(RunLine, UnsetsThenSetsThenBinds) {
  RunOptions o = options();
  o.binds = {root + "/work/data:/data"};
  std::vector<std::string> argv = run_argv(o, root + "/work");
  auto at = [&](const std::string& word) {
    return std::find(argv.begin(), argv.end(), word) - argv.begin();
  };
  EXPECT_EQ(argv.front(), "sh");
  // The host's Python variables go before the image's environment applies, so that one the
  // image sets (CONDA_PREFIX) stays.
  EXPECT_LT(at("--unset-env=PYTHONPATH"), at("--set-env"));
  EXPECT_LT(at("--unset-env=CONDA_*"), at("--set-env"));
  EXPECT_LT(at("--unset-env=LD_LIBRARY_PATH"), at("--set-env"));
  EXPECT_LT(at("--set-env"), at("--bind=" + root + "/work"));
  EXPECT_LT(at("--bind=" + root + "/work"), at("--bind=" + root + "/work/data:/data"));
  EXPECT_LT(at("--cd=" + root + "/work"), at(image));
  EXPECT_EQ(std::vector<std::string>(argv.end() - 4, argv.end()),
            (std::vector<std::string>{"--", "python", "-c", "pass"}));
  // The targets ch-run needs were made in the image.
  EXPECT_TRUE(fs::is_directory(image + root + "/work"));
  EXPECT_TRUE(fs::is_directory(image + "/data"));
  // Another environment file instead of the image's.
  o.set_env = root + "/work/data";
  argv = run_argv(o, "/");
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--set-env=" + root + "/work/data"), argv.end());
  EXPECT_EQ(std::find(argv.begin(), argv.end(), "--bind=/"), argv.end());  // / is not bound
}

TEST_F(RunLine, SystemPathsAreNotBoundOverTheImage) {
  for (const char* cwd : {"/usr/share", "/etc", "/opt/env", "/"}) {
    std::vector<std::string> argv = run_argv(options(), cwd);
    EXPECT_EQ(std::find(argv.begin(), argv.end(), std::string("--bind=") + cwd), argv.end()) << cwd;
    EXPECT_NE(std::find(argv.begin(), argv.end(), "--cd=/"), argv.end()) << cwd;
  }
  for (const char* cwd : {"/optional/work", "/dev/shm/job", "/var/tmp/u"}) {
    std::vector<std::string> argv = run_argv(options(), cwd);
    EXPECT_NE(std::find(argv.begin(), argv.end(), std::string("--bind=") + cwd), argv.end()) << cwd;
  }
}

TEST_F(RunLine, SquashfsIsNotWrittenInto) {
  RunOptions o = options();
  o.image = root + "/image.sqfs";
  util::write_file_atomically(o.image, "hsqs", 0644);
  o.binds = {root + "/work/data:/data"};
  std::vector<std::string> argv = run_argv(o, root + "/work");
  EXPECT_EQ(std::find(argv.begin(), argv.end(), "--bind=" + root + "/work"), argv.end());
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--cd=/"), argv.end());
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--set-env"), argv.end());
  o.image = root + "/missing.sqfs";
  EXPECT_THROW(run_argv(o, root + "/work"), Error);
}

TEST_F(RunLine, TheJobsTmpdirIsThereInside) {
  // Not under /tmp (the fixture's root is): ch-run binds $TMPDIR at /tmp, and a bind target
  // inside that bind cannot be made.
  std::string local = "/dev/shm" + root.substr(root.rfind('/')) + "-local";
  fs::create_directories(local + "/job7");
  struct Remove {
    std::string path;
    ~Remove() { fs::remove_all(path); }
  } remove{local};
  RunOptions o = options();
  o.tmpdir = local + "/job7/";  // a trailing slash, as users write it
  std::vector<std::string> argv = run_argv(o, root + "/work");
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--bind=" + local + "/job7"), argv.end());
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--set-env=TMPDIR=" + local + "/job7"), argv.end());
  EXPECT_TRUE(fs::is_directory(image + local + "/job7"));
  // Under /tmp it is inside ch-run's own bind: TMPDIR names /tmp.
  o.tmpdir = root + "/work";
  argv = run_argv(o, "/");
  EXPECT_EQ(std::find(argv.begin(), argv.end(), "--bind=" + root + "/work"), argv.end());
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--set-env=TMPDIR=/tmp"), argv.end());
  o.tmpdir = local + "/job7";
  // A SquashFS image cannot take the bind: TMPDIR names /tmp, where ch-run binds it.
  o.image = root + "/image.sqfs";
  util::write_file_atomically(o.image, "hsqs", 0644);
  argv = run_argv(o, root + "/work");
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--set-env=TMPDIR=/tmp"), argv.end());
  EXPECT_LT(std::find(argv.begin(), argv.end(), "--set-env"),
            std::find(argv.begin(), argv.end(), "--set-env=TMPDIR=/tmp"));
  // /tmp (ch-run's own bind), a system path, or one that is not there: left to ch-run.
  for (const char* dir : {"/tmp", "/var", "/nonexistent/tmp"}) {
    o = options();
    o.tmpdir = dir;
    argv = run_argv(o, root + "/work");
    EXPECT_EQ(std::count_if(argv.begin(), argv.end(),
                            [&](const std::string& w) {
                              return w == std::string("--bind=") + dir ||
                                     w.starts_with("--set-env=TMPDIR");
                            }),
              0)
        << dir;
  }
}

TEST_F(RunLine, RanksOnANodeJoinOnePeerGroup) {
  RunOptions o = options();
  std::vector<std::string> argv = run_argv(o, root + "/work");
  EXPECT_EQ(std::count_if(argv.begin(), argv.end(),
                          [](const std::string& w) { return w.starts_with("--join"); }),
            0);
  o.join_tag = "ferry.123.4567";
  o.join_count = 2;
  argv = run_argv(o, root + "/work");
  auto at = [&](const std::string& word) {
    return std::find(argv.begin(), argv.end(), word) - argv.begin();
  };
  EXPECT_LT(at("--join-ct=2"), at(image));
  EXPECT_LT(at("--join-tag=ferry.123.4567"), at(image));
  o.join_count = 0;  // a tag without a count: ch-run would guess it from Slurm's variables
  EXPECT_THROW(run_argv(o, root + "/work"), Error);
}

TEST_F(RunLine, BadInputIsNamed) {
  RunOptions o = options();
  auto message = [&](const RunOptions& bad) {
    try {
      run_argv(bad, root + "/work");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  RunOptions no_ch_run = o;
  no_ch_run.ch_run = "no-such-ch-run";
  EXPECT_EQ(message(no_ch_run),
            "no-such-ch-run: not found: ferry run needs Charliecloud (Debian: "
            "charliecloud-runtime)");
  RunOptions bare = o;
  ::unlink((image + "/ch/environment").c_str());
  EXPECT_NE(message(bare).find("no /ch/environment"), std::string::npos);
  bare.set_env = root + "/work/data";
  EXPECT_EQ(message(bare), "no error");  // --set-env FILE stands in for it
  RunOptions missing = o;
  missing.set_env = root + "/work/data";
  missing.binds = {"/nonexistent/dir"};
  EXPECT_EQ(message(missing), "--bind /nonexistent/dir: /nonexistent/dir does not exist here");
  RunOptions relative = missing;
  relative.binds = {root + "/work/data:data"};
  EXPECT_EQ(message(relative),
            "--bind " + root + "/work/data:data: the target must be an absolute path");
}

}  // namespace
}  // namespace ferry::container
