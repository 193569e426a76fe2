// The environment as a value, so discovery can be run on recorded variables.
#include <cstdlib>

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

void enter_environment(const Environ& env) {
  for (const auto& [name, value] : current_environ())
    if (!env.count(name)) ::unsetenv(name.c_str());
  for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
}

std::optional<std::string> lookup(const Environ& env, const std::string& name) {
  auto it = env.find(name);
  if (it == env.end()) return std::nullopt;
  return it->second;
}

}  // namespace ferry::job
