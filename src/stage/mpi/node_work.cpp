// ferry-mpi's node work: an UnpackSession that extracts on its own threads while the broadcast
// thread receives into a ReceiveWindow (rank 0: straight from its map of the archive).
#include "stage/mpi/node_work.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "env/env.hpp"
#include "stage/window.hpp"

namespace ferry::stage::mpi {

namespace {

class UnpackingNode final : public NodeWork {
 public:
  explicit UnpackingNode(const NodeWorkArgs& a)
      : m_index(a.index), m_units(a.units), m_archive(a.archive) {
    const std::string& dir = a.options.dir;
    std::string parent = std::filesystem::path(util::absolute_path(dir)).parent_path().string();
    if (auto shared = shared_file_system(parent))
      throw Error(fmt::format("{}: is on {}, shared between nodes: stage to node-local storage",
                              parent, *shared));
    env::UnpackOptions u;
    u.archive = a.options.archive;
    u.dest = dir;
    u.jobs = a.options.jobs;
    m_session.emplace(u, a.manifest);
    if (m_session->already_present() || a.rank == 0) return;
    // A receiver holds a window of the archive, never all of it (FERRY_MPI_WINDOW: its units).
    std::size_t slots = k_window_units;
    if (const char* w = std::getenv("FERRY_MPI_WINDOW"))
      if (auto n = util::parse_decimal(w, 1u << 16); n && *n > 0) slots = *n;
    try {
      m_window.emplace(m_index, slots);
    } catch (const std::bad_alloc&) {
      throw Error(fmt::format("cannot map a window of {} units of the archive", slots));
    }
  }
  ~UnpackingNode() override {
    if (!m_extractor.joinable()) return;
    if (m_window) m_window->abandon();  // not finished: a receiver's extraction stops waiting
    m_extractor.join();
  }

  bool already_present() const override { return m_session->already_present(); }
  bool slot_free(std::size_t u) override { return !m_window || m_window->slot_free(u); }
  char* slot(std::size_t u) override {
    if (m_window) return m_window->slot(u);
    return const_cast<char*>(m_archive.data()) + m_units[u].offset;
  }
  void arrived(std::size_t u) override {
    if (m_window) m_window->arrived(u);
  }

  void start() override {
    m_extractor = std::thread([this] {
      try {
        m_session->extract(
            m_window ? m_window->source() : format::FrameSource::in_memory(m_archive, m_index),
            m_index);
      } catch (const std::exception& e) {
        m_error = e.what();
        if (m_window) m_window->abandon();  // also when it failed before reading a frame
      }
    });
  }
  void finish() override {
    if (m_extractor.joinable()) m_extractor.join();
    if (m_error) throw Error(*m_error);
  }
  void commit() override { m_session->commit(); }
  std::uint64_t bytes() const override { return m_session->result().bytes; }
  std::uint64_t files() const override { return m_session->result().files; }

 private:
  const format::FrameIndex& m_index;
  const std::vector<Unit>& m_units;  // the reader sends each from its map
  std::string_view m_archive;
  std::optional<env::UnpackSession> m_session;
  std::optional<ReceiveWindow> m_window;
  std::thread m_extractor;
  std::optional<std::string> m_error;
};

}  // namespace

std::unique_ptr<NodeWork> open_node_work(const NodeWorkArgs& args) {
  return std::make_unique<UnpackingNode>(args);
}

std::optional<SyntheticArchive> synthetic_archive(const std::string&) { return std::nullopt; }

double now_seconds() {
  static const auto start = std::chrono::steady_clock::now();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void pause_us(unsigned us) { ::usleep(us); }

std::string this_node_name() { return node_name(); }

}  // namespace ferry::stage::mpi
