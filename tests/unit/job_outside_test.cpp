// The job from a shell outside it: the scheduler's records (scontrol's line, qstat -f of OpenPBS
// and PBS Pro, recorded) become the allocation the job's own shell would see, and the search by
// host finds the user's one job, lists several, or finds none.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "job/job.hpp"
#include "temp_dir.hpp"

using namespace ferry::job;

namespace {

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(FERRY_FIXTURES) + "/schedulers/" + name);
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_FALSE(s.str().empty()) << name;
  return s.str();
}

// The allocation discover_allocation reads from a record's variables.
Allocation allocation_of(const JobRecord& job, const std::string& nodefile) {
  Environ env = job_variables(job, nodefile);
  return discover_allocation(env, {"elsewhere", nullptr});
}

}  // namespace

TEST(OutsideSlurm, ScontrolLineGivesHostsCpusAndGpus) {
  JobRecord j = parse_scontrol_job(fixture("scontrol-show-job-d-o.txt"));
  EXPECT_EQ(j.scheduler, Scheduler::slurm);
  EXPECT_EQ(j.id, "4711");
  EXPECT_EQ(j.name, "train llm");  // a name with a space
  EXPECT_EQ(j.user, "alice");
  EXPECT_TRUE(j.running());
  EXPECT_EQ(j.partition, "gpu");
  EXPECT_EQ(j.hosts, (std::vector<std::string>{"gpu01", "gpu02", "gpu07"}));
  EXPECT_EQ(j.cpus, (std::vector<unsigned>{48, 48, 48}));  // two detail groups, one each
  EXPECT_EQ(j.gpus_per_host, 4u);

  Allocation a = allocation_of(j, "");
  EXPECT_EQ(a.scheduler, Scheduler::slurm);
  EXPECT_EQ(a.job_id, "4711");
  EXPECT_EQ(a.hosts, j.hosts);
  EXPECT_EQ(a.cpus, j.cpus);
  EXPECT_EQ(a.gpus_per_host, 4u);
  Environ v = job_variables(j, "");
  EXPECT_EQ(v["SLURM_JOB_CPUS_PER_NODE"], "48(x3)");
  EXPECT_EQ(v["SLURM_OVERLAP"], "1");  // steps from outside share the job's CPUs
}

TEST(OutsideSlurm, PendingJobHasNoHostsAndIsNotRunning) {
  JobRecord j = parse_scontrol_job(
      "JobId=12 JobName=wait UserId=bob(1001) JobState=PENDING Reason=Resources NodeList=(null) "
      "NumNodes=2-2 NumCPUs=2");
  EXPECT_FALSE(j.running());
  EXPECT_TRUE(j.hosts.empty());
  EXPECT_EQ(j.user, "bob");
  EXPECT_THROW(parse_scontrol_job("slurm_load_jobs error: Invalid job id specified"), ferry::Error);
}

TEST(OutsidePbs, OpenPbsRecordGivesTheNodefileOfItsChunks) {
  std::vector<JobRecord> jobs = parse_qstat_full(fixture("qstat-f-openpbs.txt"));
  ASSERT_EQ(jobs.size(), 2u);
  const JobRecord& j = jobs[0];
  EXPECT_EQ(j.scheduler, Scheduler::pbs);
  EXPECT_EQ(j.id, "4021.pbs-head");
  EXPECT_EQ(j.name, "train-llm");
  EXPECT_EQ(j.user, "alice");
  EXPECT_TRUE(j.running());
  EXPECT_EQ(j.partition, "workq");
  // cn001 holds two chunks: 32 + 8 CPUs, 4 + 1 MPI slots.
  EXPECT_EQ(j.hosts, (std::vector<std::string>{"cn001", "cn002", "cn003"}));
  EXPECT_EQ(j.cpus, (std::vector<unsigned>{40, 32, 32}));
  EXPECT_EQ(j.slots, (std::vector<unsigned>{5, 4, 4}));
  EXPECT_FALSE(jobs[1].running());
  EXPECT_TRUE(jobs[1].hosts.empty());

  TempDir dir;
  std::string nodefile = (dir.path / "pbs-4021/nodefile").string();
  Allocation a = allocation_of(j, nodefile);
  EXPECT_EQ(a.scheduler, Scheduler::pbs);
  EXPECT_EQ(a.job_id, "4021.pbs-head");
  EXPECT_EQ(a.hosts, j.hosts);
  EXPECT_EQ(a.slots, j.slots);  // the nodefile lists each host once per slot, as PBS's does
  std::ifstream in(nodefile);
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(first, "cn001");
}

