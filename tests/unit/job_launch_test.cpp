#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "job/job.hpp"

using namespace ferry::job;

namespace {
bool has(const std::vector<std::string>& argv, const std::string& word) {
  return std::find(argv.begin(), argv.end(), word) != argv.end();
}
Allocation three_hosts() {
  Allocation a;
  a.scheduler = Scheduler::slurm;
  a.job_id = "4242";
  a.hosts = {"node1", "node2", "node3"};
  a.cpus = {8, 8, 8};
  return a;
}
CpuInventory eight_cpus() {
  CpuInventory c;
  c.logical = c.cores = 8;
  for (unsigned i = 0; i < 8; ++i) c.allowed.push_back(i);
  return c;
}
LaunchRequest request() {
  LaunchRequest r;
  r.command = {"python3", "train.py"};
  r.ferry = "/opt/ferry";
  r.hostfile = "/tmp/hf";
  r.resolve_master = false;
  return r;
}
}  // namespace

// Nested launchers: the innermost one's variables are the real rank (launch note §3.5).
TEST(Rank, InnermostLauncherWins) {
  Environ slurm_step = {{"SLURM_STEP_NUM_TASKS", "2"},
                        {"SLURM_PROCID", "1"},
                        {"SLURM_LOCALID", "0"},
                        {"SLURM_NODEID", "1"},
                        {"SLURM_STEP_TASKS_PER_NODE", "1(x2)"}};
  RankInfo r = resolve_rank(slurm_step);
  EXPECT_EQ(r.source, "slurm");
  EXPECT_EQ(r.rank, 1u);
  EXPECT_EQ(r.world_size, 2u);
  EXPECT_EQ(r.local_world_size, 1u);
  EXPECT_EQ(r.node_rank, 1u);

  // srun --ntasks-per-node=1 torchrun ...: SLURM_PROCID is the node, RANK the real rank.
  Environ torchrun = slurm_step;
  torchrun.insert({{"TORCHELASTIC_RUN_ID", "x"},
                   {"RANK", "5"},
                   {"LOCAL_RANK", "1"},
                   {"WORLD_SIZE", "8"},
                   {"LOCAL_WORLD_SIZE", "4"},
                   {"GROUP_RANK", "1"}});
  r = resolve_rank(torchrun);
  EXPECT_EQ(r.source, "torchrun");
  EXPECT_EQ(r.rank, 5u);
  EXPECT_EQ(r.local_world_size, 4u);

  // Hydra proxies started by srun: ranks carry both; MPICH's are the real ones.
  Environ hydra = slurm_step;
  hydra.insert(
      {{"PMI_RANK", "3"}, {"PMI_SIZE", "4"}, {"MPI_LOCALRANKID", "1"}, {"MPI_LOCALNRANKS", "2"}});
  r = resolve_rank(hydra);
  EXPECT_EQ(r.source, "mpich");
  EXPECT_EQ(r.rank, 3u);
  EXPECT_EQ(r.node_rank, 1u);  // block placement: 3 / 2

  // The batch script itself has SLURM_PROCID=0 but is no task: a lone process.
  r = resolve_rank({{"SLURM_JOB_ID", "1"}, {"SLURM_PROCID", "0"}, {"SLURM_LOCALID", "0"}});
  EXPECT_EQ(r.source, "none");
  EXPECT_EQ(r.world_size, 1u);

  r = resolve_rank({{"OMPI_COMM_WORLD_RANK", "6"},
                    {"OMPI_COMM_WORLD_LOCAL_RANK", "2"},
                    {"OMPI_COMM_WORLD_SIZE", "8"},
                    {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}});
  EXPECT_EQ(r.source, "ompi");
  EXPECT_EQ(r.node_rank, 1u);
  r = resolve_rank({{"FLUX_TASK_RANK", "5"},
                    {"FLUX_TASK_LOCAL_ID", "1"},
                    {"FLUX_JOB_SIZE", "8"},
                    {"FLUX_JOB_NNODES", "2"}});
  EXPECT_EQ(r.source, "flux");
  EXPECT_EQ(r.local_world_size, 4u);
  EXPECT_EQ(r.node_rank, 1u);
}

TEST(Rank, EnvironmentForTorch) {
  RankInfo r;
  r.rank = 5;
  r.local_rank = 1;
  r.world_size = 8;
  r.local_world_size = 4;
  r.node_rank = 1;
  RankSetup s;
  s.master_addr = "node1";
  s.master_port = 23456;
  s.gpu_selectors = {"3", "2", "1", "0"};
  s.gpus_per_rank = 1;
  s.visibility_variable = "CUDA_VISIBLE_DEVICES";
  s.extra_env = {{"KEEP", "default"}, {"NEW", "x"}};
  Environ out = rank_environment(r, s, {{"KEEP", "user"}, {"GLOO_SOCKET_IFNAME", "ib0"}});
  EXPECT_EQ(out["RANK"], "5");
  EXPECT_EQ(out["LOCAL_RANK"], "1");
  EXPECT_EQ(out["WORLD_SIZE"], "8");
  EXPECT_EQ(out["LOCAL_WORLD_SIZE"], "4");
  EXPECT_EQ(out["MASTER_ADDR"], "node1");
  EXPECT_EQ(out["MASTER_PORT"], "23456");
  EXPECT_EQ(out["CUDA_VISIBLE_DEVICES"], "2");
  EXPECT_EQ(out["CUDA_DEVICE_ORDER"], "PCI_BUS_ID");
  EXPECT_EQ(out.count("KEEP"), 0u);  // the user's value stays
  EXPECT_EQ(out["NEW"], "x");
  EXPECT_EQ(out.count("GLOO_SOCKET_IFNAME"), 0u);
  s.gpus_per_rank = 2;
  EXPECT_EQ(rank_environment(r, s, {})["CUDA_VISIBLE_DEVICES"], "1,0");
}

