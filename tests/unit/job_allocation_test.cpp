// The allocation layer on recorded scheduler variables and nodefiles.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "job/job.hpp"

using namespace ferry::job;

namespace {
// A nodefile in a private temporary directory, removed at the end of the test.
class Nodefile {
 public:
  explicit Nodefile(const std::string& text)
      : m_path(std::filesystem::temp_directory_path() /
               ("ferry-nodefile-" + std::to_string(::getpid()) + "-" + std::to_string(s_count++))) {
    std::ofstream(m_path) << text;
  }
  ~Nodefile() { std::filesystem::remove(m_path); }
  std::string path() const { return m_path.string(); }

 private:
  static inline int s_count = 0;
  std::filesystem::path m_path;
};
}  // namespace

TEST(Allocation, SlurmBatchScript) {
  Allocation a = discover_allocation({{"SLURM_JOB_ID", "123"},
                                      {"SLURM_JOB_NODELIST", "nid[001-003,010]"},
                                      {"SLURM_JOB_NUM_NODES", "4"},
                                      {"SLURM_JOB_CPUS_PER_NODE", "128(x4)"},
                                      {"SLURM_TASKS_PER_NODE", "2(x3),1"},
                                      {"SLURM_GPUS_ON_NODE", "4"}},
                                     {"login1", nullptr});
  EXPECT_EQ(a.scheduler, Scheduler::slurm);
  EXPECT_EQ(a.job_id, "123");
  EXPECT_EQ(a.hosts, (std::vector<std::string>{"nid001", "nid002", "nid003", "nid010"}));
  EXPECT_EQ(a.cpus, (std::vector<unsigned>{128, 128, 128, 128}));
  EXPECT_EQ(a.slots, (std::vector<unsigned>{2, 2, 2, 1}));
  EXPECT_EQ(a.gpus_per_host, 4u);
  // SLURM_GPUS_ON_NODE is unset without GPUs; SLURM_GPUS_PER_NODE may name a type.
  a = discover_allocation(
      {{"SLURM_JOBID", "9"}, {"SLURM_NODELIST", "n1"}, {"SLURM_GPUS_PER_NODE", "a100:8"}}, {});
  EXPECT_EQ(a.gpus_per_host, 8u);
}

TEST(Allocation, SlurmBracesGoToScontrol) {
  std::vector<std::string> asked;
  AllocationOptions o{"h", [&](const std::vector<std::string>& argv) {
                        asked = argv;
                        return std::string("c1\nc2\n");
                      }};
  Allocation a = discover_allocation({{"SLURM_JOB_ID", "1"}, {"SLURM_JOB_NODELIST", "c{1,2}"}}, o);
  EXPECT_EQ(asked, (std::vector<std::string>{"scontrol", "show", "hostnames", "c{1,2}"}));
  EXPECT_EQ(a.hosts, (std::vector<std::string>{"c1", "c2"}));
}

TEST(Allocation, InsideAStepTheJobCountsWin) {
  // srun sets SLURM_NNODES and SLURM_TASKS_PER_NODE for the step; the job has 3 nodes.
  Allocation a = discover_allocation({{"SLURM_JOB_ID", "1"},
                                      {"SLURM_JOB_NODELIST", "n[1-3]"},
                                      {"SLURM_NNODES", "1"},
                                      {"SLURM_STEP_NUM_TASKS", "1"},
                                      {"SLURM_TASKS_PER_NODE", "1"}},
                                     {});
  EXPECT_EQ(a.hosts.size(), 3u);
  EXPECT_TRUE(a.slots.empty());
}

TEST(Allocation, PbsNodefileOneLinePerSlot) {
  // mpiprocs=2, FQDNs as on Aurora, a duplicate spelled short: hosts once each, in order.
  Nodefile f(
      "x4102c5s0b0n0.hostmgmt.cm.aurora.alcf.anl.gov\nx4102c5s0b0n0.hostmgmt.cm.aurora.alcf.anl."
      "gov\n"
      "x4102c5s1b0n0.hostmgmt.cm.aurora.alcf.anl.gov\nx4102c5s1b0n0");
  Allocation a =
      discover_allocation({{"PBS_JOBID", "12.aurora-pbs"}, {"PBS_NODEFILE", f.path()}}, {});
  EXPECT_EQ(a.scheduler, Scheduler::pbs);
  EXPECT_EQ(a.hosts, (std::vector<std::string>{"x4102c5s0b0n0.hostmgmt.cm.aurora.alcf.anl.gov",
                                               "x4102c5s1b0n0.hostmgmt.cm.aurora.alcf.anl.gov"}));
  EXPECT_EQ(a.slots, (std::vector<unsigned>{2, 2}));
  EXPECT_EQ(a.source, f.path());
}

