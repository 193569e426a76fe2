// ferry-mpi: the MPI path of `ferry stage`, a separate program so that ferry itself never links
// an MPI. Started once per node by the site's mpiexec (ferry stage builds the line, with
// stage::encode_mpi_options):
//
//   ferry-mpi stage ARCHIVE DIR [-j N] [--progress]
//                                          stage; rank 0 prints {"started": RANKS} once every
//                                          rank runs, one JSON report line per node (and, with
//                                          --progress, {"progress": BYTES} lines)
//   ferry-mpi --mpi                        print the MPI library's version line and its mpiexec
//
// Rank 0 maps the archive on shared storage and broadcasts its manifest and frame index, then its
// bytes in pipelined chunks to the node leaders (the first rank on each node), which extract
// frames as they arrive. Every leader extracts into a temporary directory; an allreduce decides:
// all succeeded, every leader renames into place; any failed, every leader removes its tree.
// A SquashFS image goes the same way unextracted: its bytes in units to every node's copy beside
// DIR (then a file), checked against rank 0's hash before the same allreduce.
//
// What a node does with the bytes is node_work.hpp's: built with node_work.cpp this is ferry-mpi;
// built on SimGrid's SMPI with simulated_node.cpp (FERRY_SIMULATED) it is ferry-mpi-simulated,
// the same choreography on a simulated platform of up to thousands of nodes (make simulate).
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "stage/mpi/node_work.hpp"
#include "stage/stage.hpp"
#include "stage/window.hpp"

#ifdef FERRY_SIMULATED
#include <smpi/smpi.h>
#endif

namespace {

using namespace ferry;
using stage::mpi::NodeWork;

#ifdef FERRY_SIMULATED
// SMPI runs its nonblocking collectives linearly from the root (N - 1 sends, whatever N), and its
// blocking ones with MPICH's tree algorithms, which is what the real libraries' nonblocking ones
// use: the simulated program calls the blocking ones, done before their request is tested.
constexpr bool k_simulated = true;
#else
constexpr bool k_simulated = false;
#endif

// Units of the broadcast in flight at once (stage::cut_units makes them; MPI_Ibcast each).
constexpr std::size_t k_in_flight = 4;

// The pause between two polls of MPI: short while things move, doubling up to 1 ms while nothing
// does. A blocking MPI call would spin and take a core from the extraction threads; a fixed short
// pause costs a few percent of a core per node over a whole stage (measured).
class Backoff {
 public:
  void pause() {
    stage::mpi::pause_us(m_us);
    m_us = std::min(m_us * 2, 1000u);
  }
  void moved() { m_us = 50; }

 private:
  unsigned m_us = 50;
};

// Has a nonblocking operation completed? (A null request has: SMPI's MPI_Test says otherwise.)
bool test_done(MPI_Request& request) {
  if (request == MPI_REQUEST_NULL) return true;
  int done = 0;
  MPI_Test(&request, &done, MPI_STATUS_IGNORE);
  return done;
}

// Waits for a nonblocking operation, polling quietly.
void wait_quietly(MPI_Request& request) {
  Backoff backoff;
  while (!test_done(request)) backoff.pause();
}

int all_min(int value, MPI_Comm comm) {
  int result = 0;
  if constexpr (k_simulated) {
    MPI_Allreduce(&value, &result, 1, MPI_INT, MPI_MIN, comm);
    return result;
  }
  MPI_Request request;
  MPI_Iallreduce(&value, &result, 1, MPI_INT, MPI_MIN, comm, &request);
  wait_quietly(request);
  return result;
}

void barrier_quietly(MPI_Comm comm) {
  if constexpr (k_simulated) return (void)MPI_Barrier(comm);
  MPI_Request request;
  MPI_Ibarrier(comm, &request);
  wait_quietly(request);
}

void allgather_quietly(const int* value, int* all, MPI_Comm comm) {
  if constexpr (k_simulated) return (void)MPI_Allgather(value, 1, MPI_INT, all, 1, MPI_INT, comm);
  MPI_Request request;
  MPI_Iallgather(value, 1, MPI_INT, all, 1, MPI_INT, comm, &request);
  wait_quietly(request);
}

// One unit of the archive from rank 0 to every mover.
void start_unit_bcast(char* bytes, std::uint64_t size, MPI_Comm comm, MPI_Request* request) {
  if constexpr (k_simulated) {
    MPI_Bcast(bytes, static_cast<int>(size), MPI_BYTE, 0, comm);
    *request = MPI_REQUEST_NULL;
    return;
  }
  MPI_Ibcast(bytes, static_cast<int>(size), MPI_BYTE, 0, comm, request);
}

// Where rank 0's time went, phase by phase, from the start of the program (ferry stage prints
// them; MPI start-up is the first).
class Phases {
 public:
  void end(const char* name) {
    double now = stage::mpi::now_seconds() - m_start;
    m_list.emplace_back(name, now - m_last);
    m_last = now;
  }
  double total() const { return stage::mpi::now_seconds() - m_start; }
  std::string json() const {
    std::string out = "{\"phases\": [";
    for (const auto& [name, seconds] : m_list)
      out += fmt::format("{}[\"{}\", {:.3f}]", out.back() == '[' ? "" : ", ", name, seconds);
    return out + fmt::format("], \"total\": {:.3f}}}", total());
  }

