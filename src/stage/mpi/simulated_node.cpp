// ferry-mpi-simulated's node work, on SimGrid's SMPI: no file is written; each node spends, on
// the simulated clock, the time the stage model gives for what it would extract (README, "How
// stage time grows with node count"). Extraction is one server working through the units in
// order at C cores' speed: unit u is done at max(its arrival, unit u-1 done) + its cost, where a
// frame costs (b·files + a·MiB decoded + c·MiB received) / C, and no less than MiB decoded / W.
//
// FERRY_SIM_NODE sets the model, comma-separated NAME=VALUE (defaults: the fit of stop 30):
//   cores=2 file_us=27 mib_ms=1.5 recv_mib_ms=0.2 write_mibs=0 (0: no disk bound)
//   open_file_us=1 (reading the manifest, per file) commit_ms=1 read_mibs=0 (rank 0's reader)
// FERRY_SIM_FAIL=RANK:FRACTION makes leader RANK's extraction fail once that fraction of the
// units has arrived: the stage must then abort on every node.
#include <smpi/smpi.h>
#include <smpi/smpi_helpers_internal.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "stage/mpi/node_work.hpp"
#include "stage/window.hpp"

namespace ferry::stage::mpi {

namespace {

struct Model {
  double cores = 2, file_us = 27, mib_ms = 1.5, recv_mib_ms = 0.2, write_mibs = 0;
  double open_file_us = 1, commit_ms = 1, read_mibs = 0;
  int fail_rank = -1;
  double fail_at = 0.5;
};

Model read_model() {
  Model m;
  if (const char* spec = std::getenv("FERRY_SIM_NODE")) {
    std::map<std::string, double*> fields = {
        {"cores", &m.cores},           {"file_us", &m.file_us},
        {"mib_ms", &m.mib_ms},         {"recv_mib_ms", &m.recv_mib_ms},
        {"write_mibs", &m.write_mibs}, {"open_file_us", &m.open_file_us},
        {"commit_ms", &m.commit_ms},   {"read_mibs", &m.read_mibs}};
    for (std::string_view field_text : util::split(spec, ',')) {
      std::string item(field_text);
      auto eq = item.find('=');
      auto field = eq == std::string::npos ? fields.end() : fields.find(item.substr(0, eq));
      char* end = nullptr;
      double v = field == fields.end() ? 0 : std::strtod(item.c_str() + eq + 1, &end);
      if (field == fields.end() || end == item.c_str() + eq + 1 || *end || v < 0)
        throw Error(fmt::format("FERRY_SIM_NODE: '{}' is not NAME=VALUE with a known NAME", item));
      *field->second = v;
    }
    if (m.cores <= 0) throw Error("FERRY_SIM_NODE: cores must be more than 0");
  }
  if (const char* fail = std::getenv("FERRY_SIM_FAIL")) {
    if (std::sscanf(fail, "%d:%lf", &m.fail_rank, &m.fail_at) != 2 || m.fail_at < 0 ||
        m.fail_at > 1)
      throw Error(fmt::format("FERRY_SIM_FAIL: '{}' is not RANK:FRACTION", fail));
  }
  return m;
}

// What extracting each unit costs, in seconds of the simulated clock, and the tree's totals.
struct Costs {
  std::vector<double> unit_seconds, unit_received_seconds;
  std::vector<double> read_end;  // the archive's bytes up to each unit's end
  double open_seconds = 0;
  std::uint64_t files = 0, bytes = 0;
};

// Files fall in frames by their place in the tar stream (header and padded data, in manifest
// order), scaled to the frames' decoded bytes: close enough for a model, exact in the totals.
Costs model_costs(const Model& m, const std::string& manifest_json, const format::FrameIndex& index,
                  const std::vector<Unit>& units) {
  format::Manifest manifest = format::Manifest::parse(manifest_json, "the simulated manifest");
  std::vector<double> frame_end;  // cumulative decoded bytes
  double decoded = 0;
  for (const format::FrameIndexEntry& f : index.frames)
    frame_end.push_back(decoded += f.decompressed_size);
  std::vector<std::uint64_t> files_in(index.frames.size());
  double tar = 0;
  for (const format::ManifestFile& f : manifest.files) tar += 512 + std::ceil(f.size / 512.0) * 512;
  double at = 0;
  Costs c;
  for (const format::ManifestFile& f : manifest.files) {
    at += 512 + std::ceil(f.size / 512.0) * 512;
    double place = tar > 0 ? at / tar * decoded : 0;
    auto frame = std::lower_bound(frame_end.begin(), frame_end.end(), place) - frame_end.begin();
    if (!files_in.empty()) ++files_in[std::min<std::size_t>(frame, files_in.size() - 1)];
    c.bytes += f.size;
  }
  c.files = manifest.files.size();
  c.open_seconds = c.files * m.open_file_us * 1e-6;
  constexpr double mib = 1 << 20;
  double read = 0;
  for (const Unit& u : units) {
    c.read_end.push_back(read += static_cast<double>(u.size));
    double cpu = 0, received = 0, written = 0;
    for (std::size_t i = u.first_frame; i < u.end_frame; ++i) {
      const format::FrameIndexEntry& f = index.frames[i];
      cpu += files_in[i] * m.file_us * 1e-6 + f.decompressed_size / mib * m.mib_ms * 1e-3;
      received += f.compressed_size / mib * m.recv_mib_ms * 1e-3;
      written += f.decompressed_size / mib;
    }
    double disk = m.write_mibs > 0 ? written / m.write_mibs : 0;
    c.unit_seconds.push_back(std::max(cpu / m.cores, disk));
    c.unit_received_seconds.push_back(received / m.cores);
  }
  return c;
}

void sleep_until(double t) {
  double wait = t - MPI_Wtime();
  if (wait <= 0) return;
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(wait);
  ts.tv_nsec = static_cast<long>((wait - static_cast<double>(ts.tv_sec)) * 1e9);
  smpi_nanosleep(&ts, nullptr);
}

class SimulatedNode final : public NodeWork {
 public:
  explicit SimulatedNode(const NodeWorkArgs& a) : m_model(read_model()), m_rank(a.rank) {
    // Every simulated rank runs in this one process: the costs of one manifest are worked out
    // once, and the unit buffer is one that SMPI shares between all of them.
    static std::map<const std::string*, Costs> known;
    auto it = known.find(&a.manifest);
    if (it == known.end())
      it = known.emplace(&a.manifest, model_costs(m_model, a.manifest, a.index, a.units)).first;
    m_costs = &it->second;
    std::uint64_t largest = 1;
    for (const Unit& u : a.units) largest = std::max(largest, u.size);
    // Kept for the whole run (as the header's, in ferry_mpi.cpp): never handed back for reuse.
    static char* buffer = nullptr;
    static std::uint64_t buffer_size = 0;
    if (!buffer || buffer_size < largest) {
      buffer_size = largest;
      buffer = static_cast<char*>(SMPI_SHARED_MALLOC(largest));
    }
    m_buffer = buffer;
    std::size_t units = m_costs->unit_seconds.size();
    if (m_rank == m_model.fail_rank)
      m_fail_unit =
          std::min(units ? units - 1 : 0,
                   static_cast<std::size_t>(m_model.fail_at * static_cast<double>(units)));
    m_slots = k_window_units;
    m_done.assign(units, 0);
    sleep_until(MPI_Wtime() + m_costs->open_seconds);
  }

