// The layout of a Ray cluster's private directory (0700, on storage every node sees), and the
// environment every process of the cluster runs under.
#pragma once

#include <string>

#include "job/job.hpp"

namespace ferry::runtime {

class RayFiles {
 public:
  explicit RayFiles(std::string dir) : m_dir(std::move(dir)) {}
  const std::string& dir() const { return m_dir; }
  // The coordinator's record: its pid and host, the env, the head's address (status and stop).
  std::string state() const { return m_dir + "/cluster.json"; }
  // The cluster's token (0600): Ray reads it from RAY_AUTH_TOKEN_PATH, on every node.
  std::string token() const { return m_dir + "/token"; }
  std::string watch_script() const { return m_dir + "/ferry_ray_watch.py"; }
  // Made by the coordinator when the cluster is to end; every node watches for it.
  std::string stop() const { return m_dir + "/stop"; }
  std::string log_dir() const { return m_dir + "/logs"; }
  std::string log(const std::string& name) const { return log_dir() + "/" + name + ".log"; }

 private:
  std::string m_dir;
};

// What Ray's processes, the watcher and the driver need: the marker, the token (unless
// insecure) and the address (when known), no usage reports.
job::Environ ray_environ(const RayFiles& files, const std::string& cluster, bool token,
                         const std::string& address, job::Environ env);

// The Python ferry runs in the env (src/runtime/python/*.py, built into the binary).
extern const char k_ray_probe_py[];
extern const char k_ray_watch_py[];

}  // namespace ferry::runtime
