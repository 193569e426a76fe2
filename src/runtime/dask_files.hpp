// The layout of a Dask cluster's private directory (0700, on storage every node sees): one place
// for every path, used by the coordinator, the nodes, status and stop.
#pragma once

#include <map>
#include <string>

namespace ferry::runtime {

class DaskFiles {
 public:
  explicit DaskFiles(std::string dir) : m_dir(std::move(dir)) {}
  const std::string& dir() const { return m_dir; }
  // What Client(scheduler_file=...) reads: {"address": ..., ...}, written once the scheduler
  // listens.
  std::string scheduler_file() const { return m_dir + "/scheduler.json"; }
  // The coordinator's own record: its pid, the hosts, the env, the addresses (status and stop).
  std::string state() const { return m_dir + "/cluster.json"; }
  std::string preload() const { return m_dir + "/ferry_dask_preload.py"; }
  std::string status_script() const { return m_dir + "/ferry_dask_status.py"; }
  // The cluster's key and certificate (one PEM, 0600) and the certificate alone, its CA.
  std::string credentials() const { return m_dir + "/tls/cluster.pem"; }
  std::string ca() const { return m_dir + "/tls/ca.pem"; }
  // JupyterLab's token (0600): read by the node that starts it, never on a command line.
  std::string jupyter_token() const { return m_dir + "/jupyter_token"; }
  std::string log_dir() const { return m_dir + "/logs"; }
  std::string log(const std::string& name) const { return log_dir() + "/" + name + ".log"; }

 private:
  std::string m_dir;
};

// The Dask configuration a client needs to reach the cluster with no arguments: the address,
// and the cluster's certificate for both ends (distributed reads DASK_* variables as config).
std::map<std::string, std::string> client_environ(const DaskFiles& files,
                                                  const std::string& address, bool tls,
                                                  std::map<std::string, std::string> env);

// The Python ferry runs in the env (src/runtime/python/*.py, built into the binary).
extern const char k_dask_setup_py[];
extern const char k_dask_preload_py[];
extern const char k_dask_status_py[];

}  // namespace ferry::runtime