  bool already_present() const override { return false; }

  bool slot_free(std::size_t u) override {
    if (m_rank == 0) {  // the reader: unit u is in memory once the storage has given its bytes
      if (m_model.read_mibs > 0)
        sleep_until(m_start + m_costs->read_end[u] / (1 << 20) / m_model.read_mibs);
      return true;
    }
    if (m_failed_at || u < m_slots) return true;
    sleep_until(m_done[u - m_slots]);  // the extraction threads free the slot
    return true;
  }
  char* slot(std::size_t) override { return m_buffer; }
  void arrived(std::size_t u) override {
    if (m_rank == 0 || m_failed_at) return;
    double begin = std::max(MPI_Wtime(), u ? m_done[u - 1] : m_start);
    m_done[u] = begin + m_costs->unit_seconds[u] + m_costs->unit_received_seconds[u];
    if (m_fail_unit && u == *m_fail_unit) m_failed_at = m_done[u];
  }

  void start() override {
    m_start = MPI_Wtime();
    if (m_rank != 0) return;
    double all = 0;  // the reader extracts from its own map, every unit already there
    for (double s : m_costs->unit_seconds) all += s;
    if (!m_done.empty()) m_done.back() = m_start + all;
  }
  void finish() override {
    if (m_failed_at) {
      sleep_until(*m_failed_at);
      throw Error(fmt::format("simulated failure of this node's extraction at unit {} of {}",
                              *m_fail_unit, m_done.size()));
    }
    if (!m_done.empty()) sleep_until(m_done.back());
    m_finished = true;
  }
  void commit() override { sleep_until(MPI_Wtime() + m_model.commit_ms * 1e-3); }
  std::uint64_t bytes() const override { return m_finished ? m_costs->bytes : 0; }
  std::uint64_t files() const override { return m_finished ? m_costs->files : 0; }

