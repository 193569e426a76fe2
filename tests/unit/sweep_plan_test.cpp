// The array plan: MaxArraySize from scontrol's text, the split into arrays, the sbatch lines and
// the batch script; sbatch's job id lines; the manifest's JSON round trip.
#include <gtest/gtest.h>

#include "sweep/sweep.hpp"

namespace ferry::sweep {
namespace {

Manifest twelve_points() {
  Manifest m;
  m.dir = "/scratch/u/sweep one";
  m.command = {"python", "train.py", "--lr={lr}"};
  m.grid.names = {"lr"};
  for (int i = 0; i < 12; ++i) m.grid.points.push_back({std::to_string(i)});
  m.throttle = 3;
  m.time = "00:10:00";
  m.sbatch_args = {"--partition=gpu"};
  return m;
}

TEST(SweepPlan, MaxArraySizeFromScontrol) {
  std::string text =
      "Configuration data as of 2024-05-01T12:00:00\n"
      "MailProg                = /bin/mail\n"
      "MaxArraySize            = 5000\n"
      "MaxJobCount             = 10000\n";
  EXPECT_EQ(parse_max_array_size(text), 5000U);
  EXPECT_EQ(parse_max_array_size("MaxJobCount = 10\n"), std::nullopt);
  EXPECT_EQ(parse_max_array_size("MaxArraySize = lots\n"), std::nullopt);
}

TEST(SweepPlan, SplitKeepsIndicesContinuous) {
  auto chunks = split_arrays(12, 5);
  ASSERT_EQ(chunks.size(), 3U);
  EXPECT_EQ(chunks[0].offset, 0U);
  EXPECT_EQ(chunks[0].count, 5U);
  EXPECT_EQ(chunks[1].offset, 5U);
  EXPECT_EQ(chunks[1].count, 5U);
  EXPECT_EQ(chunks[2].offset, 10U);
  EXPECT_EQ(chunks[2].count, 2U);
  EXPECT_EQ(split_arrays(5, 5).size(), 1U);
  EXPECT_THROW(split_arrays(3, 0), Error);
}

TEST(SweepPlan, SbatchLinesAndScript) {
  Plan plan = plan_arrays(twelve_points(), 5, "/opt/ferry/bin/ferry");
  ASSERT_EQ(plan.arrays.size(), 3U);
  EXPECT_EQ(
      plan.arrays[1].sbatch,
      (std::vector<std::string>{"sbatch", "--parsable", "--job-name=sweep-sweep one",
                                "--array=0-4%3", "--output=/scratch/u/sweep one/logs/%A_%a.out",
                                "--open-mode=append", "--signal=B:USR1@60", "--time=00:10:00",
                                "--partition=gpu", "/scratch/u/sweep one/array-5.sbatch"}));
  EXPECT_EQ(plan.arrays[2].sbatch[3], "--array=0-1%2");  // the throttle, at most the array's size
  EXPECT_EQ(plan.arrays[1].script,
            "#!/bin/sh\n"
            "# ferry sweep: the array starting at point 5 of /scratch/u/sweep one/sweep.json "
            "(written by ferry sweep submit)\n"
            "exec '/opt/ferry/bin/ferry' sweep run '/scratch/u/sweep one' --offset 5\n");
  Manifest unthrottled = twelve_points();
  unthrottled.throttle = 0;
  EXPECT_EQ(plan_arrays(unthrottled, 100, "ferry").arrays[0].sbatch[3], "--array=0-11");
  Manifest percent = twelve_points();
  percent.dir = "/s/100%";
  EXPECT_THROW(plan_arrays(percent, 5, "ferry"), Error);
}

TEST(SweepPlan, JobIds) {
  EXPECT_EQ(parse_job_id("123\n"), "123");
  EXPECT_EQ(parse_job_id("123;cluster\n"), "123");
  EXPECT_EQ(parse_job_id("Submitted batch job 77\n"), "77");
  EXPECT_EQ(parse_job_id("sbatch: error: no\n"), std::nullopt);
}

TEST(SweepManifest, RoundTrip) {
  Manifest m = twelve_points();
  m.env_dir = "/envs/torch";
  m.submissions.push_back({"2024-05-01T12:00:00.000Z", {{0, 5, "10"}, {5, 5, "11"}}});
  Manifest back = parse_manifest(manifest_json(m).dump(), m.dir);
  EXPECT_EQ(back.command, m.command);
  EXPECT_EQ(back.grid.names, m.grid.names);
  EXPECT_EQ(back.grid.points, m.grid.points);
  EXPECT_EQ(back.env_dir, m.env_dir);
  EXPECT_EQ(back.throttle, 3U);
  EXPECT_EQ(back.time, m.time);
  EXPECT_EQ(back.sbatch_args, m.sbatch_args);
  ASSERT_EQ(back.submissions.size(), 1U);
  EXPECT_EQ(back.submissions[0].arrays[1].job_id, "11");
  EXPECT_THROW(parse_manifest("{\"sweep\": 2}", m.dir), Error);
}

}  // namespace
}  // namespace ferry::sweep