 private:
  double m_start = stage::mpi::now_seconds();
  double m_last = 0;
  std::vector<std::pair<std::string, double>> m_list;
};

// One buffer from root to everyone: its length, then its bytes.
void bcast_string(std::string& s, int root, MPI_Comm comm) {
  std::uint64_t n = s.size();
  MPI_Bcast(&n, 1, MPI_UINT64_T, root, comm);
  s.resize(n);
  if (n) MPI_Bcast(s.data(), static_cast<int>(n), MPI_BYTE, root, comm);
}

// What rank 0 knows of the archive and sends first, in one broadcast.
struct Header {
  std::string error;  // non-empty: rank 0 cannot read the archive; everyone stops
  std::string manifest;
  std::string index;  // FrameIndexEntry array, raw
  int layout = 0;
  // A SquashFS image is copied whole: its size and hash (stage::image_identity) instead.
  std::uint64_t image = 0, image_size = 0, image_hash = 0;

  std::string pack() const {
    std::string out;
    for (const std::string* part : {&error, &manifest, &index}) {
      std::uint64_t n = part->size();
      out.append(reinterpret_cast<const char*>(&n), sizeof n).append(*part);
    }
    out.append(reinterpret_cast<const char*>(&layout), sizeof layout);
    for (const std::uint64_t* v : {&image, &image_size, &image_hash})
      out.append(reinterpret_cast<const char*>(v), sizeof *v);
    return out;
  }
  // Only ever reads what rank 0 packed (same program, same build).
  void unpack(std::string_view in) {
    for (std::string* part : {&error, &manifest, &index}) {
      std::uint64_t n = 0;
      std::memcpy(&n, in.data(), sizeof n);
      part->assign(in.substr(sizeof n, n));
      in.remove_prefix(sizeof n + n);
    }
    std::memcpy(&layout, in.data(), sizeof layout);
    in.remove_prefix(sizeof layout);
    for (std::uint64_t* v : {&image, &image_size, &image_hash}) {
      std::memcpy(v, in.data(), sizeof *v);
      in.remove_prefix(sizeof *v);
    }
  }
};

Header read_header(const std::string& archive, const util::MappedFile& map) {
  Header h;
  if (format::is_squashfs_file(archive)) {
    h.image = 1;
    h.image_size = map.bytes().size();
    h.image_hash = util::xxh3(map.bytes());
    map.check_intact();
    return h;
  }
  format::FrameIndex index = format::index_frames(map.bytes(), archive);
  if (index.layout == format::ArchiveLayout::foreign)
    throw Error(fmt::format(
        "{}: not a ferry archive: the MPI path streams ferry's frames (use --via sbcast, "
        "or repack with ferry pack)",
        archive));
  h.manifest = format::read_manifest_text(archive).value_or("");
  if (h.manifest.empty())
    throw Error(fmt::format("{}: no manifest in this ferry archive", archive));
  h.index.assign(reinterpret_cast<const char*>(index.frames.data()),
                 index.frames.size() * sizeof(format::FrameIndexEntry));
  // One MPI message each (an int count); ferry's own frames are at most 8 MiB.
  for (const format::FrameIndexEntry& f : index.frames)
    if (f.compressed_size > (1u << 30))
      throw Error(fmt::format("{}: a frame of {} bytes at byte {} is too large to broadcast",
                              archive, f.compressed_size, f.offset));
  h.layout = static_cast<int>(index.layout);
  return h;
}

#ifdef FERRY_SIMULATED
// Under SMPI a shared buffer carries time, not bytes, and thousands of copies of a manifest would
// not fit: the header's broadcast moves its size into one buffer every rank shares, and the
// receivers take rank 0's header from the process all the simulated ranks share.
std::shared_ptr<const Header> simulated_header_bcast(std::shared_ptr<const Header> read,
                                                     std::string& packed, int rank, MPI_Comm comm) {
  static std::shared_ptr<const Header> from_rank_0;
  // Kept for the whole run: SMPI skips the copies into memory it counts as shared, and a freed
  // block's addresses could come back as an ordinary buffer of a later call.
  static void* shared = nullptr;
  static std::uint64_t shared_size = 0;
  if (rank == 0) from_rank_0 = read;
  std::uint64_t n = packed.size();
  MPI_Bcast(&n, 1, MPI_UINT64_T, 0, comm);
  if (!shared || shared_size < n) {
    shared_size = std::max<std::uint64_t>(n, 1);
    shared = SMPI_SHARED_MALLOC(shared_size);
  }
  MPI_Bcast(rank == 0 ? packed.data() : shared, static_cast<int>(n), MPI_BYTE, 0, comm);
  return from_rank_0;
}
#else
std::shared_ptr<const Header> simulated_header_bcast(std::shared_ptr<const Header>, std::string&,
                                                     int, MPI_Comm) {
  return nullptr;  // not simulated: bcast_string carries the header
}
#endif

void free_comm(MPI_Comm& c) {
  if (c != MPI_COMM_WORLD && c != MPI_COMM_NULL) MPI_Comm_free(&c);
}

// stage_main's passes share one Staging: the options, the communicators, what rank 0 read of the
// archive, and this node's work and report.
struct Staging {
  const stage::MpiOptions& args;
  Phases& phases;
  int world_rank = 0, world_size = 0;
  MPI_Comm leaders = MPI_COMM_WORLD;        // the node leaders; MPI_COMM_NULL on the other ranks
  int rank = 0, nodes = 0;                  // in leaders
  double started = 0;                       // the node's clock when the leaders are known
  std::unique_ptr<util::MappedFile> map{};  // rank 0's: the archive on shared storage
  std::shared_ptr<const Header> header{};
  format::FrameIndex index{};
  stage::NodeReport report{};
  std::unique_ptr<NodeWork> node{};             // none: this node cannot start
  std::optional<stage::ImageReceiver> image{};  // instead, for an image
  std::vector<stage::Unit> units{};
  bool need = false;                // this node extracts (all nodes could start)
  MPI_Comm movers = MPI_COMM_NULL;  // rank 0 (the reader) and the nodes that need the bytes
  bool all_ok = false;