 private:
  Model m_model;
  int m_rank = 0;
  const Costs* m_costs = nullptr;
  char* m_buffer = nullptr;
  std::size_t m_slots = 0;
  std::vector<double> m_done;  // when each unit's extraction ends
  double m_start = 0;
  std::optional<std::size_t> m_fail_unit;
  std::optional<double> m_failed_at;
  bool m_finished = false;
};

}  // namespace

std::optional<SyntheticArchive> synthetic_archive(const std::string& archive) {
  constexpr std::string_view prefix = "synthetic:";
  if (!archive.starts_with(prefix)) return std::nullopt;
  double files = 0, decoded = 0, ratio = 0;
  for (std::string_view field : util::split(std::string_view(archive).substr(prefix.size()), ',')) {
    std::string item(field);
    double* to = item.starts_with("files=")     ? &files
                 : item.starts_with("decoded=") ? &decoded
                 : item.starts_with("ratio=")   ? &ratio
                                                : nullptr;
    char* end = nullptr;
    if (to) *to = std::strtod(item.c_str() + item.find('=') + 1, &end);
    if (!to || !end || *end || *to <= 0)
      throw Error(fmt::format("{}: not synthetic:files=F,decoded=BYTES,ratio=R", archive));
  }
  if (files < 1 || decoded < 1 || ratio <= 0)
    throw Error(fmt::format("{}: files, decoded and ratio must all be given", archive));
  // Files of one size (the model's costs add up per file and per byte, so their spread only moves
  // work between units), in frames as ferry pack cuts them.
  format::Manifest m;
  m.tool = "ferry-mpi-simulated";
  m.kind = "prefix";
  m.source_prefix = "/synthetic";
  auto count = static_cast<std::uint64_t>(files);
  auto each = static_cast<std::uint64_t>(decoded / files);
  for (std::uint64_t i = 0; i < count; ++i)
    m.files.push_back({.path = fmt::format("lib/f{:06}", i), .size = each, .xxh3 = i});
  SyntheticArchive a;
  a.manifest = m.to_json();
  a.index.layout = format::ArchiveLayout::ferry_zstd;
  std::uint64_t offset = 0;
  for (double left = decoded; left > 0; left -= static_cast<double>(format::k_chunk_target)) {
    auto out = static_cast<std::uint32_t>(std::min(left, double(format::k_chunk_target)));
    auto in = static_cast<std::uint32_t>(std::max(1.0, out / ratio));
    a.index.frames.push_back({.offset = offset, .compressed_size = in, .decompressed_size = out});
    offset += in;
  }
  return a;
}

std::unique_ptr<NodeWork> open_node_work(const NodeWorkArgs& args) {
  return std::make_unique<SimulatedNode>(args);
}

double now_seconds() { return MPI_Wtime(); }

void pause_us(unsigned us) { smpi_usleep(us); }

std::string this_node_name() {
  char name[MPI_MAX_PROCESSOR_NAME];
  int len = 0;
  MPI_Get_processor_name(name, &len);
  return std::string(name, static_cast<std::size_t>(len));
}

}  // namespace ferry::stage::mpi
