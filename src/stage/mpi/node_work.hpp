// What one node does with the archive during ferry-mpi's stage, apart from the MPI. ferry_mpi.cpp
// (the choreography: leaders, header, movers, broadcast, agreement, reports) calls only this, so
// that the same choreography runs in two programs:
//   ferry-mpi            node_work.cpp: unpacks for real (UnpackSession, ReceiveWindow, a thread)
//   ferry-mpi-simulated  simulated_node.cpp, on SimGrid's SMPI: spends the time the stage model
//                        gives, per file and per byte, on a simulated clock
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "format/format.hpp"
#include "stage/stage.hpp"
#include "stage/window.hpp"

namespace ferry::stage::mpi {

struct NodeWorkArgs {
  const MpiOptions& options;
  const std::string& manifest;
  const format::FrameIndex& index;
  const std::vector<Unit>& units;  // stage::cut_units(index): what the broadcast sends
  std::string_view archive;        // the reader's (rank 0's) map of the archive; empty elsewhere
  int rank = 0;                    // among the node leaders; 0 is the reader
};

class NodeWork {
 public:
  virtual ~NodeWork() = default;  // before commit: removes what it wrote
  virtual bool already_present() const = 0;

  // The broadcast's side, unit by unit in order (stage::cut_units of the index). May unit u go
  // now (a receiver: its slot is free again; the reader: its bytes can be read)? Where do its
  // bytes land, or go out from? It has arrived (or gone out).
  virtual bool slot_free(std::size_t u) = 0;
  virtual char* slot(std::size_t u) = 0;
  virtual void arrived(std::size_t u) = 0;

  // Extraction runs alongside the broadcast: start() before the first unit, finish() once every
  // unit has arrived; finish() waits for it to end and throws what it threw.
  virtual void start() = 0;
  virtual void finish() = 0;
  virtual void commit() = 0;
  virtual std::uint64_t bytes() const = 0;  // written so far (all of them once finished)
  virtual std::uint64_t files() const = 0;
};

// What the simulation stages in place of an archive too large to make here, written
// "synthetic:files=F,decoded=BYTES,ratio=R": F files of BYTES in all, in frames that compress R
// times. nullopt: a real archive (always, in ferry-mpi).
struct SyntheticArchive {
  std::string manifest;
  format::FrameIndex index;
};
std::optional<SyntheticArchive> synthetic_archive(const std::string& archive);

// This node's work; throws Error when the node cannot start (DIR on shared storage, no room for
// the receiving window, ...).
std::unique_ptr<NodeWork> open_node_work(const NodeWorkArgs& args);

// The clock, the pause between two polls of MPI and this node's name: the machine's, or the
// simulation's.
double now_seconds();
void pause_us(unsigned us);
std::string this_node_name();

}  // namespace ferry::stage::mpi
