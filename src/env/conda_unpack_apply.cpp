// Applies the records of a conda-pack archive (bin/conda-unpack's _prefix_records) to the extracted
// tree, natively and in parallel: what conda-unpack would do, without Python on the node.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <set>

#include <tbb/parallel_for.h>

#include "env/collect.hpp"
#include "env/conda_unpack_records.hpp"
#include "env/relocator.hpp"

namespace ferry::env {
namespace {

namespace fs = std::filesystem;

// Rewrites one extracted file in place by a record. `mode` nullopt: guess text or binary from the
// content. Files that are missing, not regular, or do not hold the placeholder are left alone, as
// conda-unpack does.
void relocate_in_place(int root_fd, const std::string& rel, std::optional<format::RelocMode> mode,
                       const std::string& placeholder, Relocator& relocator) {
  int raw = util::open_beneath(root_fd, rel, O_RDWR);
  if (raw < 0) return;
  util::UniqueFd fd(raw);
  struct stat st {};
  if (::fstat(raw, &st) != 0 || !S_ISREG(st.st_mode)) return;
  std::string data(static_cast<std::size_t>(st.st_size), '\0');
  if (::pread(raw, data.data(), data.size(), 0) != static_cast<ssize_t>(data.size()))
    util::throw_errno(rel, "cannot read", errno);
  if (!mode) {
    if (data.find(placeholder) == std::string::npos) return;
    mode = data.find('\0') == std::string::npos ? format::RelocMode::text : format::RelocMode::binary;
  }
  std::string out;
  if (!relocator.apply(rel, data, *mode, placeholder, out)) return;
  if (::ftruncate(raw, 0) != 0 || ::pwrite(raw, out.data(), out.size(), 0) != static_cast<ssize_t>(out.size()))
    util::throw_errno(rel, "cannot rewrite", errno);
  timespec times[2] = {st.st_atim, st.st_mtim};
  ::futimens(raw, times);
}

}  // namespace

// conda-pack archives carry their records in bin/conda-unpack, the last member; apply them after
// extraction, in parallel, natively.
//
// conda-pack leaves every bin/python* file out of the records (its script runs under that python),
// so bin/python3.X and bin/python3.X-config keep the build placeholder: a python whose RUNPATH
// names it cannot find its libpython. ferry has no such constraint: it also relocates bin/python*
// files that hold one of the archive's placeholders.
void apply_conda_unpack_records(const std::string& root, const std::vector<CondaUnpackRecord>& records,
                                Relocator& relocator, unsigned jobs) {
  util::UniqueFd root_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) util::throw_errno(root, "cannot open", errno);
  std::set<std::string> recorded, placeholders;
  for (const auto& rec : records) {
    recorded.insert(format::normalize_member_path(rec.path, "bin/conda-unpack"));
    placeholders.insert(rec.placeholder);
  }
  std::vector<std::string> pythons;
  std::error_code ec;
  for (const auto& ent : fs::directory_iterator(root + "/bin", ec)) {
    std::string rel = "bin/" + ent.path().filename().string();
    if (rel.rfind("bin/python", 0) == 0 && !recorded.count(rel) && ent.is_regular_file(ec) &&
        !ent.is_symlink(ec))
      pythons.push_back(rel);
  }
  JobArena arena(jobs);
  arena.execute([&] {
    tbb::parallel_for(std::size_t{0}, records.size(), [&](std::size_t i) {
      const CondaUnpackRecord& rec = records[i];
      relocate_in_place(root_fd.get(), format::normalize_member_path(rec.path, "bin/conda-unpack"),
                        rec.mode, rec.placeholder, relocator);
    });
    tbb::parallel_for(std::size_t{0}, pythons.size(), [&](std::size_t i) {
      for (const auto& placeholder : placeholders)
        relocate_in_place(root_fd.get(), pythons[i], std::nullopt, placeholder, relocator);
    });
  });
}

}  // namespace ferry::env