TEST(Launch, MasterPortFromJobId) {
  std::set<unsigned> ports;
  for (int i = 0; i < 2000; ++i) {
    unsigned p = master_port_for(std::to_string(100000 + i));
    EXPECT_GE(p, 20000u);
    EXPECT_LT(p, 30001u);
    EXPECT_NE(p, 29400u);
    EXPECT_NE(p, 29500u);
    ports.insert(p);
  }
  EXPECT_EQ(master_port_for("123.pbs"), master_port_for("123.pbs"));
  EXPECT_GT(ports.size(), 1500u);  // concurrent jobs rarely collide
}

TEST(Launch, FillsTheAllocationWithSrun) {
  Machine m;
  m.name = "generic-slurm";
  m.launcher = Launcher::srun;
  LaunchPlan p = plan_launch(three_hosts(), m, {}, eight_cpus(), request());
  EXPECT_EQ(p.ranks, 3u);
  EXPECT_EQ(p.ranks_per_node, 1u);
  EXPECT_EQ(p.master_addr, "node1");
  EXPECT_EQ(p.master_port, master_port_for("4242"));
  std::vector<std::string> head(p.argv.begin(), p.argv.begin() + 9);
  EXPECT_EQ(head, (std::vector<std::string>{"srun", "-N", "3", "-n", "3", "--ntasks-per-node=1",
                                            "-c", "8", "--cpu-bind=cores"}));
  EXPECT_TRUE(has(p.argv, "--nodelist=node[1-3]"));
  EXPECT_EQ(p.argv.back(), "train.py");

  LaunchRequest r = request();
  r.ranks = 5;
  r.ranks_per_node = 2;
  p = plan_launch(three_hosts(), m, {}, eight_cpus(), r);
  EXPECT_EQ(p.nodes, 3u);
  EXPECT_TRUE(has(p.argv, "-c") && has(p.argv, "4"));
  r.ranks = 7;
  EXPECT_THROW(plan_launch(three_hosts(), m, {}, eight_cpus(), r), ferry::Error);
  r = request();
  r.command.clear();
  EXPECT_THROW(plan_launch(three_hosts(), m, {}, eight_cpus(), r), ferry::Error);
}

TEST(Launch, HydraBindsThroughFerryByGpuLocality) {
  Machine m;
  m.launcher = Launcher::mpich;
  GpuInventory g;
  g.visibility_variable = "CUDA_VISIBLE_DEVICES";
  // GPU 0 on NUMA 1 (CPUs 4-7), GPU 1 on NUMA 0 (CPUs 0-3): local rank 0 goes to GPU 1.
  g.gpus = {Gpu{GpuVendor::nvidia, 0, "0000:81:00.0", "", "", 1, {4, 5, 6, 7}, 1, true},
            Gpu{GpuVendor::nvidia, 1, "0000:01:00.0", "", "", 0, {0, 1, 2, 3}, 1, true}};
  g.visible = {{0, -1, "0"}, {1, -1, "1"}};
  LaunchPlan p = plan_launch(three_hosts(), m, g, eight_cpus(), request());
  EXPECT_EQ(p.ranks, 6u);
  EXPECT_EQ(p.hostfile_text, "node1\nnode2\nnode3\n");
  auto at = std::find(p.argv.begin(), p.argv.end(), "--gpus");
  ASSERT_NE(at, p.argv.end());
  EXPECT_EQ(*(at + 1), "1,0");
  at = std::find(p.argv.begin(), p.argv.end(), "--cpus");
  ASSERT_NE(at, p.argv.end());
  EXPECT_EQ(*(at + 1), "0-3:4-7");
}

