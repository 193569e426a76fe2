// Threads per rank: each rank's OMP_NUM_THREADS and the BLAS libraries' variables match the CPUs
// it gets (ferry's binding, the launcher's, or its share of the node), a user's own count is
// kept, --threads wins; and the launch plan says the same number that the ranks will set.
#include <gtest/gtest.h>

#include <algorithm>

#include "job/job.hpp"

using namespace ferry::job;

namespace {

RankInfo local_rank(unsigned local, unsigned local_size) {
  RankInfo r;
  r.local_rank = local;
  r.local_world_size = local_size;
  r.world_size = local_size;
  r.rank = local;
  return r;
}

Allocation three_hosts(unsigned cpus) {
  Allocation a;
  a.scheduler = Scheduler::slurm;
  a.job_id = "77";
  a.hosts = {"node1", "node2", "node3"};
  a.cpus = {cpus, cpus, cpus};
  return a;
}

CpuInventory cpus_of(unsigned n) {
  CpuInventory c;
  c.logical = c.cores = n;
  for (unsigned i = 0; i < n; ++i) {
    c.allowed.push_back(i);
    c.core_of[i] = i;
  }
  return c;
}

LaunchPlan plan_with(Launcher launcher, unsigned cpus, unsigned ppn,
                     std::optional<unsigned> threads = std::nullopt) {
  Machine m;
  m.name = "test";
  m.launcher = launcher;
  LaunchRequest r;
  r.ranks_per_node = ppn;
  r.command = {"python3", "train.py"};
  r.ferry = "/opt/ferry";
  r.hostfile = "/tmp/hf";
  r.resolve_master = false;
  r.threads = threads;
  return plan_launch(three_hosts(cpus), m, {}, cpus_of(cpus), r);
}

RankSetup setup_of(const LaunchPlan& plan) {
  auto rank = std::find(plan.argv.begin(), plan.argv.end(), "rank");
  return decode_rank_options({rank + 1, plan.argv.end()}).setup;
}

}  // namespace

TEST(RankThreads, TheCpusARankGetsDecide) {
  RankSetup none;
  // No binding: the node's cpuset shared among its ranks (56 cores, 8 ranks: 7 each).
  EXPECT_EQ(rank_threads(local_rank(3, 8), none, {}, 56, 56), 7u);
  // A launcher bound the rank to 7 of the node's 56: those 7.
  EXPECT_EQ(rank_threads(local_rank(3, 8), none, {}, 7, 56), 7u);
  // More ranks than CPUs: still one thread each.
  EXPECT_EQ(rank_threads(local_rank(2, 3), none, {}, 2, 2), 1u);
  // ferry's own binding: the rank's list.
  RankSetup bound;
  bound.cpus = {{0, 1, 2}, {3, 4, 5, 6}};
  EXPECT_EQ(rank_threads(local_rank(1, 2), bound, {}, 56, 56), 4u);
  // What ferry launch planned (srun -c 6) comes before the affinity guess.
  RankSetup planned;
  planned.planned_threads = 6;
  EXPECT_EQ(rank_threads(local_rank(0, 8), planned, {}, 56, 56), 6u);
}

TEST(RankThreads, TheUsersCountIsKeptAndThreadsWins) {
  RankSetup planned;
  planned.planned_threads = 6;
  planned.cpus = {{0, 1}};
  Environ own = {{"OMP_NUM_THREADS", "3"}};
  EXPECT_EQ(rank_threads(local_rank(0, 1), planned, own, 2, 2), 3u);
  // A value that is not a count is not the user's count.
  EXPECT_EQ(rank_threads(local_rank(0, 1), planned, {{"OMP_NUM_THREADS", "auto"}}, 2, 2), 2u);
  RankSetup forced = planned;
  forced.threads = 5;
  EXPECT_EQ(rank_threads(local_rank(0, 1), forced, own, 2, 2), 5u);

  // The variables: the unset ones get the count; with --threads, all of them.
  Environ kept = thread_environment(3, false, {{"OMP_NUM_THREADS", "3"}, {"MKL_NUM_THREADS", "9"}});
  EXPECT_FALSE(kept.count("OMP_NUM_THREADS"));
  EXPECT_FALSE(kept.count("MKL_NUM_THREADS"));
  EXPECT_EQ(kept.at("OPENBLAS_NUM_THREADS"), "3");
  Environ all = thread_environment(5, true, {{"OMP_NUM_THREADS", "3"}});
  EXPECT_EQ(all.size(), thread_variables().size());
  for (const auto& name : thread_variables()) EXPECT_EQ(all.at(name), "5") << name;
}

