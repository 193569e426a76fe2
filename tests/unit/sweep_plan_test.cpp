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
  m.submit_args = {"--partition=gpu"};
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

std::vector<std::uint64_t> upto(std::uint64_t n) {
  std::vector<std::uint64_t> v(n);
  for (std::uint64_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

TEST(SweepPlan, SplitKeepsIndicesContinuous) {
  auto chunks = split_arrays(upto(12), 5);
  ASSERT_EQ(chunks.size(), 3U);
  EXPECT_EQ(chunks[0].offset, 0U);
  EXPECT_EQ(chunks[0].tasks, upto(5));
  EXPECT_EQ(chunks[1].offset, 5U);
  EXPECT_EQ(chunks[1].tasks, upto(5));
  EXPECT_EQ(chunks[2].offset, 10U);
  EXPECT_EQ(chunks[2].tasks, upto(2));
  EXPECT_EQ(split_arrays(upto(5), 5).size(), 1U);
  EXPECT_THROW(split_arrays(upto(3), 0), Error);
  // A resubmission's points: task ids stay below MaxArraySize.
  chunks = split_arrays({3, 7, 8, 11}, 5);
  ASSERT_EQ(chunks.size(), 3U);
  EXPECT_EQ(chunks[0].offset, 0U);
  EXPECT_EQ(chunks[0].tasks, (std::vector<std::uint64_t>{3}));
  EXPECT_EQ(chunks[1].offset, 5U);
  EXPECT_EQ(chunks[1].tasks, (std::vector<std::uint64_t>{2, 3}));
  EXPECT_EQ(chunks[2].offset, 10U);
  EXPECT_EQ(chunks[2].tasks, (std::vector<std::uint64_t>{1}));
}

TEST(SweepPlan, ArrayLists) {
  EXPECT_EQ(array_list({0, 1, 2, 5, 7, 8}), "0-2,5,7-8");
  EXPECT_EQ(array_list({4}), "4");
  EXPECT_EQ(parse_array_list("0-2,5,7-8"), (std::vector<std::uint64_t>{0, 1, 2, 5, 7, 8}));
  EXPECT_EQ(parse_array_list("0-11%2"), upto(12));
  for (const char* bad : {"", "a", "3-1", "1,,2", "-4"})
    EXPECT_EQ(parse_array_list(bad), std::nullopt) << bad;
  EXPECT_EQ(parse_index_list("3,5-7", 12), (std::vector<std::uint64_t>{3, 5, 6, 7}));
  EXPECT_THROW(parse_index_list("12", 12), Error);
  EXPECT_THROW(parse_index_list("1%2", 12), Error);
}

TEST(SweepPlan, SbatchLinesAndScript) {
  Plan plan = plan_arrays(twelve_points(), 5, "/opt/ferry/bin/ferry");
  ASSERT_EQ(plan.arrays.size(), 3U);
  EXPECT_EQ(
      plan.arrays[1].submit,
      (std::vector<std::string>{"sbatch", "--parsable", "--job-name=sweep-sweep one",
                                "--array=0-4%3", "--output=/scratch/u/sweep one/logs/%A_%a.out",
                                "--open-mode=append", "--signal=B:USR1@60", "--time=00:10:00",
                                "--partition=gpu", "/scratch/u/sweep one/array-5.sbatch"}));
  EXPECT_EQ(plan.arrays[2].submit[3], "--array=0-1%2");  // the throttle, at most the array's size
  // Throttled: each array after the first waits for the one before.
  EXPECT_FALSE(plan.arrays[0].after_previous);
  EXPECT_TRUE(plan.arrays[1].after_previous);
  EXPECT_TRUE(plan.arrays[2].after_previous);
  EXPECT_EQ(plan.arrays[1].script,
            "#!/bin/sh\n"
            "# ferry sweep: the array starting at point 5 of /scratch/u/sweep one/sweep.json "
            "(written by ferry sweep submit)\n"
            "exec '/opt/ferry/bin/ferry' sweep run '/scratch/u/sweep one' --offset 5\n");
  Manifest unthrottled = twelve_points();
  unthrottled.throttle = 0;
  EXPECT_EQ(plan_arrays(unthrottled, 100, "ferry").arrays[0].submit[3], "--array=0-11");
  EXPECT_FALSE(plan_arrays(unthrottled, 5, "ferry").arrays[1].after_previous);
  // A resubmission: its points only, its own time limit.
  Plan again = plan_arrays(twelve_points(), {3, 7, 8}, 5, "ferry", "01:00:00");
  ASSERT_EQ(again.arrays.size(), 2U);
  EXPECT_EQ(again.points, 3U);
  EXPECT_EQ(again.arrays[1].submit[3], "--array=2-3%2");
  EXPECT_EQ(again.arrays[1].submit[7], "--time=01:00:00");
  EXPECT_EQ(again.arrays[1].script_path, "/scratch/u/sweep one/array-5.sbatch");
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
  Submission s;
  s.time = "2024-05-01T12:00:00.000Z";
  s.cancelled = "2024-05-01T12:05:00.000Z";
  s.arrays = {{0, 5, "0-4", "10"}, {5, 2, "1,3", "11"}};
  m.submissions.push_back(s);
  Manifest back = parse_manifest(manifest_json(m).dump(), m.dir);
  EXPECT_EQ(back.command, m.command);
  EXPECT_EQ(back.grid.names, m.grid.names);
  EXPECT_EQ(back.grid.points, m.grid.points);
  EXPECT_EQ(back.env_dir, m.env_dir);
  EXPECT_EQ(back.throttle, 3U);
  EXPECT_EQ(back.time, m.time);
  EXPECT_EQ(back.submit_args, m.submit_args);
  ASSERT_EQ(back.submissions.size(), 1U);
  EXPECT_EQ(back.submissions[0].arrays[1].job_id, "11");
  EXPECT_EQ(back.submissions[0].arrays[1].tasks, "1,3");
  EXPECT_EQ(back.submissions[0].cancelled, s.cancelled);
  EXPECT_THROW(parse_manifest("{\"sweep\": 2}", m.dir), Error);
}

}  // namespace
}  // namespace ferry::sweep