  void fail(const std::exception& e) {
    report.status = stage::NodeStatus::failed;
    report.error = e.what();
  }
};

// Node leaders from one allgather of node names (SLURMD_NODENAME, else the host name; nodes are
// told apart by name, as in the reports): the first rank of each node leads. With ferry stage's
// one rank per node every rank leads and MPI_COMM_WORLD serves as it is, which spares
// MPI_Comm_split_type and MPI_Comm_split (about 40 and 20 ms each in MPICH 4.0). false: this
// rank does not lead.
bool find_leaders(Staging& s) {
  MPI_Comm_rank(MPI_COMM_WORLD, &s.world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &s.world_size);
  std::uint64_t key = util::xxh3(stage::mpi::this_node_name());
  std::vector<std::uint64_t> keys(static_cast<std::size_t>(s.world_size));
  MPI_Allgather(&key, 1, MPI_UINT64_T, keys.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD);
  // Every rank has now started: ferry stage's start-up bound (--start-timeout) ends here.
  if (s.world_rank == 0) {
    std::printf("{\"started\": %d}\n", s.world_size);
    std::fflush(stdout);
  }
  bool leads =
      std::find(keys.begin(), keys.begin() + s.world_rank, key) == keys.begin() + s.world_rank;
  std::sort(keys.begin(), keys.end());
  bool one_per_node = std::adjacent_find(keys.begin(), keys.end()) == keys.end();
  if (!one_per_node)
    MPI_Comm_split(MPI_COMM_WORLD, leads ? 0 : MPI_UNDEFINED, s.world_rank, &s.leaders);
  if (s.leaders == MPI_COMM_NULL) return false;
  MPI_Comm_rank(s.leaders, &s.rank);
  MPI_Comm_size(s.leaders, &s.nodes);
  s.started = stage::mpi::now_seconds();
  s.phases.end("mpi start");
  return true;
}

// 1. The header: manifest, frame index, size, read by rank 0 and broadcast. false: rank 0 could
//    not read the archive, and has told ferry stage why.
bool share_header(Staging& s) {
  auto read = std::make_shared<Header>();
  if (s.rank == 0) {
    try {
      if (auto synthetic = stage::mpi::synthetic_archive(s.args.archive)) {
        read->manifest = std::move(synthetic->manifest);
        const auto& frames = synthetic->index.frames;
        read->index.assign(reinterpret_cast<const char*>(frames.data()),
                           frames.size() * sizeof(format::FrameIndexEntry));
        read->layout = static_cast<int>(synthetic->index.layout);
      } else {
        s.map = std::make_unique<util::MappedFile>(s.args.archive);
        *read = read_header(s.args.archive, *s.map);
      }
    } catch (const std::exception& e) {
      read->error = e.what();
    }
  }
  std::string packed = s.rank == 0 ? read->pack() : std::string();
  if constexpr (k_simulated) {
    s.header = simulated_header_bcast(read, packed, s.rank, s.leaders);
  } else {
    bcast_string(packed, 0, s.leaders);
    if (s.rank != 0) read->unpack(packed);
    s.header = read;
  }
  const Header& h = *s.header;
  s.phases.end("header");
  if (!h.error.empty()) {
    // One report for every node: ferry stage shows the reason on each host's line.
    if (s.rank == 0) {
      std::printf("%s\n", stage::report_line(stage::NodeReport::failed("*", h.error)).c_str());
      std::fflush(stdout);
    }
    return false;
  }
  s.index.layout = static_cast<format::ArchiveLayout>(h.layout);
  s.index.frames.resize(h.index.size() / sizeof(format::FrameIndexEntry));
  std::memcpy(s.index.frames.data(), h.index.data(), h.index.size());
  return true;
}

// An image in units of k_unit_bytes, as an archive's frames are cut.
std::vector<stage::Unit> image_units(std::uint64_t size) {
  std::vector<stage::Unit> units;
  for (std::uint64_t at = 0; at < size; at += stage::k_unit_bytes)
    units.push_back({.offset = at, .size = std::min(stage::k_unit_bytes, size - at)});
  return units;
}

// 2'. An image: does the file at DIR already hold it? Otherwise its receiver, writing beside it.
void open_image(Staging& s) {
  const std::string& target = s.args.dir;
  try {
    std::string parent = std::filesystem::path(util::absolute_path(target)).parent_path().string();
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) throw Error(fmt::format("{}: cannot create directory: {}", parent, ec.message()));
    if (auto shared = stage::shared_file_system(parent))
      throw Error(fmt::format("{}: is on {}, shared between nodes: stage to node-local storage",
                              parent, *shared));
    s.image.emplace(target, s.header->image_hash);
  } catch (const std::exception& e) {
    s.fail(e);
  }
  s.units = image_units(s.header->image_size);
}

