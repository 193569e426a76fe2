// The job's processes under an Environ: util's spawner (util/process.cpp) with the variables as
// KEY=VALUE strings.
#include "job/job.hpp"

namespace ferry::job {
namespace {

std::vector<std::string> flatten(const Environ& env) {
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

}  // namespace

void exec_command(const std::vector<std::string>& argv, const Environ& env) {
  util::exec_command(argv, flatten(env));
}

int run_processes(const std::vector<std::pair<std::vector<std::string>, Environ>>& processes) {
  std::vector<util::ChildSpec> children;
  for (const auto& [argv, env] : processes) children.push_back({argv, flatten(env)});
  return util::run_children(children);
}

}  // namespace ferry::job
