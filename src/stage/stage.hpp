// ferry::stage — an environment archive onto node-local storage on every node of a job, all or
// nothing: every node extracts into a temporary directory, the nodes agree that all succeeded,
// and only then does each rename it into place. Built on env (unpack sessions) and job
// (allocation, launchers).
//
// Two ways to move the bytes:
//   mpi     ferry-mpi, started once per node by the MPI launcher: one reader streams the archive's
//           frames from shared storage, pipelined broadcasts carry them to the node leaders, which
//           extract them as they arrive (no copy on the node's disk, no second pass).
//   sbcast  Slurm without MPI: sbcast the archive next to DIR on every node, then one task per
//           node extracts it, reports, and commits or aborts on the coordinator's word.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "job/job.hpp"

namespace ferry::stage {

enum class Via { automatic, mpi, sbcast };
NLOHMANN_JSON_SERIALIZE_ENUM(Via,
                             {{Via::automatic, "auto"}, {Via::mpi, "mpi"}, {Via::sbcast, "sbcast"}})

struct StageOptions {
  std::string archive;
  std::string dir;  // where the environment goes on every node
  Via via = Via::automatic;
  unsigned jobs = 0;      // threads per node (0: all cores)
  double timeout = 1800;  // seconds for the whole stage; a stuck node fails it
  // MPI path: seconds for every node's rank to start. A launcher that fails to start ranks
  // without giving up (Hydra after the srun it started died) is stopped then, and its error shown.
  double start_timeout = 60;
  // MPI path: told the bytes broadcast (ferry-mpi is asked to report them only then).
  util::ProgressSink* progress = nullptr;
  std::string ferry;      // this ferry binary (started on the nodes)
  std::string ferry_mpi;  // the ferry-mpi binary, when built
};

// Where a node stands. Its outcome in the result is unpacked, present, failed, aborted or lost;
// ok, ready and swept are words of the node side on the way.
enum class NodeStatus {
  ok,        // prepared: there is work to do
  present,   // DIR already held this archive
  ready,     // extracted beside DIR, waiting for the word to commit
  unpacked,  // committed: DIR holds it now
  swept,     // what a failed stage left here is removed
  failed,    // error says why
  aborted,   // it was fine, another node was not
  lost,      // no word from it (error says what is known)
};
NLOHMANN_JSON_SERIALIZE_ENUM(NodeStatus, {{NodeStatus::ok, "ok"},
                                          {NodeStatus::present, "present"},
                                          {NodeStatus::ready, "ready"},
                                          {NodeStatus::unpacked, "unpacked"},
                                          {NodeStatus::swept, "swept"},
                                          {NodeStatus::failed, "failed"},
                                          {NodeStatus::aborted, "aborted"},
                                          {NodeStatus::lost, "lost"}})

struct NodeReport {
  std::string host;
  NodeStatus status = NodeStatus::lost;  // until it says otherwise
  std::string error;
  std::uint64_t bytes = 0, files = 0;
  double seconds = 0;
  std::uint64_t peak_bytes = 0;  // the node-side process's largest resident set

  static NodeReport failed(std::string host, std::string error) {
    return with(std::move(host), NodeStatus::failed, std::move(error));
  }
  static NodeReport lost(std::string host, std::string error) {
    return with(std::move(host), NodeStatus::lost, std::move(error));
  }
  static NodeReport aborted(std::string host) { return with(std::move(host), NodeStatus::aborted); }
  static NodeReport swept(std::string host) { return with(std::move(host), NodeStatus::swept); }
  // DIR holds the archive on this node: unpacked now, or present already.
  bool staged() const { return status == NodeStatus::unpacked || status == NodeStatus::present; }