bool opened(const Staging& s) { return s.node || s.image; }
bool holds_it(const Staging& s) {
  return s.node ? s.node->already_present() : s.image && s.image->present();
}

// 2. Each node: does DIR already hold it? Otherwise its work: a session, and on the receivers a
//    window of the archive, never all of it.
void open_session(Staging& s) {
  s.report.host = stage::mpi::this_node_name();
  if (s.header->image) return open_image(s);
  s.units = stage::cut_units(s.index);
  try {
    std::string_view archive = s.map ? s.map->bytes() : std::string_view();
    s.node = stage::mpi::open_node_work({.options = s.args,
                                         .manifest = s.header->manifest,
                                         .index = s.index,
                                         .units = s.units,
                                         .archive = archive,
                                         .rank = s.rank});
  } catch (const std::exception& e) {
    s.fail(e);
  }
}

// A node that cannot even start (DIR not writable, on a shared file system, ...) fails the stage
// before any byte moves. One allgather tells every node who failed and who needs the bytes.
void choose_movers(Staging& s) {
  enum NodeState : int { cannot_start = 0, present = 1, needs_bytes = 2 };
  int state = !opened(s) ? cannot_start : holds_it(s) ? present : needs_bytes;
  std::vector<int> states(static_cast<std::size_t>(s.nodes));
  allgather_quietly(&state, states.data(), s.leaders);
  bool all_opened = std::find(states.begin(), states.end(), cannot_start) == states.end();
  s.need = all_opened && state == needs_bytes;
  if (all_opened && std::count(states.begin(), states.end(), needs_bytes) == s.nodes)
    s.movers = s.leaders;  // a first stage: everyone
  else
    MPI_Comm_split(s.leaders, (s.need || s.rank == 0) && all_opened ? 0 : MPI_UNDEFINED, s.rank,
                   &s.movers);
  s.phases.end("open");
}

