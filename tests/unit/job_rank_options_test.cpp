// `ferry rank`'s command line: what encode_rank_options writes, decode_rank_options reads back as
// it was, whatever the values hold; and the line plan_launch builds reads back as its plan.
#include <gtest/gtest.h>

#include <algorithm>

#include "job/job.hpp"

using namespace ferry;
using namespace ferry::job;

namespace {

void expect_same(const RankOptions& a, const RankOptions& b) {
  EXPECT_EQ(a.spawn, b.spawn);
  EXPECT_EQ(a.setup.master_addr, b.setup.master_addr);
  EXPECT_EQ(a.setup.master_port, b.setup.master_port);
  EXPECT_EQ(a.setup.gpu_selectors, b.setup.gpu_selectors);
  EXPECT_EQ(a.setup.visibility_variable, b.setup.visibility_variable);
  EXPECT_EQ(a.setup.gpus_per_rank, b.setup.gpus_per_rank);
  EXPECT_EQ(a.setup.cpus, b.setup.cpus);
  EXPECT_EQ(a.setup.extra_env, b.setup.extra_env);
  EXPECT_EQ(a.command, b.command);
}

RankOptions round_trip(const RankOptions& options) {
  return decode_rank_options(encode_rank_options(options));
}

}  // namespace

TEST(RankOptions, RoundTripEveryOption) {
  RankOptions o;
  o.spawn = 4;
  o.setup.master_addr = "node 1 'quoted' \"twice\" nœud-é";
  o.setup.master_port = 23456;
  o.setup.gpu_selectors = {"3", "1.0", "GPU-5a0c3d6e-ü"};
  o.setup.gpus_per_rank = 2;
  o.setup.visibility_variable = "ZE_AFFINITY_MASK";
  o.setup.cpus = {{0, 1, 2, 3}, {8, 10, 11}};
  o.setup.extra_env = {
      {"EMPTY", ""},       {"SPACES", " a  b "},          {"QUOTES", "it's \"so\""},
      {"EQUALS", "a=b=c"}, {"DASHES", "--not-an-option"}, {"UNICODE", "日本語 ✓"}};
  o.command = {"python3", "-c", "print('hi there')", "--", "", "--env", "ß"};
  expect_same(round_trip(o), o);
}

TEST(RankOptions, DefaultsAreLeftOutAndReadBackAsDefaults) {
  RankOptions o;
  o.command = {"true"};
  EXPECT_EQ(encode_rank_options(o), (std::vector<std::string>{"--", "true"}));
  expect_same(round_trip(o), o);
  // No command at all: `ferry rank --json` prints the variables.
  RankOptions none;
  EXPECT_EQ(encode_rank_options(none), std::vector<std::string>{"--"});
  expect_same(round_trip(none), none);
  expect_same(decode_rank_options({}), none);
}

TEST(RankOptions, ValuesThatLookLikeOptionsStayValues) {
  RankOptions o;
  o.setup.master_addr = "--";
  o.setup.extra_env = {{"A", "--master-port"}};
  o.command = {"--spawn", "3"};
  expect_same(round_trip(o), o);
}

TEST(RankOptions, ReadsTheOrderFerryLaunchWrites) {
  RankOptions o;
  o.spawn = 2;
  o.setup.master_addr = "n1";
  o.setup.master_port = 20001;
  o.setup.gpu_selectors = {"1", "0"};
  o.setup.gpus_per_rank = 1;
  o.setup.visibility_variable = "CUDA_VISIBLE_DEVICES";
  o.setup.cpus = {{0, 1}, {2, 3}};
  o.setup.extra_env = {{"NCCL_X", "1"}};
  o.command = {"./app"};
  EXPECT_EQ(encode_rank_options(o),
            (std::vector<std::string>{"--spawn", "2", "--master-addr", "n1", "--master-port",
                                      "20001", "--gpus", "1,0", "--gpus-per-rank", "1",
                                      "--visibility", "CUDA_VISIBLE_DEVICES", "--cpus", "0-1:2-3",
                                      "--env", "NCCL_X=1", "--", "./app"}));
  // Any order reads the same.
  expect_same(decode_rank_options({"--env", "NCCL_X=1", "--cpus", "0-1:2-3", "--visibility",
                                   "CUDA_VISIBLE_DEVICES", "--gpus-per-rank", "1", "--gpus", "1,0",
                                   "--master-port", "20001", "--master-addr", "n1", "--spawn", "2",
                                   "--", "./app"}),
              o);
}