 private:
  static NodeReport with(std::string host, NodeStatus status, std::string error = "") {
    NodeReport r;
    r.host = std::move(host);
    r.status = status;
    r.error = std::move(error);
    return r;
  }
};
FERRY_JSON_FIELDS(NodeReport, host, status, bytes, files, seconds, peak_bytes, error)

struct StageResult {
  Via via = Via::automatic;  // the way taken: mpi or sbcast
  std::string archive, dir;  // for an image, dir is the file it is copied to on every node
  bool image = false;        // a SquashFS image, staged whole
  bool ok = false;
  double seconds = 0;
  std::vector<std::pair<std::string, double>> phases;  // in order: "prepare", "broadcast", ...
  std::uint64_t archive_bytes = 0;
  std::vector<NodeReport> nodes;
};
// By hand, not FERRY_JSON_FIELDS: the phases are one object, in the order they happened.
inline void to_json(nlohmann::ordered_json& json, const StageResult& r) {
  nlohmann::ordered_json phases = nlohmann::ordered_json::object();
  for (const auto& [name, seconds] : r.phases) phases[name] = seconds;
  json = {{"ok", r.ok},           {"via", r.via},
          {"archive", r.archive}, {"kind", r.image ? "image" : "env"},
          {"dir", r.dir},         {"archive_bytes", r.archive_bytes},
          {"seconds", r.seconds}, {"phases", phases},
          {"nodes", r.nodes}};
}

// Runs the whole stage from a batch script or an interactive allocation. Errors that stop it
// before any node worked throw Error; per-node failures come back in the result (ok false).
StageResult stage(const StageOptions& options, const job::Environ& env);

// Where the ferry-mpi for the ferry binary FERRY is: beside it (a build tree), else
// PREFIX/libexec/ferry/ferry-mpi for an installed PREFIX/bin/ferry (`make install`). The first of
// the two that is an executable; the installed place when neither is (so that an error names it).
std::string find_ferry_mpi(const std::string& ferry);

// What `ferry stage` tells `ferry stage-node` on each node (the sbcast path), and what the MPI
// path tells ferry-mpi: one encoder and one decoder each (src/stage/node_options.cpp), so the
// coordinator and the nodes cannot drift apart.
struct NodeOptions {
  enum class Step { extract, prepare, sweep };
  Step step = Step::extract;  // run_node, prepare_node or sweep_node
  std::string archive, dir;
  unsigned jobs = 0;
  bool remove_archive = false;
  bool image = false;          // archive is a SquashFS image, staged whole at dir (a file)
  std::uint64_t identity = 0;  // prepare, and extract of an image: env::archive_identity or
                               // image_identity
};
// The words after `ferry stage-node`: --prepare or --sweep for those steps, --archive, --to, then
// --image, --identity (prepare, or an image), --remove-archive and -j when they are not their
// defaults.
std::vector<std::string> encode_node_options(const NodeOptions& options);
// Reads them back in any order, each option as "--name value" (a value may be empty or start
// with '-'). Throws a usage Error naming the option for an unknown or malformed one, or a missing
// --archive or --to.
NodeOptions decode_node_options(const std::vector<std::string>& words);

struct MpiOptions {
  std::string archive, dir;
  unsigned jobs = 0;      // threads per node, 0: all cores
  bool progress = false;  // rank 0 reports the bytes sent as they go
};
// ferry-mpi's arguments: stage ARCHIVE DIR [-j N] [--progress].
std::vector<std::string> encode_mpi_options(const MpiOptions& options);
// Reads them back; nullopt when the words are not of that grammar (ferry-mpi prints its usage).
std::optional<MpiOptions> decode_mpi_options(const std::vector<std::string>& words);

// The node side of the sbcast path (`ferry stage-node`): extract `archive` for `dir`, print a JSON
// report line, read "commit" or "abort" from stdin, act, print the final report line. Always
// removes `archive` (the node's copy) when remove_archive. Returns the exit status.
int run_node(const NodeOptions& options);

// Removes what a failed stage may have left on this node: temporary trees beside dir and the
// archive copy. Never touches dir itself.
void sweep_node(const std::string& dir, const std::string& archive_copy);
// Before a stage: makes dir's parent, sweeps leftovers, and reports present (dir holds the
// archive, or is the image, with this identity), ok (work to do) or failed (e.g. not writable).
NodeReport prepare_node(const NodeOptions& options);

// Images. A SquashFS image is staged whole, as one file: no extraction, the same all-or-nothing
// and reports. Its identity is the xxh3 of its bytes: a node holds it when the file at the
// target has that hash, and every node's copy is checked against it before the commit.
std::uint64_t image_identity(const std::string& path);
bool holds_image(const std::string& target, std::uint64_t identity);
// Where the image goes on every node: --to itself when it ends in .sqfs, else the image's own
// name in the directory --to.
std::string image_target(const std::string& to, const std::string& image);

// An image as it arrives on a node: written beside its target (holding the target's lock, what
// dead runs left swept), hashed on the way, renamed into place by commit(). Destroyed without a
// commit, it leaves nothing. The target's parent must exist.
class ImageReceiver {
 public:
  ImageReceiver(const std::string& target, std::uint64_t identity);
  bool present() const { return m_present; }  // the target holds it already
  void write(std::string_view bytes);         // the next bytes, in order (the MPI path)
  // A whole copy already on this node (sbcast's) becomes the temporary, and is hashed.
  void adopt(const std::string& copy);
  // Error naming the target when the bytes received are not the image's.
  void finish();
  void commit();
  std::uint64_t bytes() const { return m_bytes; }

 private:
  std::string m_target;
  std::uint64_t m_identity;
  util::StagedTree m_tree;
  bool m_present;
  util::UniqueFd m_fd;
  util::Xxh3Stream m_hash;
  std::uint64_t m_bytes = 0;
};

// The name of the shared file system (NFS, Lustre, GPFS, ...) that holds path, if it is one.
std::optional<std::string> shared_file_system(const std::string& path);

// This node's name as the coordinator knows it (SLURMD_NODENAME, else the host name).
std::string node_name();

// A report as one JSON line (its JSON form), and back. A line without a host or with a status not
// in the table is not a report: Error.
std::string report_line(const NodeReport& report);
NodeReport parse_report_line(const std::string& line);

}  // namespace ferry::stage