// With --progress, rank 0 tells ferry stage the bytes broadcast so far.
void report_progress(const Staging& s, const stage::Unit& unit) {
  if (!s.args.progress || s.rank != 0) return;
  std::printf("{\"progress\": %llu}\n", static_cast<unsigned long long>(unit.offset + unit.size));
  std::fflush(stdout);
}

// Several units in flight (MPI_Ibcast, issued in the same order everywhere), completed in order.
// Waiting polls with short sleeps rather than spinning inside MPI, so the extraction threads keep
// the cores. A node whose extraction failed keeps receiving (and dropping): the broadcast is
// collective.
void broadcast_units(Staging& s) {
  const std::vector<stage::Unit>& units = s.units;
  NodeWork& node = *s.node;
  std::deque<std::pair<MPI_Request, std::size_t>> inflight;
  Backoff backoff;
  auto complete_front = [&](bool block) {
    while (!inflight.empty()) {
      if (test_done(inflight.front().first)) {
        std::size_t u = inflight.front().second;
        node.arrived(u);
        report_progress(s, units[u]);
        inflight.pop_front();
        backoff.moved();
        return;
      }
      if (!block) return;
      backoff.pause();
    }
  };
  for (std::size_t u = 0; u < units.size(); ++u) {
    while (!node.slot_free(u)) {  // extraction is behind: keep the others moving
      complete_front(false);
      backoff.pause();
    }
    backoff.moved();
    // Rank 0 sends from its map of the archive; every other mover receives into its window.
    MPI_Request req;
    start_unit_bcast(node.slot(u), units[u].size, s.movers, &req);
    inflight.emplace_back(req, u);
    while (inflight.size() >= k_in_flight) complete_front(true);
    complete_front(false);
  }
  while (!inflight.empty()) complete_front(true);
}

