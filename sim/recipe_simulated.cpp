// The recipe users run today, simulated on SimGrid's SMPI beside ferry-mpi-simulated (make
// simulate): sbcast's broadcast, then on every node `tar -I pigz -xf` and conda-unpack.
//
//   smpirun ... recipe-simulated COMPRESSED_BYTES DECODED_BYTES FILES
//
// sbcast as slurm's file_bcast.c and forward.c do it (../shared/research/broadcast.md, §1): the
// client sends one block at a time to the heads of `width` spans of the node list; each head
// takes the message in (a fresh connection, the credential: rpc_ms), forwards it to its own span,
// split the same way, writes it meanwhile, and answers once its subtree has; the next block
// leaves only when every node has answered. So a block costs an RPC per level of the tree.
// Then each node inflates on one core (pigz) while `tar -x` creates the files on another, the
// slower of the two setting the pace unless the node has fewer than two cores for them, or its
// disk is slower still; then conda-unpack rewrites the prefixes.
// Rank 0 prints one JSON line: {"broadcast": S, "untar": S, "relocate": S, "total": S}.
//
// FERRY_SIM_RECIPE sets the model, comma-separated NAME=VALUE:
//   block_mib=8 width=8 rpc_ms=2 (taking a block's message in, on each node, before forwarding)
//   write_mibs=0 (0: no disk bound) pigz_mibs=350 (decoded MiB/s) tar_file_us=27 unpack_s=0.2
//   cores=2 (what pigz and tar have of the node: on the 3-node test cluster, 2/3)
#include <mpi.h>
#include <smpi/smpi.h>
#include <smpi/smpi_helpers_internal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

struct Recipe {
  double block_mib = 8, width = 8, rpc_ms = 2, write_mibs = 0, pigz_mibs = 350, tar_file_us = 27,
         unpack_s = 0.2, cores = 2;
};

bool read_recipe(Recipe& r) {
  const char* spec = std::getenv("FERRY_SIM_RECIPE");
  if (!spec) return true;
  std::map<std::string, double*> fields = {
      {"block_mib", &r.block_mib},   {"width", &r.width},         {"rpc_ms", &r.rpc_ms},
      {"write_mibs", &r.write_mibs}, {"pigz_mibs", &r.pigz_mibs}, {"tar_file_us", &r.tar_file_us},
      {"unpack_s", &r.unpack_s},     {"cores", &r.cores}};
  std::string all(spec);
  std::size_t at = 0;
  while (at <= all.size()) {
    std::size_t end = std::min(all.find(',', at), all.size());
    std::string item = all.substr(at, end - at);
    at = end + 1;
    if (item.empty()) continue;
    auto eq = item.find('=');
    auto field = eq == std::string::npos ? fields.end() : fields.find(item.substr(0, eq));
    char* stop = nullptr;
    double v = field == fields.end() ? 0 : std::strtod(item.c_str() + eq + 1, &stop);
    if (field == fields.end() || stop == item.c_str() + eq + 1 || *stop || v < 0) {
      std::fprintf(stderr, "recipe-simulated: FERRY_SIM_RECIPE: '%s' is not NAME=VALUE\n",
                   item.c_str());
      return false;
    }
    *field->second = v;
  }
  if (r.block_mib <= 0 || r.width < 1 || r.pigz_mibs <= 0 || r.cores <= 0) {
    std::fprintf(stderr,
                 "recipe-simulated: FERRY_SIM_RECIPE: block_mib, width, pigz_mibs, cores > 0\n");
    return false;
  }
  return true;
}

void spend(double seconds) {
  if (seconds <= 0) return;
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(seconds);
  ts.tv_nsec = static_cast<long>((seconds - static_cast<double>(ts.tv_sec)) * 1e9);
  smpi_nanosleep(&ts, nullptr);
}

// The heads of the spans that [lo, hi) splits into, `width` at most, as hostlist_split_treewidth
// cuts a host list: sizes differ by one at most, the larger first.
std::vector<std::pair<int, int>> split_spans(int lo, int hi, int width) {
  std::vector<std::pair<int, int>> spans;
  int n = hi - lo;
  if (n <= 0) return spans;
  int parts = std::min(n, width);
  for (int i = 0, at = lo; i < parts; ++i) {
    int size = n / parts + (i < n % parts ? 1 : 0);
    spans.emplace_back(at, at + size);
    at += size;
  }
  return spans;
}