TEST(OutsidePbs, PbsProRecordJoinsWrappedValues) {
  std::vector<JobRecord> jobs = parse_qstat_full(fixture("qstat-f-pbspro.txt"));
  ASSERT_EQ(jobs.size(), 2u);
  const JobRecord& j = jobs[0];
  EXPECT_EQ(j.id, "2817364.polaris-pbs-01.hsn.cm.polaris.alcf.anl.gov");
  EXPECT_EQ(j.name, "ezpz-train");
  EXPECT_EQ(j.user, "alice");
  EXPECT_EQ(j.partition, "debug-scaling");
  // exec_host wraps mid-name ("x3005c0s" / "19b1n0/0*64"); select names no mpiprocs: 1 each.
  EXPECT_EQ(j.hosts, (std::vector<std::string>{"x3005c0s13b0n0", "x3005c0s13b1n0", "x3005c0s19b0n0",
                                               "x3005c0s19b1n0"}));
  EXPECT_EQ(j.cpus, (std::vector<unsigned>{64, 64, 64, 64}));
  EXPECT_EQ(j.slots, (std::vector<unsigned>{1, 1, 1, 1}));
  EXPECT_EQ(jobs[1].id, "2817401[].polaris-pbs-01.hsn.cm.polaris.alcf.anl.gov");
  EXPECT_FALSE(jobs[1].running());  // an array's parent: B

  TempDir dir;
  Allocation a = allocation_of(j, (dir.path / "nodefile").string());
  EXPECT_EQ(a.hosts, j.hosts);
  EXPECT_EQ(a.slots, j.slots);
}

TEST(OutsideEnviron, JobVariablesReplaceAnotherJobsButKeepTheClientsSettings) {
  Environ env = {{"SLURM_CONF", "/etc/slurm/slurm.conf"},
                 {"SLURM_JOB_ID", "9"},
                 {"SLURM_JOBID", "9"},
                 {"SLURM_STEP_ID", "0"},
                 {"SLURM_NNODES", "1"},
                 {"SLURM_CPU_BIND", "cores"},
                 {"PBS_NODEFILE", "/x"},
                 {"PATH", "/usr/bin"}};
  EXPECT_TRUE(names_a_job(env));
  Environ out = without_job_variables(env);
  EXPECT_EQ(out, (Environ{{"SLURM_CONF", "/etc/slurm/slurm.conf"},
                          {"SLURM_CPU_BIND", "cores"},
                          {"PATH", "/usr/bin"}}));
  EXPECT_FALSE(names_a_job(out));
}

namespace {

// Answers the query tools from a table of argv -> output; anything else fails as Slurm does.
struct FakeScheduler {
  std::map<std::vector<std::string>, std::string> answers;
  std::vector<std::vector<std::string>> asked;
  ferry::util::CommandOutput operator()(const std::vector<std::string>& argv) {
    asked.push_back(argv);
    ferry::util::CommandOutput r;
    auto it = answers.find(argv);
    if (it == answers.end()) {
      r.status = 1;
      r.err = "slurm_load_jobs error: Invalid job id specified";
    } else {
      r.out = it->second;
    }
    return r;
  }
};

std::string scontrol_line(const std::string& id, const std::string& user, const std::string& state,
                          const std::string& nodes) {
  return "JobId=" + id + " JobName=job" + id + " UserId=" + user + "(1000) JobState=" + state +
         " Partition=debug NodeList=" + nodes + " NumNodes=3\n";
}

std::vector<std::string> squeue_on(const std::string& host) {
  return {"squeue", "-h", "-u", "alice", "-t", "RUNNING", "-w", host, "-o", "%i"};
}
std::vector<std::string> scontrol_of(const std::string& id) {
  return {"scontrol", "show", "job", "-d", "-o", id};
}

FindJobOptions slurm_options(FakeScheduler& fake) {
  FindJobOptions o;
  o.hostname = "node2";
  o.user = "alice";
  o.slurm = true;
  o.run = [&fake](const std::vector<std::string>& argv) { return fake(argv); };
  return o;
}

}  // namespace