// 3'. An image's bytes: the receivers take each unit into a ring of k_in_flight buffers and
//     write it to the node's copy in order; rank 0 sends from its map, and writes its own node's
//     copy from it meanwhile. A node whose writing failed keeps receiving: the broadcast is
//     collective.
void move_image(Staging& s) {
  const std::vector<stage::Unit>& units = s.units;
  bool receives = s.rank != 0;
  std::unique_ptr<util::PageBuffer> ring;
  if (receives) ring = std::make_unique<util::PageBuffer>(k_in_flight * stage::k_unit_bytes);
  auto slot = [&](std::size_t u) { return ring->data() + (u % k_in_flight) * stage::k_unit_bytes; };
  auto failed = [&] { return s.report.status == stage::NodeStatus::failed; };
  std::thread writer;
  if (s.need && !receives)
    writer = std::thread([&s] {
      try {
        s.image->write(s.map->bytes());
        s.image->finish();
      } catch (const std::exception& e) {
        s.fail(e);
      }
    });
  std::deque<std::pair<MPI_Request, std::size_t>> inflight;
  auto complete_front = [&] {
    wait_quietly(inflight.front().first);
    std::size_t u = inflight.front().second;
    inflight.pop_front();
    if (receives && s.need && !failed()) {
      try {
        s.image->write({slot(u), units[u].size});
      } catch (const std::exception& e) {
        s.fail(e);
      }
    }
    report_progress(s, units[u]);
  };
  for (std::size_t u = 0; u < units.size(); ++u) {
    if (inflight.size() >= k_in_flight) complete_front();  // frees unit u's slot
    char* bytes = receives ? slot(u) : const_cast<char*>(s.map->bytes().data()) + units[u].offset;
    MPI_Request req;
    start_unit_bcast(bytes, units[u].size, s.movers, &req);
    inflight.emplace_back(req, u);
  }
  while (!inflight.empty()) complete_front();
  s.phases.end("broadcast");
  if (writer.joinable()) writer.join();
  if (receives && s.need && !failed()) {
    try {
      s.image->finish();
    } catch (const std::exception& e) {
      s.fail(e);
    }
  }
  s.phases.end("check");
}

// 3. The bytes, pipelined: extraction runs on its own threads while the next units arrive.
void move_bytes(Staging& s) {
  if (s.movers == MPI_COMM_NULL) return;
  if (s.header->image) {
    move_image(s);
    if (s.movers != s.leaders) MPI_Comm_free(&s.movers);
    return;
  }
  if (s.need) s.node->start();
  broadcast_units(s);
  s.phases.end("broadcast");
  if (s.need) {
    try {
      s.node->finish();
    } catch (const std::exception& e) {
      s.fail(e);
    }
  }
  s.phases.end("extract rest");
  if (s.movers != s.leaders) MPI_Comm_free(&s.movers);
}

// 4. All or nothing.
void commit_or_abort(Staging& s) {
  stage::NodeReport& report = s.report;
  s.all_ok = all_min(report.status == stage::NodeStatus::failed ? 0 : 1, s.leaders);
  if (s.all_ok) {
    try {
      bool was_present = holds_it(s);
      if (!was_present && s.node) s.node->commit();
      if (!was_present && s.image) s.image->commit();
      report.status = was_present ? stage::NodeStatus::present : stage::NodeStatus::unpacked;
      report.bytes = s.node ? s.node->bytes() : s.image->bytes();
      report.files = s.node ? s.node->files() : 1;
    } catch (const std::exception& e) {
      s.fail(e);
    }
  } else {
    if (s.node) report.bytes = s.node->bytes();
    if (s.image) report.bytes = s.image->bytes();
    s.node.reset();  // removes this node's temporary tree (or file)
    s.image.reset();
    if (report.status != stage::NodeStatus::failed) report.status = stage::NodeStatus::aborted;
  }
  report.seconds = stage::mpi::now_seconds() - s.started;
  s.phases.end("commit");
}

