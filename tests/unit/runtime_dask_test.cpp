// The runtime layer's pure parts: dask-node's command line both ways, the per-job port choice,
// --ports, and each worker's memory share.
#include <gtest/gtest.h>

#include <set>

#include "runtime/runtime.hpp"

namespace ferry::runtime {
namespace {

TEST(DaskNodeOptions, RoundTripKeepsEveryField) {
  DaskNodeOptions o;
  o.role = DaskRole::workers;
  o.cluster = "slurm-42-30123";
  o.dir = "/home/u/.cache/ferry/jobs/slurm-42/dask-30123";
  o.env_prefix = "/mnt/bb/u/env with space";
  o.scheduler = "tls://10.0.0.1:30123";
  o.workers = 3;
  o.threads = 4;
  o.per_gpu = true;
  o.tls = false;
  o.interface = "hsn0";
  o.local_directory = "-odd";  // a value that starts with '-' is still a value
  o.sysfs_root = "/rec/polaris";
  DaskNodeOptions back = decode_dask_node_options(encode_dask_node_options(o));
  EXPECT_EQ(back.role, o.role);
  EXPECT_EQ(back.cluster, o.cluster);
  EXPECT_EQ(back.dir, o.dir);
  EXPECT_EQ(back.env_prefix, o.env_prefix);
  EXPECT_EQ(back.scheduler, o.scheduler);
  EXPECT_EQ(back.workers, 3u);
  EXPECT_EQ(back.threads, 4u);
  EXPECT_TRUE(back.per_gpu);
  EXPECT_FALSE(back.tls);
  EXPECT_EQ(back.interface, "hsn0");
  EXPECT_EQ(back.local_directory, "-odd");
  EXPECT_EQ(back.sysfs_root, "/rec/polaris");
}

TEST(DaskNodeOptions, DefaultsAreLeftOut) {
  DaskNodeOptions o;
  o.role = DaskRole::check;
  o.cluster = "c";
  EXPECT_EQ(encode_dask_node_options(o),
            (std::vector<std::string>{"--role", "check", "--cluster", "c"}));
  DaskNodeOptions back = decode_dask_node_options(encode_dask_node_options(o));
  EXPECT_EQ(back.workers, 1u);
  EXPECT_TRUE(back.tls);
  EXPECT_EQ(back.sysfs_root, "/");
}

TEST(DaskNodeOptions, BadWordsNameTheOption) {
  auto message = [](std::vector<std::string> words) {
    try {
      decode_dask_node_options(words);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), Error::Kind::usage);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message({"--role", "boss", "--cluster", "c"}),
            "--role boss: expected scheduler, workers or check");
  EXPECT_EQ(message({"--cluster", "c"}), "--role is required");
  EXPECT_EQ(message({"--role", "workers"}), "--cluster is required");
  EXPECT_EQ(message({"--role", "workers", "--cluster", "c", "--workers"}),
            "--workers: needs a value");
  EXPECT_NE(message({"--role", "workers", "--cluster", "c", "--workers", "0"}).find("--workers"),
            std::string::npos);
  EXPECT_EQ(message({"--role", "workers", "--cluster", "c", "--bogus", "1"}),
            "--bogus: not an option of ferry dask-node");
}

TEST(ChoosePorts, SameKeySamePortsOtherKeysSpread) {
  auto all_free = [](unsigned) { return true; };
  unsigned a = choose_ports("dask:slurm:1001", 30000, 39999, all_free);
  EXPECT_EQ(a, choose_ports("dask:slurm:1001", 30000, 39999, all_free));
  EXPECT_EQ((a - 30000) % 3, 0u);
  EXPECT_LE(a + 2, 39999u);
  std::set<unsigned> seen;
  for (int job = 0; job < 50; ++job)
    seen.insert(choose_ports("dask:slurm:" + std::to_string(job), 30000, 39999, all_free));
  EXPECT_GT(seen.size(), 45u);  // concurrent jobs rarely start from the same place
}

TEST(ChoosePorts, FallsBackPastTakenPortsAndFailsWhenAllAre) {
  unsigned first = choose_ports("k", 40000, 40011, [](unsigned) { return true; });
  std::set<unsigned> taken = {first + 1};  // its dashboard port is taken
  unsigned next = choose_ports("k", 40000, 40011, [&](unsigned p) { return taken.count(p) == 0; });
  EXPECT_NE(next, first);
  EXPECT_EQ((next - 40000) % 3, 0u);
  try {
    choose_ports("k", 40000, 40011, [](unsigned) { return false; });
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "--ports 40000-40011: no three free ports (tried 4 places)");
  }
  EXPECT_THROW(choose_ports("k", 40000, 40001, [](unsigned) { return true; }), Error);
}

TEST(ChoosePorts, ALargerBlockStartsOnItsBoundaryAndProbesOnlyItsHead) {
  // Ray's block: 512 ports, the first 16 its daemons', the rest a worker range Ray skips in.
  const PortBlock ray{512, 16};
  std::set<unsigned> probed;
  unsigned base = choose_ports(
      "ray:slurm:7", 20000, 31999,
      [&](unsigned p) {
        probed.insert(p);
        return true;
      },
      ray);
  EXPECT_EQ((base - 20000) % 512, 0u);
  EXPECT_LE(base + 511, 31999u);
  EXPECT_EQ(probed.size(), 16u);
  EXPECT_EQ(*probed.begin(), base);
  // A taken daemon port moves the block; a taken worker port does not.
  unsigned moved = choose_ports(
      "ray:slurm:7", 20000, 31999, [&](unsigned p) { return p != base + 3; }, ray);
  EXPECT_NE(moved, base);
  EXPECT_EQ(choose_ports(
                "ray:slurm:7", 20000, 31999, [&](unsigned p) { return p != base + 100; }, ray),
            base);
  try {
    choose_ports(
        "k", 20000, 20400, [](unsigned) { return true; }, ray);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "--ports 20000-20400: need at least 512 ports in 1-65535");
  }
}

TEST(PortRange, ParsesAndRefuses) {
  EXPECT_EQ(parse_port_range("30000-39999"), (std::pair<unsigned, unsigned>{30000, 39999}));
  for (const char* bad : {"30000", "a-b", "40000-30000", "1-70000", "-5", ""})
    EXPECT_THROW(parse_port_range(bad), Error) << bad;
}

TEST(WorkerMemory, AllocationFirstThenTheNode) {
  const std::string meminfo = "MemTotal:       16384000 kB\nMemFree:  100 kB\n";
  EXPECT_EQ(worker_memory_limit({{"SLURM_MEM_PER_NODE", "8000"}}, meminfo, 4),
            8000ull * 1024 * 1024 / 4);
  EXPECT_EQ(
      worker_memory_limit({{"SLURM_MEM_PER_CPU", "1000"}, {"SLURM_CPUS_ON_NODE", "6"}}, meminfo, 2),
      3000ull * 1024 * 1024);
  EXPECT_EQ(worker_memory_limit({}, meminfo, 2), 16384000ull * 1024 / 2);
  EXPECT_EQ(worker_memory_limit({{"SLURM_MEM_PER_NODE", "junk"}}, meminfo, 1), 16384000ull * 1024);
}

}  // namespace
}  // namespace ferry::runtime
