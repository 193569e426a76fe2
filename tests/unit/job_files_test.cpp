// The job's files: where they live (the XDG rules), the hostfile named by its content, and the
// env.sh that `ferry job save` writes and `ferry job show` reads back.
#include <gtest/gtest.h>

#include <filesystem>

#include "job/job.hpp"
#include "temp_dir.hpp"

using namespace ferry;
using namespace ferry::job;

namespace {

Allocation slurm_job() {
  Allocation a;
  a.scheduler = Scheduler::slurm;
  a.job_id = "4242";
  a.hosts = {"node1", "node2"};
  return a;
}

}  // namespace

TEST(JobFiles, CacheRootFollowsXdg) {
  EXPECT_EQ(jobs_root({{"HOME", "/home/u"}}), "/home/u/.cache/ferry/jobs");
  EXPECT_EQ(jobs_root({{"HOME", "/home/u"}, {"XDG_CACHE_HOME", "/scratch/c"}}),
            "/scratch/c/ferry/jobs");
  // Empty or relative: as if unset (the XDG spec).
  EXPECT_EQ(jobs_root({{"HOME", "/home/u"}, {"XDG_CACHE_HOME", ""}}), "/home/u/.cache/ferry/jobs");
  EXPECT_EQ(jobs_root({{"HOME", "/home/u"}, {"XDG_CACHE_HOME", "rel/c"}}),
            "/home/u/.cache/ferry/jobs");
  EXPECT_EQ(jobs_root({}), "/tmp/.cache/ferry/jobs");
}

TEST(JobFiles, OneDirectoryPerJob) {
  Environ env = {{"HOME", "/h"}, {"USER", "ada"}};
  EXPECT_EQ(job_dir(slurm_job(), env), "/h/.cache/ferry/jobs/slurm-4242");
  Allocation pbs;
  pbs.scheduler = Scheduler::pbs;
  pbs.job_id = "7.pbs/a";
  EXPECT_EQ(job_dir(pbs, env), "/h/.cache/ferry/jobs/pbs-7.pbs_a");
  EXPECT_EQ(job_dir(Allocation{}, env), "/h/.cache/ferry/jobs/none-local-ada");
  EXPECT_EQ(job_hostfile(slurm_job(), env), "/h/.cache/ferry/jobs/slurm-4242/hostfile");
}

TEST(JobFiles, HostfileNamedByItsContent) {
  std::string a = hostfile_named_by_content("/j/hostfile", "n1\nn2\n");
  EXPECT_EQ(a.rfind("/j/hostfile-", 0), 0u);
  EXPECT_EQ(a.size(), std::string("/j/hostfile-").size() + 8);
  EXPECT_EQ(a, hostfile_named_by_content("/j/hostfile", "n1\nn2\n"));
  EXPECT_NE(a, hostfile_named_by_content("/j/hostfile", "n1\n"));

  TempDir tmp;
  LaunchPlan plan;
  std::string hostfile = tmp / "job/hostfile";
  plan.argv = {"mpiexec", "-f", hostfile, "--", "x"};
  plan.hostfile_text = "n1\nn2\n";
  write_hostfile(plan, hostfile);
  std::string named = hostfile_named_by_content(hostfile, plan.hostfile_text);
  EXPECT_EQ(plan.argv[2], named);
  EXPECT_EQ(util::read_file(named), "n1\nn2\n");
  // Launchers without a hostfile: nothing written, the line untouched.
  LaunchPlan srun;
  srun.argv = {"srun", "x"};
  write_hostfile(srun, tmp / "other/hostfile");
  EXPECT_FALSE(std::filesystem::exists(tmp / "other"));
}