// Every leader's line, in rank order, on rank 0 (empty elsewhere).
std::vector<std::string> gather_lines(const std::string& line, int rank, int nodes, MPI_Comm comm) {
  std::vector<std::string> lines;
  if constexpr (k_simulated) {
    // SMPI's MPI_Gatherv takes wall time quadratic in the ranks (minutes at 10,000): the
    // simulation gathers records of one size, its reports being short.
    constexpr std::size_t k_record = 512;
    std::string record = line.substr(0, k_record);
    record.resize(k_record, '\0');
    std::string all(rank == 0 ? k_record * static_cast<std::size_t>(nodes) : 0, '\0');
    MPI_Gather(record.data(), static_cast<int>(k_record), MPI_BYTE, all.data(),
               static_cast<int>(k_record), MPI_BYTE, 0, comm);
    for (std::size_t i = 0; rank == 0 && i < static_cast<std::size_t>(nodes); ++i)
      lines.emplace_back(all.c_str() + i * k_record);
    return lines;
  }
  int len = static_cast<int>(line.size());
  std::vector<int> lens(static_cast<std::size_t>(nodes)), offsets(static_cast<std::size_t>(nodes));
  MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, comm);
  std::string all;
  if (rank == 0) {
    int total = 0;
    for (int i = 0; i < nodes; ++i) {
      offsets[static_cast<std::size_t>(i)] = total;
      total += lens[static_cast<std::size_t>(i)];
    }
    all.resize(static_cast<std::size_t>(total));
  }
  MPI_Gatherv(line.data(), len, MPI_BYTE, all.data(), lens.data(), offsets.data(), MPI_BYTE, 0,
              comm);
  for (std::size_t i = 0; rank == 0 && i < static_cast<std::size_t>(nodes); ++i)
    lines.push_back(
        all.substr(static_cast<std::size_t>(offsets[i]), static_cast<std::size_t>(lens[i])));
  return lines;
}

// 5. Reports to rank 0, which prints them for ferry stage, then its phases.
void print_reports(Staging& s) {
  s.report.peak_bytes = util::peak_resident_bytes();
  std::vector<std::string> lines =
      gather_lines(stage::report_line(s.report), s.rank, s.nodes, s.leaders);
  if (s.rank == 0) {
    for (const std::string& line : lines) std::printf("%s\n", line.c_str());
    std::printf("%s\n", s.phases.json().c_str());
    std::fflush(stdout);
  }
}

// The stage on one rank; returns its exit status.
int stage_main(const stage::MpiOptions& args, Phases& phases) {
  Staging s{args, phases};
  int rc = 2;
  if (!find_leaders(s)) {  // not a node leader: its node's leader does the work
    barrier_quietly(MPI_COMM_WORLD);
    return 0;
  }
  if (share_header(s)) {  // 1. what rank 0 read of the archive
    open_session(s);      // 2. DIR's state, the session, the window
    choose_movers(s);     //    ... and who needs the bytes, once every node could start
    move_bytes(s);        // 3. the broadcast, extracted as it arrives
    commit_or_abort(s);   // 4. all or nothing
    print_reports(s);     // 5. every node's report, through rank 0
    rc = s.all_ok ? 0 : 1;
  }
  free_comm(s.leaders);
  barrier_quietly(MPI_COMM_WORLD);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && args[0] == "--mpi") {
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    std::string v(version, static_cast<std::size_t>(len));
    // The library, then the launcher that goes with it (found when ferry-mpi was built).
    std::printf("%s\n%s\n", v.substr(0, v.find('\n')).c_str(), FERRY_MPIEXEC);
    return 0;
  }
  std::optional<stage::MpiOptions> opts = stage::decode_mpi_options(args);
  if (!opts) {
    std::fprintf(stderr,
                 "usage: ferry-mpi stage ARCHIVE DIR [-j N] [--progress] | ferry-mpi --mpi\n");
    return 2;
  }
  Phases phases;
  // ferry-mpi binds nothing and moves host memory, so the MPI's hwloc need not probe PCI and other
  // I/O devices at start-up: that was half of MPI_Init on the test cluster, and costs more on
  // nodes full of GPUs and NICs. A site's own setting wins.
  ::setenv("HWLOC_COMPONENTS", "-linuxio,-pci", 0);
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int rc = 1;
  try {
    rc = stage_main(*opts, phases);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ferry-mpi: error: %s\n", e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  return rc;
}
