// util's process spawner: the one wait-status decoder, the one argv joiner, a helper that must
// succeed, and run_children's failures (the first one's status; a spawn that fails leaves ferry's
// signal handlers as they were).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "util/util.hpp"

using namespace ferry;

namespace {

// How a real child that ran body ended, as waitpid reports it.
int wait_status_of(void (*body)()) {
  pid_t pid = ::fork();
  if (pid == 0) {
    body();
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

void on_signal(int) {}

}  // namespace

TEST(ExitStatus, IsTheExitCodeOr128PlusTheSignal) {
  EXPECT_EQ(util::exit_status(wait_status_of([] { ::_exit(0); })), 0);
  EXPECT_EQ(util::exit_status(wait_status_of([] { ::_exit(3); })), 3);
  EXPECT_EQ(util::exit_status(wait_status_of([] { ::_exit(255); })), 255);
  EXPECT_EQ(util::exit_status(wait_status_of([] {
              ::signal(SIGTERM, SIG_DFL);
              ::raise(SIGTERM);
            })),
            128 + SIGTERM);
  EXPECT_EQ(util::exit_status(wait_status_of([] {
              ::signal(SIGKILL, SIG_DFL);
              ::raise(SIGKILL);
            })),
            128 + SIGKILL);
}

TEST(CommandLine, QuotesOnlyTheWordsThatNeedIt) {
  EXPECT_EQ(util::command_line({}), "");
  EXPECT_EQ(util::command_line({"srun", "-N", "2", "--cpu-bind=list:0-3", "/opt/x/bin/python"}),
            "srun -N 2 --cpu-bind=list:0-3 /opt/x/bin/python");
  EXPECT_EQ(util::command_line({"python", "-c", "print('hi there')", ""}),
            "python -c 'print('\\''hi there'\\'')' ''");
  EXPECT_EQ(util::command_line({"scontrol", "show", "hostnames", "n[1-3]"}),
            "scontrol show hostnames 'n[1-3]'");
}

TEST(OutputOf, GivesStdoutOrOneLineWithTheStatusAndTheLastErrorLine) {
  EXPECT_EQ(util::output_of({"sh", "-c", "echo out"}), "out\n");
  try {
    util::output_of({"sh", "-c", "echo out; echo first >&2; echo why >&2; exit 3"});
    FAIL() << "a failing helper must throw";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "`sh -c 'echo out; echo first >&2; echo why >&2; exit 3'` failed (exit status 3): "
              "why");
  }
}

TEST(RunChildren, ReturnsTheFirstFailureAndStopsTheOthers) {
  std::vector<std::string> env = {"PATH=/usr/bin:/bin"};
  EXPECT_EQ(util::run_children({{{"true"}, env}, {{"true"}, env}}), 0);
  // The sleeper would run a minute: SIGTERM ends it once its sibling fails.
  util::Stopwatch clock;
  EXPECT_EQ(util::run_children({{{"sh", "-c", "exit 7"}, env}, {{"sleep", "60"}, env}}), 7);
  EXPECT_LT(clock.seconds(), 30);
}

TEST(RunChildren, ASpawnThatFailsLeavesTheSignalHandlersAsTheyWere) {
  struct sigaction mine {
  }, before_int{}, before_term{};
  mine.sa_handler = on_signal;
  ::sigaction(SIGINT, &mine, &before_int);
  ::sigaction(SIGTERM, &mine, &before_term);
  std::vector<std::string> env = {"PATH=/usr/bin:/bin"};
  EXPECT_THROW(util::run_children({{{"sleep", "60"}, env}, {{"/nonexistent/ferry-test"}, env}}),
               Error);
  struct sigaction now_int {
  }, now_term{};
  ::sigaction(SIGINT, nullptr, &now_int);
  ::sigaction(SIGTERM, nullptr, &now_term);
  EXPECT_EQ(now_int.sa_handler, &on_signal);
  EXPECT_EQ(now_term.sa_handler, &on_signal);
  ::sigaction(SIGINT, &before_int, nullptr);
  ::sigaction(SIGTERM, &before_term, nullptr);
}

TEST(StopGroup, EndsAChildThatIgnoresSigtermAndWhatItStarted) {
  // The child ignores SIGTERM and leaves a grandchild in its group, as srun's helpers can.
  util::SubprocessOptions so;
  so.own_group = true;
  util::Subprocess child({"sh", "-c", "trap '' TERM; sleep 300 & echo $!; wait"}, so);
  auto grandchild = child.read_line(10);
  ASSERT_TRUE(grandchild);
  pid_t g = static_cast<pid_t>(std::atoi(grandchild->c_str()));
  ASSERT_GT(g, 0);
  EXPECT_EQ(child.stop_group(0.2), 128 + SIGKILL);
  // The grandchild is gone too (a zombie of init's at most, never still sleeping).
  bool sleeping = false;
  for (int i = 0; i < 50; ++i) {
    std::string stat;
    try {
      stat = util::read_file("/proc/" + std::to_string(g) + "/stat");
    } catch (const Error&) {
      break;
    }
    sleeping = stat.find(") Z") == std::string::npos;
    if (!sleeping) break;
    ::usleep(20000);
  }
  EXPECT_FALSE(sleeping) << "pid " << g << " outlived its group's stop";
}

TEST(StopGroup, GivesAChildThatEndsOnSigtermItsOwnStatus) {
  util::SubprocessOptions so;
  so.own_group = true;
  util::Subprocess child({"sh", "-c", "trap 'exit 3' TERM; while :; do sleep 0.05; done"}, so);
  ::usleep(100000);  // the trap is set
  EXPECT_EQ(child.stop_group(10), 3);
}