TEST(OutsideFind, TheOneJobOnThisHostIsFoundAndSaysSo) {
  FakeScheduler fake;
  fake.answers[squeue_on("node2")] = "31\n";
  fake.answers[scontrol_of("31")] = scontrol_line("31", "alice", "RUNNING", "node[1-3]");
  auto found = find_job({}, slurm_options(fake));
  ASSERT_TRUE(found);
  EXPECT_EQ(found->job.id, "31");
  EXPECT_EQ(found->job.hosts, (std::vector<std::string>{"node1", "node2", "node3"}));
  EXPECT_NE(found->how.find("31 (job31) on node[1-3]"), std::string::npos) << found->how;
  EXPECT_NE(found->how.find("node2"), std::string::npos) << found->how;
}

TEST(OutsideFind, SeveralJobsAreListedAndJobIsAskedFor) {
  FakeScheduler fake;
  fake.answers[squeue_on("node2")] = "31\n32\n";
  fake.answers[scontrol_of("31")] = scontrol_line("31", "alice", "RUNNING", "node[1-3]");
  fake.answers[scontrol_of("32")] = scontrol_line("32", "alice", "RUNNING", "node2");
  try {
    find_job({}, slurm_options(fake));
    FAIL() << "two jobs, no error";
  } catch (const ferry::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("31 (job31) on node[1-3]"), std::string::npos) << m;
    EXPECT_NE(m.find("32 (job32) on node2"), std::string::npos) << m;
    EXPECT_NE(m.find("--job"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

TEST(OutsideFind, NoJobHereOrAJobShellAsksNothing) {
  FakeScheduler fake;
  fake.answers[squeue_on("node2")] = "";
  EXPECT_FALSE(find_job({}, slurm_options(fake)));
  fake.asked.clear();
  // Inside a job's own shell its variables say which job: the scheduler is not asked.
  EXPECT_FALSE(find_job({{"SLURM_JOB_ID", "5"}}, slurm_options(fake)));
  EXPECT_TRUE(fake.asked.empty());
  // A controller that does not answer is no job here, not an error.
  FindJobOptions o = slurm_options(fake);
  o.run = [](const std::vector<std::string>&) {
    ferry::util::CommandOutput r;
    r.status = 137;
    r.timed_out = true;
    return r;
  };
  EXPECT_FALSE(find_job({}, o));
}

TEST(OutsideFind, JobIdMustBeARunningJobOfTheUsers) {
  FakeScheduler fake;
  fake.answers[scontrol_of("40")] = scontrol_line("40", "alice", "RUNNING", "node[1-3]");
  fake.answers[scontrol_of("41")] = scontrol_line("41", "alice", "PENDING", "(null)");
  fake.answers[scontrol_of("42")] = scontrol_line("42", "bob", "RUNNING", "node1");
  FindJobOptions o = slurm_options(fake);
  o.id = "40";
  // Even inside another job's shell, --job names the job.
  auto found = find_job({{"SLURM_JOB_ID", "5"}}, o);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->job.hosts.size(), 3u);
  auto message = [&](const std::string& id) {
    o.id = id;
    try {
      find_job({}, o);
    } catch (const ferry::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("41").find("--job 41: the job is PENDING, not running"), std::string::npos);
  EXPECT_NE(message("42").find("--job 42: the job is bob's, not yours"), std::string::npos);
  EXPECT_NE(message("43").find("--job 43: no such job"), std::string::npos);
  o.slurm = false;
  EXPECT_NE(message("40").find("neither scontrol (Slurm) nor qstat (PBS)"), std::string::npos);
}

TEST(OutsideFind, PbsJobsOfTheUserOnThisHost) {
  FakeScheduler fake;
  fake.answers[{"qselect", "-u", "alice", "-s", "R"}] = "4021.pbs-head\n4030.pbs-head\n";
  // 4030 runs elsewhere: only 4021 holds cn002.
  std::string other =
      "Job Id: 4030.pbs-head\n    Job_Name = other\n    Job_Owner = alice@login1\n"
      "    job_state = R\n    exec_host = cn009/0*4\n";
  fake.answers[{"qstat", "-f", "4021.pbs-head", "4030.pbs-head"}] =
      fixture("qstat-f-openpbs.txt") + "\n" + other;
  FindJobOptions o;
  o.hostname = "cn002";
  o.user = "alice";
  o.pbs = true;
  o.run = [&fake](const std::vector<std::string>& argv) { return fake(argv); };
  auto found = find_job({}, o);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->job.id, "4021.pbs-head");
  o.hostname = "cn777";
  EXPECT_FALSE(find_job({}, o));
}