TEST(Allocation, LsfCobaltFluxAndNone) {
  Allocation a =
      discover_allocation({{"LSB_JOBID", "77"}, {"LSB_MCPU_HOSTS", "batch1 1 h1 42 h2 42"}}, {});
  EXPECT_EQ(a.scheduler, Scheduler::lsf);
  EXPECT_EQ(a.hosts, (std::vector<std::string>{"batch1", "h1", "h2"}));
  EXPECT_EQ(a.slots, (std::vector<unsigned>{1, 42, 42}));

  // The rank file's first line is the launch node, which runs no ranks.
  Nodefile rankfile("batch3\nh1\nh1\nh2\nh2\n");
  a = discover_allocation({{"LSB_JOBID", "78"}, {"LSB_DJOB_RANKFILE", rankfile.path()}}, {});
  EXPECT_EQ(a.hosts, (std::vector<std::string>{"h1", "h2"}));
  EXPECT_EQ(a.slots, (std::vector<unsigned>{2, 2}));

  Nodefile f("thetagpu01\nthetagpu02\n");
  a = discover_allocation(
      {{"COBALT_JOBID", "5"}, {"COBALT_NODEFILE", f.path()}, {"COBALT_JOBSIZE", "2"}}, {});
  EXPECT_EQ(a.scheduler, Scheduler::cobalt);
  EXPECT_EQ(a.hosts.size(), 2u);

  // Flux's initial program (FLUX_URI, no task variables) asks the instance; Flux inside Slurm is
  // Flux.
  AllocationOptions o{
      "h", [](const std::vector<std::string>& argv) {
        return std::string(argv.back() == "hostlist" ? "frontier[00001-00004]\n" : "f2Kv4tBTm\n");
      }};
  a = discover_allocation(
      {{"FLUX_URI", "local:///run/flux"}, {"SLURM_JOB_ID", "1"}, {"SLURM_JOB_NODELIST", "x1"}}, o);
  EXPECT_EQ(a.scheduler, Scheduler::flux);
  EXPECT_EQ(a.hosts.size(), 4u);
  EXPECT_EQ(a.job_id, "f2Kv4tBTm");

  a = discover_allocation({}, {"workstation", nullptr});
  EXPECT_EQ(a.scheduler, Scheduler::none);
  EXPECT_EQ(a.hosts, (std::vector<std::string>{"workstation"}));
}

TEST(Launch, FluxJsrunOpenMpiLines) {
  Allocation a;
  a.scheduler = Scheduler::flux;
  a.job_id = "f1";
  a.hosts = {"n1", "n2"};
  CpuInventory c;
  c.logical = c.cores = 8;
  for (unsigned i = 0; i < 8; ++i) c.allowed.push_back(i);
  GpuInventory g;
  g.visibility_variable = "CUDA_VISIBLE_DEVICES";
  g.gpus = {Gpu{GpuVendor::nvidia, 0, "0000:01:00.0", "", "", 0, {0, 1, 2, 3}, 1, true},
            Gpu{GpuVendor::nvidia, 1, "0000:02:00.0", "", "", 0, {4, 5, 6, 7}, 1, true}};
  g.visible = {{0, -1, "0"}, {1, -1, "1"}};
  LaunchRequest r;
  r.command = {"app"};
  r.ferry = "ferry";
  r.hostfile = "/tmp/hf";
  r.resolve_master = false;
  Machine m;
  m.launcher = Launcher::flux;
  LaunchPlan p = plan_launch(a, m, g, c, r);
  std::vector<std::string> head(p.argv.begin(), p.argv.begin() + 10);
  EXPECT_EQ(head,
            (std::vector<std::string>{"flux", "run", "-N", "2", "-n", "4", "-c", "4", "-g", "1"}));
  EXPECT_EQ(std::find(p.argv.begin(), p.argv.end(), "--gpus"), p.argv.end());  // flux binds GPUs
  m.launcher = Launcher::jsrun;
  p = plan_launch(a, m, g, c, r);
  head.assign(p.argv.begin(), p.argv.begin() + 11);
  EXPECT_EQ(head, (std::vector<std::string>{"jsrun", "-n", "4", "-r", "2", "-a", "1", "-c", "4",
                                            "-g", "1"}));
  m.launcher = Launcher::openmpi;
  m.launcher_args = {"-x", "PATH"};
  p = plan_launch(a, m, g, c, r);
  head.assign(p.argv.begin(), p.argv.begin() + 11);
  EXPECT_EQ(head,
            (std::vector<std::string>{"mpirun", "-np", "4", "--hostfile", "/tmp/hf", "--map-by",
                                      "ppr:2:node", "--bind-to", "none", "-x", "PATH"}));
  EXPECT_EQ(p.hostfile_text, "n1 slots=2\nn2 slots=2\n");
}
