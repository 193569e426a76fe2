// Which Python runs a service, and the environment it runs under: the env activated as `ferry
// activate` would, without sourcing anything (the nodes run no shell for it).
#include <unistd.h>

#include <fmt/format.h>

#include "env/env.hpp"
#include "runtime/runtime.hpp"

namespace ferry::runtime {
namespace {

bool executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

std::string on_path(const std::string& name, const job::Environ& env) {
  const std::string path = job::lookup(env, "PATH").value_or("");  // split's views point into it
  for (std::string_view dir : util::split(path, ':')) {
    if (dir.empty()) continue;
    std::string candidate = fmt::format("{}/{}", dir, name);
    if (executable(candidate)) return util::absolute_path(candidate);
  }
  return {};
}

}  // namespace

PythonEnv find_python(const std::string& env_dir, const job::Environ& env) {
  PythonEnv py;
  py.environ = env;
  std::string prefix = env_dir;
  if (prefix.empty()) prefix = job::lookup(env, "CONDA_PREFIX").value_or("");
  if (prefix.empty()) prefix = job::lookup(env, "VIRTUAL_ENV").value_or("");
  if (prefix.empty()) {
    py.python = on_path("python3", env);
    if (py.python.empty())
      throw Error("no python3 on PATH, and no env active: name one with --env DIR",
                  Error::Kind::usage);
    return py;
  }
  py.prefix = util::absolute_path(prefix);
  std::string what = env_dir.empty() ? "the active env " + py.prefix : "--env " + env_dir;
  if (::access(py.prefix.c_str(), F_OK) != 0)
    throw Error(fmt::format("{}: not on this host ({})", what, util::host_name()),
                Error::Kind::usage);
  for (const char* name : {"bin/python3", "bin/python"})
    if (executable(py.prefix + "/" + name)) {
      py.python = py.prefix + "/" + name;
      break;
    }
  if (py.python.empty())
    throw Error(fmt::format("{}: no bin/python3 (not a Python environment)", what),
                Error::Kind::usage);
  py.environ = env::activated_environ(py.prefix, std::move(py.environ));
  return py;
}

}  // namespace ferry::runtime
