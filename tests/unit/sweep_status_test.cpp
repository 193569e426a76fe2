// A sweep's status from its records and the scheduler's word: squeue's and sacct's lines, which
// source wins for a point, and the points resubmit chooses.
#include <gtest/gtest.h>

#include "sweep/sweep.hpp"

namespace ferry::sweep {
namespace {

using Json = nlohmann::json;

// Six points; the first submission ran all six as job 100, a resubmission ran points 1 and 4
// again as job 200 (tasks 1 and 4 of an array at offset 0).
Manifest six_points() {
  Manifest m;
  m.dir = "/s";
  m.command = {"run", "{x}"};
  m.grid.names = {"x"};
  for (int i = 0; i < 6; ++i) m.grid.points.push_back({std::to_string(i)});
  Submission first;
  first.time = "t1";
  first.arrays = {{0, 6, "0-5", "100"}};
  Submission again;
  again.time = "t2";
  again.arrays = {{0, 2, "1,4", "200"}};
  m.submissions = {first, again};
  return m;
}

Json record(int exit_code, bool timeout = false, bool cancelled = false) {
  return Json{{"exit_code", exit_code},
              {"signal", nullptr},
              {"timeout", timeout},
              {"cancelled", cancelled}};
}

TEST(SweepStatus, SqueueAndSacctLines) {
  TaskStates q = parse_task_states("100_3|RUNNING\n200_[4-6%2]|PENDING\n77|RUNNING\n\n");
  EXPECT_EQ(q.at("100_3"), "RUNNING");
  EXPECT_EQ(q.at("200_4"), "PENDING");
  EXPECT_EQ(q.at("200_6"), "PENDING");
  EXPECT_EQ(q.at("77"), "RUNNING");
  EXPECT_EQ(q.size(), 5U);
  TaskStates a = parse_task_states("100_0|COMPLETED\n100_2|CANCELLED by 0\n");
  EXPECT_EQ(a.at("100_2"), "CANCELLED");
}

TEST(SweepStatus, QueueThenRecordThenAccounting) {
  Manifest m = six_points();
  std::vector<Json> records = {record(0), record(3), Json(), Json(), record(1, true), Json()};
  // Point 1 was resubmitted and is pending again: its old failure no longer counts. Point 4's
  // rerun runs. Point 2 never wrote a record, and sacct says it was cancelled; 3 and 5 are gone.
  TaskStates queue = {{"200_1", "PENDING"}, {"200_4", "RUNNING"}};
  TaskStates accounting = {{"100_2", "CANCELLED"}, {"100_3", "COMPLETED"}};
  SweepStatus s = combine_status(m, records, &queue, &accounting);
  EXPECT_EQ(s.results[0].state, PointState::done);
  EXPECT_EQ(s.results[1].state, PointState::pending);
  EXPECT_EQ(s.results[1].job, "200_1");
  EXPECT_EQ(s.results[2].state, PointState::cancelled);
  EXPECT_EQ(s.results[3].state, PointState::never_ran);
  EXPECT_EQ(s.results[4].state, PointState::running);
  EXPECT_EQ(s.results[5].state, PointState::never_ran);
  EXPECT_EQ(s.done, 1U);
  EXPECT_EQ(s.pending, 1U);
  EXPECT_EQ(s.running, 1U);
  EXPECT_EQ(s.cancelled, 1U);
  EXPECT_EQ(s.never_ran, 2U);
  EXPECT_TRUE(s.queue_known);
  // Without the scheduler: the records alone.
  s = combine_status(m, records, nullptr, nullptr);
  EXPECT_EQ(s.results[1].state, PointState::failed);
  EXPECT_EQ(s.results[1].exit_code, 3);
  EXPECT_EQ(s.results[4].state, PointState::timeout);
  EXPECT_FALSE(s.queue_known);
  // A cancelled submission: what it left without a record is cancelled.
  m.submissions[0].cancelled = "t3";
  s = combine_status(m, records, nullptr, nullptr);
  EXPECT_EQ(s.results[3].state, PointState::cancelled);
  EXPECT_EQ(s.results[5].state, PointState::cancelled);
}

TEST(SweepStatus, ResubmitChoosesExactlyThosePoints) {
  Manifest m = six_points();
  std::vector<Json> records = {record(0), record(3),       record(0, false, true),
                               Json(),    record(1, true), Json()};
  TaskStates queue = {{"100_5", "PENDING"}};
  SweepStatus s = combine_status(m, records, &queue, nullptr);
  EXPECT_EQ(choose_points(s, true, false, {}), (std::vector<std::uint64_t>{1, 2, 4}));
  EXPECT_EQ(choose_points(s, false, true, {}), (std::vector<std::uint64_t>{3}));
  EXPECT_EQ(choose_points(s, true, true, {0}), (std::vector<std::uint64_t>{0, 1, 2, 3, 4}));
  EXPECT_TRUE(
      choose_points(
          combine_status(m, {record(0), record(0), record(0), record(0), record(0), record(0)},
                         nullptr, nullptr),
          true, true, {})
          .empty());
  // A queued point asked for by index: refused, naming it.
  try {
    choose_points(s, false, false, {5});
    FAIL() << "a queued point was chosen";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "point 5 is pending (job 100_5): cancel it first, or leave it out");
  }
}

}  // namespace
}  // namespace ferry::sweep
