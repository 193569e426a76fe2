// The job's processes under an Environ: util's spawner (util/process.cpp) with the variables as
// KEY=VALUE strings.
#include "job/job.hpp"

namespace ferry::job {

std::vector<std::string> environ_lines(const Environ& env) {
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

void exec_command(const std::vector<std::string>& argv, const Environ& env) {
  util::exec_command(argv, environ_lines(env));
}

int run_processes(const std::vector<std::pair<std::vector<std::string>, Environ>>& processes) {
  std::vector<util::ChildSpec> children;
  for (const auto& [argv, env] : processes) children.push_back({argv, environ_lines(env)});
  return util::run_children(children);
}

}  // namespace ferry::job
