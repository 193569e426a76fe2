// CPU lists and CPU discovery, on the recorded trees of tests/fixtures/sysfs (make_trees.py).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "job/job.hpp"
#include "job_fixtures.hpp"

using ferry::job::CpuInventory;
using ferry::job::discover_cpus;
using ferry::job::DiscoverOptions;
using ferry::job::format_cpu_list;
using ferry::job::parse_cpu_list;

namespace {

CpuInventory cpus_of(const std::string& root) {
  DiscoverOptions options;
  options.sysfs_root = root;
  return discover_cpus(options);
}

std::string parse_error(std::string_view list) {
  try {
    parse_cpu_list(list, "SLURM_CPU_BIND_LIST");
  } catch (const ferry::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(CpuList, ParsesSysfsAndSlurmLists) {
  EXPECT_EQ(parse_cpu_list("0-3,8,10-11\n", "x"), (std::vector<unsigned>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(parse_cpu_list("5", "x"), (std::vector<unsigned>{5}));
  EXPECT_EQ(parse_cpu_list("8,0-1", "x"), (std::vector<unsigned>{0, 1, 8}));  // a set: sorted
  EXPECT_EQ(parse_cpu_list("1-2,2-3", "x"), (std::vector<unsigned>{1, 2, 3}));
  EXPECT_TRUE(parse_cpu_list("\n", "x").empty());  // a NUMA node without CPUs
}

TEST(CpuList, FormatsAscendingRuns) {
  EXPECT_EQ(format_cpu_list({0, 1, 2, 3, 8, 10, 11}), "0-3,8,10-11");
  EXPECT_EQ(format_cpu_list({3, 1, 2, 2}), "1-3");
  EXPECT_EQ(format_cpu_list({0, 2}), "0,2");
  EXPECT_EQ(format_cpu_list({}), "");
  for (std::string list : {"0", "0-207", "1-7,9-15,17-23", "24-31,56-63", "0,2,4-5,100"})
    EXPECT_EQ(format_cpu_list(parse_cpu_list(list, "x")), list);
}

TEST(CpuList, MalformedListsAreOneLineErrorsNamingTheSource) {
  for (std::string_view bad : {"3-1", "a", "1,,2", ",1", "1,", "-1", "1-", "1-2-3", "0x1", "1 2",
                               "1\n2", "0-2000000", "99999999"}) {
    std::string message = parse_error(bad);
    EXPECT_EQ(message.rfind("SLURM_CPU_BIND_LIST: invalid CPU list", 0), 0u)
        << bad << ": " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  EXPECT_NE(parse_error("3-1").find("runs backwards"), std::string::npos);
}

TEST(DiscoverCpus, PolarisOneSocketFourNumaNodes) {
  CpuInventory cpus = cpus_of(recorded_tree("polaris"));
  EXPECT_EQ(cpus.logical, 64u);
  EXPECT_EQ(cpus.cores, 32u);
  EXPECT_EQ(format_cpu_list(cpus.allowed), "0-63");  // no recorded cpuset: every online CPU
  ASSERT_EQ(cpus.numa_cpus.size(), 4u);
  EXPECT_EQ(format_cpu_list(cpus.numa_cpus[0]), "0-7,32-39");
  EXPECT_EQ(format_cpu_list(cpus.numa_cpus[3]), "24-31,56-63");
}

TEST(DiscoverCpus, FrontierCoreSpecializationLeavesTheJob112Cpus) {
  CpuInventory cpus = cpus_of(recorded_tree("frontier"));
  EXPECT_EQ(cpus.logical, 128u);
  EXPECT_EQ(cpus.cores, 64u);
  EXPECT_EQ(cpus.allowed.size(), 112u);
  for (unsigned reserved : {0u, 8u, 56u, 64u, 120u})
    EXPECT_FALSE(std::binary_search(cpus.allowed.begin(), cpus.allowed.end(), reserved))
        << reserved;
  EXPECT_EQ(cpus.allowed.front(), 1u);
  ASSERT_EQ(cpus.numa_cpus.size(), 4u);
  EXPECT_EQ(format_cpu_list(cpus.numa_cpus[0]), "0-15,64-79");
  EXPECT_EQ(format_cpu_list(cpus.numa_cpus[3]), "48-63,112-127");
}

TEST(DiscoverCpus, AuroraTwoSocketsWithReservedCores) {
  CpuInventory cpus = cpus_of(recorded_tree("aurora"));
  EXPECT_EQ(cpus.logical, 208u);
  EXPECT_EQ(cpus.cores, 104u);
  EXPECT_EQ(format_cpu_list(cpus.allowed), "1-51,53-103,105-155,157-207");
  ASSERT_EQ(cpus.numa_cpus.size(), 2u);
  EXPECT_EQ(format_cpu_list(cpus.numa_cpus[0]), "0-51,104-155");
  EXPECT_EQ(format_cpu_list(cpus.numa_cpus[1]), "52-103,156-207");
}

TEST(DiscoverCpus, SmallMachine) {
  CpuInventory cpus = cpus_of(recorded_tree("none"));
  EXPECT_EQ(cpus.logical, 2u);
  EXPECT_EQ(cpus.cores, 2u);
  EXPECT_EQ(format_cpu_list(cpus.allowed), "0-1");
  ASSERT_EQ(cpus.numa_cpus.size(), 1u);
  EXPECT_EQ(format_cpu_list(cpus.numa_cpus[0]), "0-1");
}

TEST(DiscoverCpus, MemoryOnlyNodesAreLeftOut) {
  TreeCopy copy("none");
  std::filesystem::create_directories(copy.path("sys/devices/system/node/node1"));
  std::ofstream(copy.path("sys/devices/system/node/node1/cpulist")) << "\n";  // HBM, CXL memory
  CpuInventory cpus = cpus_of(copy.root());
  ASSERT_EQ(cpus.numa_cpus.size(), 1u);
  EXPECT_EQ(cpus.numa_cpus.count(0), 1u);
}

TEST(DiscoverCpus, WithoutNumaEverythingIsNodeZero) {
  TreeCopy copy("none");
  std::filesystem::remove_all(copy.path("sys/devices/system/node"));
  CpuInventory cpus = cpus_of(copy.root());
  ASSERT_EQ(cpus.numa_cpus.size(), 1u);
  EXPECT_EQ(format_cpu_list(cpus.numa_cpus[0]), "0-1");
}

TEST(DiscoverCpus, ThisMachine) {
  CpuInventory cpus = cpus_of("/");
  EXPECT_EQ(cpus.logical, static_cast<unsigned>(::sysconf(_SC_NPROCESSORS_ONLN)));
  EXPECT_GE(cpus.cores, 1u);
  EXPECT_LE(cpus.cores, cpus.logical);
  ASSERT_FALSE(cpus.allowed.empty());
  EXPECT_TRUE(std::is_sorted(cpus.allowed.begin(), cpus.allowed.end()));
  std::vector<unsigned> in_nodes;
  for (const auto& [node, list] : cpus.numa_cpus)
    in_nodes.insert(in_nodes.end(), list.begin(), list.end());
  std::sort(in_nodes.begin(), in_nodes.end());
  EXPECT_GE(in_nodes.size(), cpus.logical);
  for (unsigned cpu : cpus.allowed)
    EXPECT_TRUE(std::binary_search(in_nodes.begin(), in_nodes.end(), cpu));
}