TEST(JobFiles, EnvScriptRoundTrip) {
  Allocation a = slurm_job();
  Environ env = {{"SLURM_JOB_ID", "4242"}, {"SLURM_JOB_NAME", "it's a \"test\" ünïcode"},
                 {"SLURM_PROCID", "3"},  // per task: left out
                 {"SLURM_STEP_ID", "0"},   {"PBS_O_WORKDIR", ""},
                 {"HOME", "/home/u"}};
  JobSummary summary;
  summary.gpus_per_host = 4;
  summary.machine = "generic slurm";
  summary.launch =
      std::vector<std::string>{"srun", "-N", "2", "/opt/ferry", "rank", "--env", "A=b c", "--"};
  std::string text = job_env_script(a, env, "/j/host file", summary);
  EXPECT_EQ(text.rfind("# ferry job environment: slurm job 4242, saved by `ferry job save`\n", 0),
            0u);
  EXPECT_NE(text.find("export SLURM_JOB_NAME="), std::string::npos);
  EXPECT_EQ(text.find("SLURM_PROCID"), std::string::npos);
  EXPECT_EQ(text.find("SLURM_STEP_ID"), std::string::npos);
  EXPECT_EQ(text.find("HOME"), std::string::npos);
  EXPECT_NE(text.find("export PBS_O_WORKDIR=''\n"), std::string::npos);

  std::vector<std::pair<std::string, std::string>> want = {
      {"FERRY_JOB_SCHEDULER", "slurm"},   {"FERRY_JOB_ID", "4242"},
      {"FERRY_HOSTFILE", "/j/host file"}, {"FERRY_NHOSTS", "2"},
      {"FERRY_NGPU_PER_HOST", "4"},       {"FERRY_NGPUS", "8"},
      {"FERRY_MACHINE", "generic slurm"}, {"FERRY_LAUNCH", util::command_line(*summary.launch)}};
  EXPECT_EQ(read_job_env_script(text), want);

  // Without a launch line, no FERRY_LAUNCH; the other variables' values come back as written.
  summary.launch.reset();
  summary.machine = "";
  auto read = read_job_env_script(job_env_script(a, env, "it's", summary));
  ASSERT_EQ(read.size(), 7u);
  EXPECT_EQ(read[2].second, "it's");
  EXPECT_EQ(read[6], (std::pair<std::string, std::string>{"FERRY_MACHINE", ""}));
}

TEST(JobFiles, SaveWritesTheHostsTheScriptAndLatest) {
  TempDir tmp;
  Environ env = {{"XDG_CACHE_HOME", tmp.path.string()}, {"SLURM_JOB_ID", "4242"}};
  JobSummary summary;
  summary.machine = "m";
  SavedJob saved = save_job(slurm_job(), env, summary, "");
  std::string dir = tmp / "ferry/jobs/slurm-4242";
  EXPECT_EQ(saved.file, dir + "/env.sh");
  EXPECT_EQ(saved.hostfile, dir + "/hostfile");
  EXPECT_EQ(util::read_file(saved.hostfile), "node1\nnode2\n");
  EXPECT_EQ(util::read_file(saved.file), job_env_script(slurm_job(), env, saved.hostfile, summary));
  EXPECT_EQ(std::filesystem::read_symlink(tmp / "ferry/jobs/latest").string(), saved.file);

  // Elsewhere, by --to; `latest` follows the last save.
  SavedJob other = save_job(slurm_job(), env, summary, tmp / "mine.sh");
  EXPECT_EQ(other.file, tmp / "mine.sh");
  EXPECT_TRUE(std::filesystem::exists(other.file));
  EXPECT_EQ(std::filesystem::read_symlink(tmp / "ferry/jobs/latest").string(), other.file);
}

TEST(JobFiles, FindsTheSavedJob) {
  TempDir tmp;
  Environ outside = {{"XDG_CACHE_HOME", tmp.path.string()}};
  try {
    find_saved_job(outside);
    ADD_FAILURE() << "found a saved job in an empty cache";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), Error::Kind::usage);
    EXPECT_NE(std::string(e.what()).find("run `ferry job save` in the job first"),
              std::string::npos);
  }
  Environ in_job = {{"XDG_CACHE_HOME", tmp.path.string()},
                    {"SLURM_JOB_ID", "4242"},
                    {"SLURM_JOB_NODELIST", "node[1-2]"}};
  SavedJob saved = save_job(slurm_job(), in_job, {}, "");
  EXPECT_EQ(find_saved_job(in_job), saved.file);
  EXPECT_EQ(find_saved_job(outside), tmp / "ferry/jobs/latest");
}