TEST(Machines, StrongestMatchWins) {
  auto machines = parse_machines(R"({"machines": [
      {"name": "by-host", "match": {"hostnames": ["^nid[0-9]+$"]}, "launcher": "srun"},
      {"name": "by-env", "match": {"env": {"NERSC_HOST": "^perlmutter$"}}, "launcher": "srun"},
      {"name": "by-domain", "match": {"domains": ["example.org"]}, "launcher": "srun"},
      {"name": "any-slurm", "match": {"scheduler": "slurm"}, "launcher": "srun"}]})",
                                 "test");
  EXPECT_EQ(recognise_machine(machines, {}, "nid001", "nid001", Scheduler::slurm).name, "by-host");
  EXPECT_EQ(recognise_machine(machines, {{"NERSC_HOST", "perlmutter"}}, "nid001", "nid001",
                              Scheduler::slurm)
                .name,
            "by-env");
  EXPECT_EQ(recognise_machine(machines, {}, "nid001", "nid001.example.org", Scheduler::slurm).name,
            "by-domain");
  EXPECT_EQ(recognise_machine(machines, {}, "c1", "c1.notexample.org", Scheduler::slurm).name,
            "any-slurm");
  EXPECT_THROW(recognise_machine(machines, {}, "c1", "c1", Scheduler::pbs), ferry::Error);
  // The built-in table parses and has every machine the issue names.
  auto builtin = load_machines({});
  for (const char* name : {"aurora", "sunspot", "polaris", "sophia", "frontier", "perlmutter",
                           "generic-slurm", "generic-pbs", "local"})
    EXPECT_NO_THROW(find_machine(builtin, name)) << name;
}

// Two GPUs on one NUMA node (Frontier's GCD pairs): the machine table's map splits the node's
// CPUs between them; without it, the ranks split the physical cores, each with its SMT siblings.
TEST(Launch, CpuSplitFollowsTheTableAndKeepsSiblingsTogether) {
  CpuInventory c;
  c.logical = 16;
  c.cores = 8;
  for (unsigned i = 0; i < 16; ++i) {
    c.allowed.push_back(i);
    c.core_of[i] = i % 8;  // CPU i and i+8 are siblings, as Linux numbers them
  }
  GpuInventory g;
  g.visibility_variable = "ROCR_VISIBLE_DEVICES";
  std::vector<unsigned> node;
  for (unsigned i = 0; i < 16; ++i) node.push_back(i);
  g.gpus = {Gpu{GpuVendor::amd, 0, "0000:c1:00.0", "", "", 0, node, 1, true},
            Gpu{GpuVendor::amd, 1, "0000:c6:00.0", "", "", 0, node, 1, true}};
  g.visible = {{0, -1, "0"}, {1, -1, "1"}};
  Allocation a;
  a.hosts = {"n1"};
  Machine m;
  m.launcher = Launcher::mpich;
  LaunchPlan p = plan_launch(a, m, g, c, request());
  auto at = std::find(p.argv.begin(), p.argv.end(), "--cpus");
  ASSERT_NE(at, p.argv.end());
  EXPECT_EQ(*(at + 1), "0-3,8-11:4-7,12-15");
  m.gpu_cpus = {{0, {4, 5, 6, 7, 12, 13, 14, 15}}, {1, {0, 1, 2, 3, 8, 9, 10, 11}}};
  m.reserved_cpus = {0, 8};
  p = plan_launch(a, m, g, c, request());
  at = std::find(p.argv.begin(), p.argv.end(), "--cpus");
  EXPECT_EQ(*(at + 1), "4-7,12-15:1-3,9-11");
}

// A plain `salloc -N3` where Slurm allocates cores holds one CPU per node
// (SLURM_JOB_CPUS_PER_NODE=1(x3)): srun would refuse two ranks per node ("More processors
// requested than permitted"), so ferry says so first, with the numbers and the fix.
TEST(Launch, RefusesMoreCpusPerNodeThanTheJobHolds) {
  Machine m;
  m.name = "generic-slurm";
  m.launcher = Launcher::srun;
  Allocation one_core = three_hosts();
  one_core.cpus = {1, 1, 1};
  LaunchRequest r = request();
  r.ranks_per_node = 2;
  try {
    plan_launch(one_core, m, {}, eight_cpus(), r);
    FAIL() << "2 ranks per node on 1 CPU per node must be refused";
  } catch (const ferry::Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "2 ranks per node at 1 CPU each need 2 CPUs per node, but the job holds 1 on node1 "
              "(SLURM_JOB_CPUS_PER_NODE): allocate with `salloc --ntasks-per-node=2` (or "
              "--exclusive), or "
              "launch fewer ranks per node (--ppn)");
  }
  // One rank per node fits, and so do two where the job holds two CPUs on every node it uses.
  EXPECT_NO_THROW(plan_launch(one_core, m, {}, eight_cpus(), request()));
  Allocation uneven = three_hosts();
  uneven.cpus = {2, 2, 1};
  r.ranks = 4;
  EXPECT_NO_THROW(plan_launch(uneven, m, {}, eight_cpus(), r));
  // A layout's CPUs per rank count too (Frontier's 8 ranks x 7 CPUs), and the fix names them.
  r = request();
  r.ranks_per_node = 8;
  m.layouts[8].cpus_per_rank = 7;
  Allocation frontier = three_hosts();
  frontier.cpus = {8, 56, 56};
  try {
    plan_launch(frontier, m, {}, eight_cpus(), r);
    FAIL() << "8 ranks x 7 CPUs on a node holding 8 must be refused";
  } catch (const ferry::Error& e) {
    EXPECT_NE(std::string(e.what()).find("need 56 CPUs per node, but the job holds 8 on node1"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("`salloc --ntasks-per-node=8 --cpus-per-task=7`"),
              std::string::npos)
        << e.what();
  }
}
