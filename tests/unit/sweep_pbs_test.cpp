// Sweeps on PBS: the qsub lines and scripts (ranges only, a plain job for a lone task, the
// throttle, the walltime), time limits in sbatch's form, what qsub and qstat print, and the names
// of array tasks.
#include <gtest/gtest.h>

#include "sweep/sweep.hpp"

namespace ferry::sweep {
namespace {

Manifest twelve_points_on_pbs() {
  Manifest m;
  m.dir = "/scratch/u/sweep one";
  m.command = {"python", "train.py", "--lr={lr}"};
  m.grid.names = {"lr"};
  for (int i = 0; i < 12; ++i) m.grid.points.push_back({std::to_string(i)});
  m.scheduler = job::Scheduler::pbs;
  m.throttle = 3;
  m.time = "1:30:00";
  m.submit_args = {"-q", "gpu"};
  return m;
}

TEST(SweepPbs, TimeLimitsInSbatchForm) {
  EXPECT_EQ(parse_time_limit("30"), 1800U);           // minutes
  EXPECT_EQ(parse_time_limit("2:30"), 150U);          // minutes:seconds
  EXPECT_EQ(parse_time_limit("1:30:00"), 5400U);      // hours:minutes:seconds
  EXPECT_EQ(parse_time_limit("2-0"), 172800U);        // days-hours
  EXPECT_EQ(parse_time_limit("1-2:3"), 93780U);       // days-hours:minutes
  EXPECT_EQ(parse_time_limit("1-00:00:10"), 86410U);  // days-hours:minutes:seconds
  for (const char* bad : {"", "x", "1:2:3:4", "-1", "1-", "1h", "UNLIMITED", "1::2"})
    EXPECT_EQ(parse_time_limit(bad), std::nullopt) << bad;
  EXPECT_EQ(check_time_limit(""), 0U);
  EXPECT_THROW(check_time_limit("0"), Error);
  EXPECT_THROW(check_time_limit("soon"), Error);
  EXPECT_EQ(pbs_walltime(5400), "01:30:00");
  EXPECT_EQ(pbs_walltime(59), "00:00:59");
  EXPECT_EQ(pbs_walltime(360000), "100:00:00");
}

TEST(SweepPbs, QsubLinesAndScripts) {
  Plan plan = plan_arrays(twelve_points_on_pbs(), 5, "/opt/ferry/bin/ferry");
  EXPECT_EQ(plan.scheduler, "pbs");
  ASSERT_EQ(plan.arrays.size(), 3U);
  EXPECT_EQ(plan.arrays[1].submit,
            (std::vector<std::string>{"qsub", "-N", "sweep-sweep_one", "-S", "/bin/sh", "-V", "-j",
                                      "oe", "-o", "/scratch/u/sweep one/logs/", "-J", "0-4", "-W",
                                      "max_run_subjobs=3", "-l", "walltime=01:30:00", "-q", "gpu",
                                      "/scratch/u/sweep one/array-5-0.pbs"}));
  EXPECT_EQ(plan.arrays[1].script,
            "#!/bin/sh\n"
            "# ferry sweep: the array starting at point 5 of /scratch/u/sweep one/sweep.json "
            "(written by ferry sweep submit)\n"
            "exec '/opt/ferry/bin/ferry' sweep run '/scratch/u/sweep one' --offset 5 "
            "--time-limit 5400\n");
  // The throttle is at most the array's size; throttled arrays wait for the one before.
  EXPECT_EQ(plan.arrays[2].submit[13], "max_run_subjobs=2");
  EXPECT_FALSE(plan.arrays[0].after_previous);
  EXPECT_TRUE(plan.arrays[2].after_previous);
}

TEST(SweepPbs, ResubmissionsAreRangesAndPlainJobs) {
  // qsub -J takes one range of two or more: points 3, 7-8 and 11 at MaxArraySize 5 are a plain
  // job (task 3 of offset 0), an array 2-3 at offset 5, a plain job (task 1 of offset 10).
  Manifest m = twelve_points_on_pbs();
  m.throttle = 0;
  Plan plan = plan_arrays(m, {3, 7, 8, 11}, 5, "ferry", "10");
  ASSERT_EQ(plan.arrays.size(), 3U);
  const PlannedArray& lone = plan.arrays[0];
  EXPECT_EQ(lone.count, 1U);
  EXPECT_EQ(lone.tasks, "3");
  EXPECT_EQ(std::count(lone.submit.begin(), lone.submit.end(), "-J"), 0);
  EXPECT_NE(lone.script.find("--offset 0 --task 3 --time-limit 600\n"), std::string::npos);
  EXPECT_EQ(plan.arrays[1].tasks, "2-3");
  EXPECT_NE(std::find(plan.arrays[1].submit.begin(), plan.arrays[1].submit.end(), "2-3"),
            plan.arrays[1].submit.end());
  EXPECT_EQ(plan.arrays[1].script.find("--task"), std::string::npos);
  EXPECT_EQ(plan.arrays[2].script_path, "/scratch/u/sweep one/array-10-1.pbs");
  // Two scattered tasks in one group: two jobs, each its own script.
  m.time = "";
  Plan two = plan_arrays(m, {0, 2}, 5, "ferry");
  ASSERT_EQ(two.arrays.size(), 2U);
  EXPECT_NE(two.arrays[0].script_path, two.arrays[1].script_path);
  EXPECT_EQ(two.arrays[0].script.find("--time-limit"), std::string::npos);  // no limit asked
  EXPECT_THROW(plan_arrays(m, {0, 1}, 5, "ferry", "an hour"), Error);
}

TEST(SweepPbs, WhatQsubAndQstatPrint) {
  EXPECT_EQ(parse_pbs_job_id("1234[].pbs-server\n"), "1234[].pbs-server");
  EXPECT_EQ(parse_pbs_job_id("1235.pbs-server\n"), "1235.pbs-server");
  EXPECT_EQ(parse_pbs_job_id("77[]\n"), "77[]");
  for (const char* bad : {"", "qsub: illegal -J value", "12[3].s", "x12.s", "12.s extra"})
    EXPECT_EQ(parse_pbs_job_id(bad), std::nullopt) << bad;
  EXPECT_EQ(parse_pbs_max_array_size("Server: pbs\n    max_array_size = 200\n    pbs_version = "
                                     "23.06.06\n"),
            200U);
  EXPECT_EQ(parse_pbs_max_array_size("Server: pbs\n"), std::nullopt);

  TaskStates states = parse_pbs_task_states(R"({"timestamp": 1, "pbs_version": "23.06.06",
    "Jobs": {"1234[].s": {"job_state": "B"},
             "1234[0].s": {"job_state": "X", "Exit_status": 0},
             "1234[1].s": {"job_state": "R"},
             "1234[2].s": {"job_state": "Q"},
             "1234[3].s": {"job_state": "X", "Exit_status": 271},
             "1234[4].s": {"job_state": "F", "Exit_status": "-1"},
             "1235.s": {"job_state": "H"}}})");
  EXPECT_EQ(states.count("1234[].s"), 0U);  // the array itself
  EXPECT_EQ(states.at("1234[0].s"), "COMPLETED");
  EXPECT_EQ(states.at("1234[1].s"), "RUNNING");
  EXPECT_EQ(states.at("1234[2].s"), "PENDING");
  EXPECT_EQ(states.at("1234[3].s"), "CANCELLED");  // 256 + SIGTERM: qdel
  EXPECT_EQ(states.at("1234[4].s"), "FAILED");     // PBS could not start it
  EXPECT_EQ(states.at("1235.s"), "PENDING");
  EXPECT_TRUE(parse_pbs_task_states("qstat: Unknown Job Id").empty());
}

TEST(SweepPbs, TaskNames) {
  EXPECT_EQ(task_job(job::Scheduler::pbs, "1234[].s", 3), "1234[3].s");
  EXPECT_EQ(task_job(job::Scheduler::pbs, "1235.s", 3), "1235.s");  // a plain job's one task
  EXPECT_EQ(task_job(job::Scheduler::slurm, "99", 3), "99_3");
  EXPECT_EQ(array_of_task(job::Scheduler::pbs, "1234[3].s"), "1234[].s");
  EXPECT_EQ(array_of_task(job::Scheduler::pbs, "1235.s"), "1235.s");
  EXPECT_EQ(array_of_task(job::Scheduler::slurm, "99_3"), "99");
}

TEST(SweepPbs, StatusFromQstat) {
  Manifest m = twelve_points_on_pbs();
  Submission s;
  s.time = "t";
  s.arrays = {{0, 5, "0-4", "1234[].s"}, {5, 1, "2", "1240.s"}};
  m.submissions = {s};
  TaskStates states = {{"1234[0].s", "COMPLETED"},
                       {"1234[1].s", "RUNNING"},
                       {"1234[2].s", "PENDING"},
                       {"1234[3].s", "CANCELLED"},
                       {"1240.s", "RUNNING"}};
  std::vector<nlohmann::json> records(12);
  records[0] = {{"exit_code", 0}, {"signal", nullptr}, {"timeout", false}, {"cancelled", false}};
  SweepStatus st = combine_status(m, records, &states, &states);
  EXPECT_EQ(st.results[0].state, PointState::done);
  EXPECT_EQ(st.results[1].state, PointState::running);
  EXPECT_EQ(st.results[2].state, PointState::pending);
  EXPECT_EQ(st.results[3].state, PointState::cancelled);
  EXPECT_EQ(st.results[7].state, PointState::running);  // the plain job: point 5 + 2
  EXPECT_EQ(st.results[7].job, "1240.s");
  EXPECT_EQ(st.never_ran, 7U);
}

TEST(SweepPbs, ManifestKeepsTheScheduler) {
  Manifest m = twelve_points_on_pbs();
  Manifest back = parse_manifest(manifest_json(m).dump(), m.dir);
  EXPECT_EQ(back.scheduler, job::Scheduler::pbs);
  EXPECT_EQ(back.submit_args, m.submit_args);
  // A manifest from before PBS: Slurm, its arguments under sbatch_args.
  nlohmann::ordered_json old = manifest_json(m);
  old["options"].erase("scheduler");
  old["options"].erase("submit_args");
  old["options"]["sbatch_args"] = {"--partition=gpu"};
  back = parse_manifest(old.dump(), m.dir);
  EXPECT_EQ(back.scheduler, job::Scheduler::slurm);
  EXPECT_EQ(back.submit_args, (std::vector<std::string>{"--partition=gpu"}));
  old["options"]["scheduler"] = "lsf";
  EXPECT_THROW(parse_manifest(old.dump(), m.dir), Error);
  EXPECT_EQ(choose_scheduler("pbs"), job::Scheduler::pbs);
  EXPECT_THROW(choose_scheduler("torque"), Error);
}

}  // namespace
}  // namespace ferry::sweep
