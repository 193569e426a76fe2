// The JSON forms of job's results: the keys ferry job save --json and the "launch" object of
// ferry job / launch --dry-run --json show, in that order.
#include <gtest/gtest.h>

#include <vector>

#include "job/job.hpp"
#include "json_keys.hpp"

using namespace ferry;

TEST(JobJson, LaunchPlanAndSavedJob) {
  job::LaunchPlan plan;
  plan.nodes = 2;
  plan.ranks = 8;
  plan.master_port = 29500;
  plan.argv = {"srun", "-N", "2", "app"};
  nlohmann::ordered_json j = plan;
  EXPECT_EQ(json_keys(j),
            (std::vector<std::string>{"nodes", "ranks", "ranks_per_node", "gpus_per_rank",
                                      "threads_per_rank", "master_addr", "master_port", "argv"}));
  EXPECT_EQ(j["ranks"], 8);
  EXPECT_EQ(j["argv"].dump(), R"(["srun","-N","2","app"])");
  nlohmann::ordered_json saved = job::SavedJob{"/c/env.sh", "/c/hostfile"};
  EXPECT_EQ(saved.dump(), R"({"file":"/c/env.sh","hostfile":"/c/hostfile"})");
}
