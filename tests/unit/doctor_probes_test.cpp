// ferry doctor's readings of other tools' words: which MPI an mpiexec is, and the version in a
// --version text (texts recorded from the tools on this machine and from their documentation),
// and the machine table's node-local places (the default list, a machine's own, a site's file).
#include <gtest/gtest.h>

#include <fstream>

#include "doctor/doctor.hpp"
#include "temp_dir.hpp"

using namespace ferry::doctor;

TEST(MpiLauncherKind, NamesTheMpiFromItsVersionText) {
  // Debian 12's mpiexec.mpich and mpirun.openmpi, recorded.
  std::string hydra =
      "HYDRA build details:\n    Version:                                 4.0.2\n"
      "    Release Date:                            Thu Apr  7 12:34:45 CDT 2022\n";
  EXPECT_EQ(mpi_launcher_kind(hydra), "MPICH (Hydra)");
  EXPECT_EQ(version_in(hydra), "4.0.2");
  std::string openrte =
      "mpirun.openmpi (OpenRTE) 4.1.4\n\nReport bugs to http://www.open-mpi.org/community/help/\n";
  EXPECT_EQ(mpi_launcher_kind(openrte), "Open MPI");
  EXPECT_EQ(version_in(openrte), "4.1.4");
  EXPECT_EQ(mpi_launcher_kind("mpirun (Open MPI) 5.0.3\n"), "Open MPI");
  EXPECT_EQ(version_in("mpirun (Open MPI) 5.0.3\n"), "5.0.3");
  // Intel MPI's mpiexec is Hydra too: the library's name decides.
  std::string intel =
      "Intel(R) MPI Library for Linux* OS, Version 2021.10 Build 20230619 (id: c2e19c2f3e)\n"
      "Copyright 2003-2023, Intel Corporation.\nHYDRA build details:\n";
  EXPECT_EQ(mpi_launcher_kind(intel), "Intel MPI");
  EXPECT_EQ(version_in(intel), "2021.10");
  EXPECT_EQ(mpi_launcher_kind("HYDRA build details:\n MVAPICH2 Version: 2.3.7\n"), "MVAPICH");
  // Cray PALS, by its place where its text does not name it.
  EXPECT_EQ(mpi_launcher_kind("mpiexec version 1.2.12\n", "/opt/cray/pals/1.2.12/bin/mpiexec"),
            "Cray PALS");
  EXPECT_EQ(mpi_launcher_kind("slurm 22.05.8\n", "/usr/bin/srun"), "");
}

TEST(VersionIn, ReadsTheToolsOwnWords) {
  EXPECT_EQ(version_in("slurm 22.05.8\n"), "22.05.8");
  EXPECT_EQ(version_in("slurm-wlm 23.11.4\n"), "23.11.4");
  EXPECT_EQ(version_in("pbs_version = 2022.1.1\n"), "2022.1.1");
  EXPECT_EQ(version_in("Modules based on Lua: Version 8.6.19  2022-04-16 13:46 -05:00\n"),
            "8.6.19");
  EXPECT_EQ(version_in("Modules Release 5.2.0 (2022-11-08)\n"), "5.2.0");
  EXPECT_EQ(version_in("0.31\n"), "0.31");
  EXPECT_EQ(version_in("flux-core 0.61.2\n"), "0.61.2");
  EXPECT_EQ(version_in("0.32~pre+1234\n"), "0.32");
  EXPECT_EQ(version_in("sbatch: fatal: Could not establish a configuration source\n"), "");
  EXPECT_EQ(version_in(""), "");
}

TEST(NodeLocalPlaces, TheTableSaysWhereANodesOwnStorageIs) {
  auto machines = ferry::job::load_machines({});
  auto find = [&](const std::string& name) -> const ferry::job::Machine& {
    for (const auto& m : machines)
      if (m.name == name) return m;
    ADD_FAILURE() << "no machine " << name;
    return machines.front();
  };
  // The default list, for the entries that name none; Frontier's NVMe first.
  std::vector<std::string> fallback = {"$TMPDIR", "/mnt/bb/$USER", "/local/scratch", "/tmp",
                                       "/dev/shm"};
  EXPECT_EQ(find("generic-slurm").node_local, fallback);
  EXPECT_EQ(find("local").node_local, fallback);
  EXPECT_EQ(find("frontier").node_local,
            (std::vector<std::string>{"/mnt/bb/$USER", "$TMPDIR", "/tmp"}));

  // A site's file: its entry's own list, or the built-in default when it names none.
  TempDir dir;
  std::ofstream(dir.path.string() + "/site.json")
      << R"({"machines": [{"name": "mine", "match": {"hostnames": ["^mine$"]},
                          "node_local": ["/scratch/local/$USER"]},
                         {"name": "theirs", "match": {"hostnames": ["^theirs$"]}}]})";
  auto site = ferry::job::load_machines({{"FERRY_MACHINES", dir.path.string() + "/site.json"}});
  EXPECT_EQ(site[0].name, "mine");
  EXPECT_EQ(site[0].node_local, std::vector<std::string>{"/scratch/local/$USER"});
  EXPECT_EQ(site[1].name, "theirs");
  EXPECT_EQ(site[1].node_local, fallback);
}
