// The environment as a value, so discovery can be run on recorded variables.
#include "job/job.hpp"

extern char** environ;

namespace ferry::job {

Environ current_environ() {
  Environ env;
  for (char** p = environ; p && *p; ++p) {
    std::string_view entry(*p);
    std::size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

std::optional<std::string> lookup(const Environ& env, const std::string& name) {
  auto it = env.find(name);
  if (it == env.end()) return std::nullopt;
  return it->second;
}

}  // namespace ferry::job
