// The node side of a stage: extract, report, wait for the word, commit or abort.
#include <fcntl.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "env/env.hpp"
#include "stage/stage.hpp"

namespace ferry::stage {
namespace {

// The name the coordinator knows this node by: Slurm's node name (it may differ from the host
// name, e.g. FQDNs or Cray's NodeName/NodeHostname split), else the host name.
std::string this_host() {
  if (const char* slurm = std::getenv("SLURMD_NODENAME"); slurm && *slurm) return slurm;
  return util::host_name();
}

void emit(NodeReport r) {
  r.peak_bytes = util::peak_resident_bytes();
  std::string line = report_line(r) + "\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

// Removes the node's copy of the archive however this node's part ends, and before its final
// report: the coordinator sweeps only nodes that sent none, and srun may kill this task (another
// node's failure ends the step) as soon as the report is out.
struct RemoveOnExit {
  std::string path;
  bool active;
  void now() {
    if (active) ::unlink(path.c_str());
    active = false;
  }
  ~RemoveOnExit() { now(); }
};

}  // namespace

std::string node_name() { return this_host(); }

std::optional<std::string> shared_file_system(const std::string& path) {
  struct statfs fs {};
  if (::statfs(path.c_str(), &fs) != 0) return std::nullopt;
  // The file systems HPC centres share between nodes (statfs magic numbers).
  static const std::pair<long, const char*> shared[] = {
      {0x6969, "NFS"},        {0x0BD00BD0, "Lustre"}, {0x47504653, "GPFS"}, {0xFF534D42, "CIFS"},
      {0x19830326, "BeeGFS"}, {0x00C36400, "CephFS"}, {0x65735546, "FUSE"}, {0x53464846, "WekaFS"},
  };
  for (const auto& [magic, name] : shared)
    if (static_cast<long>(fs.f_type) == magic) return std::string(name);
  return std::nullopt;
}

std::string report_line(const NodeReport& r) {
  // Errors can quote member names from a corrupt archive: never let bytes that are not UTF-8
  // stop the report itself.
  return nlohmann::ordered_json(r).dump(-1, ' ', false,
                                        nlohmann::ordered_json::error_handler_t::replace);
}

NodeReport parse_report_line(const std::string& line) {
  auto j = nlohmann::json::parse(line);
  NodeReport r;
  r.host = j.at("host").get<std::string>();
  auto status = util::from_name<NodeStatus>(j.at("status").get<std::string>());
  if (!status) throw Error(fmt::format("{}: not a node status", j.at("status").dump()));
  r.status = *status;
  r.bytes = j.value("bytes", std::uint64_t{0});
  r.files = j.value("files", std::uint64_t{0});
  r.seconds = j.value("seconds", 0.0);
  r.peak_bytes = j.value("peak_bytes", std::uint64_t{0});
  r.error = j.value("error", "");
  return r;
}

namespace {

// What a node stages: an archive extracted (an unpack session), or an image taken whole.
class NodeWork {
 public:
  explicit NodeWork(const NodeOptions& o) {
    if (o.image) {
      m_image.emplace(o.dir, o.identity);
      if (!m_image->present()) {
        m_image->adopt(o.archive);
        m_image->finish();
      }
      return;
    }
    env::UnpackOptions u;
    u.archive = o.archive;
    u.dest = o.dir;
    u.jobs = o.jobs;
    m_session.emplace(u);
    if (!m_session->already_present()) m_session->extract();
  }
  bool present() const { return m_image ? m_image->present() : m_session->already_present(); }
  std::uint64_t bytes() const { return m_image ? m_image->bytes() : m_session->result().bytes; }
  std::uint64_t files() const { return m_image ? 1 : m_session->result().files; }
  void commit() {
    if (present()) return;
    if (m_image)
      m_image->commit();
    else
      m_session->commit();
  }

 private:
  std::optional<env::UnpackSession> m_session;
  std::optional<ImageReceiver> m_image;
};

}  // namespace

int run_node(const NodeOptions& o) {
  RemoveOnExit copy{o.archive, o.remove_archive};
  util::Stopwatch clock;
  NodeReport r;
  r.host = this_host();
  std::optional<NodeWork> session;
  try {
    session.emplace(o);
    r.status = session->present() ? NodeStatus::present : NodeStatus::ready;
    r.bytes = session->bytes();
    r.files = session->files();
  } catch (const std::exception& e) {
    // A node told to stop (srun cancelling the step) ends by its signal once the temporary tree
    // is gone: the extraction's errors from that removal are not this node's failure.
    util::await_signal_exit();
    r.status = NodeStatus::failed;
    r.error = e.what();
    r.seconds = clock.seconds();
    session.reset();  // removes the temporary tree
    copy.now();
    emit(r);
    return 1;
  } catch (...) {
    util::await_signal_exit();
    r.status = NodeStatus::failed;
    r.error = "unexpected error";
    session.reset();
    copy.now();
    emit(r);
    return 1;
  }
  r.seconds = clock.seconds();
  emit(r);
  // The coordinator's word, once every node has reported. No word (EOF) means abort.
  std::string word;
  if (!std::getline(std::cin, word)) word = "abort";
  if (word == "commit") {
    try {
      session->commit();
      r.status = session->present() ? NodeStatus::present : NodeStatus::unpacked;
    } catch (const std::exception& e) {
      r.status = NodeStatus::failed;
      r.error = e.what();
    }
  } else {
    session.reset();
    r.status = NodeStatus::aborted;
  }
  r.seconds = clock.seconds();
  copy.now();
  emit(r);
  return r.status == NodeStatus::failed ? 1 : 0;
}

void sweep_node(const std::string& dir, const std::string& archive_copy) {
  util::SiblingPath where = util::sibling_path(dir);
  std::error_code ec;
  if (!std::filesystem::is_directory(where.parent, ec)) return;
  // Waits for an unpack still running here, and sweeps what dead ones left; stages nothing.
  util::StagedTree tree(where);
  if (!archive_copy.empty()) ::unlink(archive_copy.c_str());
}

NodeReport prepare_node(const NodeOptions& o) {
  NodeReport r;
  r.host = this_host();
  try {
    std::string dest = util::absolute_path(o.dir);
    std::string parent = std::filesystem::path(dest).parent_path().string();
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) throw Error(fmt::format("{}: cannot create directory: {}", parent, ec.message()));
    // Writable? Probe with a file: access() says nothing of a read-only mount for root.
    std::string probe = fmt::format("{}/.ferry-probe-{}", parent, ::getpid());
    util::UniqueFd fd(::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) util::throw_errno(parent, "cannot write", errno);
    ::unlink(probe.c_str());
    // Every node would fight over one tree (and its lock) on a shared file system.
    if (auto shared = shared_file_system(parent))
      throw Error(fmt::format(
          "{}: is on {}, shared between nodes: stage to node-local storage (or use ferry "
          "unpack once)",
          parent, *shared));
    sweep_node(o.dir, o.archive);
    // An image's receiver also refuses a target that cannot take a file, before anything moves.
    bool present =
        o.image ? ImageReceiver(dest, o.identity).present() : env::holds_archive(dest, o.identity);
    r.status = present ? NodeStatus::present : NodeStatus::ok;
  } catch (const std::exception& e) {
    r.status = NodeStatus::failed;
    r.error = e.what();
  }
  // A node that holds the archive already did only this check: its peak is the check's.
  r.peak_bytes = util::peak_resident_bytes();
  return r;
}

}  // namespace ferry::stage