// Where this rank sits in the tree: its parent (the client is on rank 0) and its span.
struct Place {
  int parent = -1, lo = 0, hi = 0;
};
bool find_place(int rank, int lo, int hi, int parent, int width, Place& out) {
  for (auto [a, b] : split_spans(lo, hi, width)) {
    if (rank == a) {
      out = {parent, a, b};
      return true;
    }
    if (rank > a && rank < b) return find_place(rank, a + 1, b, a, width, out);
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, nodes = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nodes);
  Recipe r;
  if (argc != 4 || !read_recipe(r)) {
    if (rank == 0 && argc != 4)
      std::fprintf(stderr, "usage: recipe-simulated COMPRESSED_BYTES DECODED_BYTES FILES\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  double compressed = std::strtod(argv[1], nullptr), decoded = std::strtod(argv[2], nullptr),
         files = std::strtod(argv[3], nullptr);
  constexpr double mib = 1 << 20;
  const int width = static_cast<int>(r.width);
  const double block = r.block_mib * mib;
  Place place;
  find_place(rank, 0, nodes, 0, width, place);  // the top spans' heads answer the client
  std::vector<std::pair<int, int>> children = split_spans(place.lo + 1, place.hi, width);
  // Rank 0 is also the client: the first span's head is its own slurmd, the others are the
  // client's to send to.
  std::vector<std::pair<int, int>> heads;
  if (rank == 0) {
    heads = split_spans(0, nodes, width);
    heads.erase(heads.begin());
  }
  // Block contents are time, not bytes: one buffer every simulated rank shares.
  char* buffer = static_cast<char*>(SMPI_SHARED_MALLOC(static_cast<std::size_t>(block)));
  double start = MPI_Wtime();
  for (double sent = 0; sent < compressed; sent += block) {
    int size = static_cast<int>(std::min(block, compressed - sent));
    std::vector<MPI_Request> sends;
    auto forward = [&](const std::vector<std::pair<int, int>>& to) {
      for (const auto& span : to) {
        sends.emplace_back();
        MPI_Isend(buffer, size, MPI_BYTE, span.first, 0, MPI_COMM_WORLD, &sends.back());
      }
    };
    if (rank == 0)
      forward(heads);  // the client, then rank 0's own slurmd takes the block in
    else
      MPI_Recv(buffer, size, MPI_BYTE, place.parent, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    spend(r.rpc_ms * 1e-3);
    forward(children);
    // The local handler writes to DEST while the forwards go out.
    spend(r.write_mibs > 0 ? size / mib / r.write_mibs : 0);
    MPI_Waitall(static_cast<int>(sends.size()), sends.data(), MPI_STATUSES_IGNORE);
    for (const auto& span : heads)
      MPI_Recv(nullptr, 0, MPI_BYTE, span.first, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    for (const auto& child : children)
      MPI_Recv(nullptr, 0, MPI_BYTE, child.first, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (rank != 0) MPI_Send(nullptr, 0, MPI_BYTE, place.parent, 1, MPI_COMM_WORLD);
  }
  MPI_Barrier(MPI_COMM_WORLD);  // sbcast returns; the job's srun starts on every node
  double broadcast = MPI_Wtime() - start;
  double inflate = decoded / mib / r.pigz_mibs, create = files * r.tar_file_us * 1e-6;
  double untar = std::max({inflate, create, (inflate + create) / r.cores,
                           r.write_mibs > 0 ? decoded / mib / r.write_mibs : 0.0});
  spend(untar);
  spend(r.unpack_s);
  MPI_Barrier(MPI_COMM_WORLD);
  double total = MPI_Wtime() - start;
  if (rank == 0)
    std::printf(
        "{\"nodes\": %d, \"broadcast\": %.4f, \"untar\": %.4f, \"relocate\": %.4f, "
        "\"total\": %.4f}\n",
        nodes, broadcast, untar, r.unpack_s, total);
  SMPI_SHARED_FREE(buffer);
  MPI_Finalize();
  return 0;
}