TEST(RankThreads, TheRanksEnvironmentCarriesThem) {
  RankSetup s;
  s.master_addr = "node1";
  s.master_port = 20001;
  s.cpus = {{0}, {1}};
  Environ vars = rank_environment(local_rank(1, 2), s, {});
  for (const auto& name : thread_variables()) EXPECT_EQ(vars.at(name), "1") << name;
  // A machine's table that sets OMP_NUM_THREADS counts as the user's: the others follow it.
  s.extra_env = {{"OMP_NUM_THREADS", "4"}};
  vars = rank_environment(local_rank(1, 2), s, {});
  EXPECT_EQ(vars.at("OMP_NUM_THREADS"), "4");
  EXPECT_EQ(vars.at("MKL_NUM_THREADS"), "4");
}

TEST(RankThreads, ThePlanSaysWhatTheRanksSet) {
  // srun -c: 16 CPUs, 4 ranks per node, 4 each; the ranks are told so.
  LaunchPlan srun = plan_with(Launcher::srun, 16, 4);
  EXPECT_EQ(srun.threads_per_rank, 4u);
  EXPECT_EQ(setup_of(srun).planned_threads, 4u);
  EXPECT_FALSE(setup_of(srun).threads);
  // ferry binds (mpiexec): the lists it hands the ranks, 3 CPUs each of 12 for 4 ranks.
  LaunchPlan hydra = plan_with(Launcher::mpich, 12, 4);
  EXPECT_EQ(hydra.threads_per_rank, 3u);
  for (const auto& cpus : setup_of(hydra).cpus) EXPECT_EQ(cpus.size(), 3u);
  // --threads: on the line, over the user's own.
  LaunchPlan forced = plan_with(Launcher::srun, 16, 4, 2);
  EXPECT_EQ(forced.threads_per_rank, 2u);
  EXPECT_EQ(setup_of(forced).threads, 2u);
  // The generic Slurm case of the test cluster: 2 CPUs, 2 ranks per node: one thread each.
  EXPECT_EQ(plan_with(Launcher::srun, 2, 2).threads_per_rank, 1u);
}

TEST(RankThreads, ThreadOptionsRoundTrip) {
  RankOptions o;
  o.setup.threads = 3;
  o.setup.planned_threads = 7;
  o.command = {"true"};
  std::vector<std::string> words = encode_rank_options(o);
  EXPECT_EQ(words,
            (std::vector<std::string>{"--threads", "3", "--planned-threads", "7", "--", "true"}));
  RankSetup back = decode_rank_options(words).setup;
  EXPECT_EQ(back.threads, 3u);
  EXPECT_EQ(back.planned_threads, 7u);
  EXPECT_EQ(decode_rank_options({"--threads", "0"}).setup.threads, 0u);  // leave them alone
  EXPECT_ANY_THROW(decode_rank_options({"--planned-threads", "0"}));
  EXPECT_ANY_THROW(decode_rank_options({"--threads", "many"}));
}

TEST(RankThreads, ServicesLeaveThemToTheirWorkers) {
  // Dask's and Ray's node steps set each worker's (each task's) count themselves: the step's
  // rank sets none, or every worker would inherit the node's whole count.
  Machine m;
  m.name = "test";
  m.launcher = Launcher::srun;
  LaunchRequest r;
  r.ranks_per_node = 1;
  r.cpu_bind = "";
  r.leave_threads = true;
  r.command = {"ferry", "ray-node"};
  r.ferry = "/opt/ferry";
  r.hostfile = "/tmp/hf";
  r.resolve_master = false;
  LaunchPlan plan = plan_launch(three_hosts(16), m, {}, cpus_of(16), r);
  EXPECT_EQ(plan.threads_per_rank, 0u);
  RankSetup s = setup_of(plan);
  EXPECT_EQ(s.threads, 0u);
  s.master_addr = "node1";
  s.master_port = 20001;
  Environ vars = rank_environment(local_rank(0, 1), s, {});
  for (const auto& name : thread_variables()) EXPECT_FALSE(vars.count(name)) << name;
}

TEST(RankThreads, TheCgroupCpusetHoldsTheAffinity) {
  // Whatever this machine's cgroup layout, a process's affinity lies within its cpuset.
  std::vector<unsigned> set = cgroup_cpuset(), mine = process_affinity();
  ASSERT_FALSE(set.empty());
  for (unsigned c : mine) EXPECT_TRUE(std::binary_search(set.begin(), set.end(), c)) << c;
}