TEST(RankOptions, GpuDefaults) {
  // --gpus alone: one GPU per rank, through CUDA_VISIBLE_DEVICES.
  RankSetup s = decode_rank_options({"--gpus", "0,1"}).setup;
  EXPECT_EQ(s.gpu_selectors, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(s.gpus_per_rank, 1u);
  EXPECT_EQ(s.visibility_variable, "CUDA_VISIBLE_DEVICES");
  // Without --gpus the GPU options select nothing.
  s = decode_rank_options({"--gpus-per-rank", "2", "--visibility", "ROCR_VISIBLE_DEVICES"}).setup;
  EXPECT_TRUE(s.gpu_selectors.empty());
  EXPECT_EQ(s.gpus_per_rank, 0u);
  EXPECT_EQ(s.visibility_variable, "");
}

TEST(RankOptions, MalformedWordsAreUsageErrors) {
  auto error_of = [](const std::vector<std::string>& words, Error::Kind kind = Error::Kind::usage) {
    try {
      decode_rank_options(words);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), kind);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of({"--env", "novalue"}), "--env novalue: expected KEY=VALUE");
  EXPECT_EQ(error_of({"--env", "=x"}), "--env =x: expected KEY=VALUE");
  EXPECT_EQ(error_of({"--master-port", "http"}),
            "--master-port: 'http' is not a whole number from 0 to 4294967295");
  EXPECT_EQ(error_of({"--spawn"}), "--spawn: needs a value");
  EXPECT_EQ(error_of({"--teleport", "1"}), "--teleport: not an option of ferry rank");
  // A CPU list is parse_cpu_list's to refuse, as everywhere else.
  EXPECT_NE(error_of({"--cpus", "0-x"}, Error::Kind::failure).find("--cpus"), std::string::npos);
}

// The line plan_launch builds, read back from "rank" on, is the plan.
TEST(RankOptions, TheLaunchLineReadsBackAsThePlan) {
  Allocation a;
  a.scheduler = Scheduler::none;
  a.hosts = {"here"};
  Machine local;
  local.name = "local";
  local.launcher = Launcher::local;
  local.rank_env = {{"OMP_NUM_THREADS", "2"}};
  CpuInventory cpus;
  cpus.logical = cpus.cores = 4;
  cpus.allowed = {0, 1, 2, 3};
  LaunchRequest req;
  req.ranks = 2;
  req.command = {"python3", "my script.py"};
  req.ferry = "/opt/ferry";
  req.resolve_master = false;
  LaunchPlan plan = plan_launch(a, local, {}, cpus, req);
  auto rank = std::find(plan.argv.begin(), plan.argv.end(), "rank");
  ASSERT_NE(rank, plan.argv.end());
  EXPECT_EQ(*(rank - 1), "/opt/ferry");
  RankOptions o = decode_rank_options({rank + 1, plan.argv.end()});
  EXPECT_EQ(o.spawn, 2u);
  EXPECT_EQ(o.setup.master_addr, plan.master_addr);
  EXPECT_EQ(o.setup.master_port, plan.master_port);
  EXPECT_EQ(o.setup.cpus, plan.rank_cpus);
  EXPECT_EQ(o.setup.extra_env, local.rank_env);
  EXPECT_EQ(o.command, req.command);
}
