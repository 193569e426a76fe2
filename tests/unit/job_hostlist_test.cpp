#include <gtest/gtest.h>

#include <random>

#include "job/job.hpp"

using ferry::job::compress_hostlist;
using ferry::job::expand_count_list;
using ferry::job::expand_hostlist;

namespace {
std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
  return out;
}
}  // namespace

// The table of the launch research note (§2.4): Slurm's semantics, which `scontrol show
// hostnames` confirms (tests/cli/hostlist_oracle.sh runs the same and more against it).
TEST(Hostlist, ExpandsLikeSlurm) {
  EXPECT_EQ(joined(expand_hostlist("nid[00001-00004,00010]")),
            "nid00001 nid00002 nid00003 nid00004 nid00010");
  EXPECT_EQ(joined(expand_hostlist("rack[1-2]-node[01-02]")),
            "rack1-node01 rack1-node02 rack2-node01 rack2-node02");
  EXPECT_EQ(joined(expand_hostlist("n[8-10]")), "n8 n9 n10");
  EXPECT_EQ(joined(expand_hostlist("n[08-10]")), "n08 n09 n10");
  EXPECT_EQ(expand_hostlist("n[1-010]").size(), 10u);
  EXPECT_EQ(expand_hostlist("n[1-010]").back(), "n10");
  EXPECT_EQ(expand_hostlist("n[001-1000]").back(), "n1000");
  EXPECT_EQ(expand_hostlist("n[001-1000]")[998], "n999");
  EXPECT_EQ(joined(expand_hostlist("n[1-2][3-4]")), "n13 n14 n23 n24");
  EXPECT_EQ(joined(expand_hostlist("tux0-5")), "tux0-5");
  EXPECT_EQ(joined(expand_hostlist("frontier[00001,00003-00004]")),
            "frontier00001 frontier00003 frontier00004");
  auto many = expand_hostlist("tux[0-5,12,20-25],login1 login2");
  ASSERT_EQ(many.size(), 15u);
  EXPECT_EQ(many[6], "tux12");
  EXPECT_EQ(many[14], "login2");
  // Three groups: the middle one is the outer loop (Slurm's recursion), not lexicographic order.
  EXPECT_EQ(joined(expand_hostlist("a[1-2]b[1-2]c[1-2]")),
            "a1b1c1 a1b1c2 a2b1c1 a2b1c2 a1b2c1 a1b2c2 a2b2c1 a2b2c2");
  // Suffix after the last group (newer Slurm; 22.05 refuses it).
  EXPECT_EQ(joined(expand_hostlist("gpu-[1-3]x")), "gpu-1x gpu-2x gpu-3x");
  // Order and duplicates are kept; separators collapse.
  EXPECT_EQ(joined(expand_hostlist(",,b2,\ta1,, a1\n")), "b2 a1 a1");
  EXPECT_EQ(joined(expand_hostlist("n[1-]")), "n1");
  EXPECT_TRUE(expand_hostlist("").empty());
}

TEST(Hostlist, RejectsMalformed) {
  for (const char* bad :
       {"n[5-3]", "n[1-2", "n[1--3]", "n[a-b]", "n[1x3]", "n[]", "n[1,,2]", "a[[1-2]]", "a[1-2]]",
        "n[0-65536]", "x[1-2]{a}", "a[1-2x[3-4]", "n[99999999999999999999]"}) {
    try {
      expand_hostlist(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const ferry::Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    }
  }
  // Many groups multiplied together cannot exhaust memory.
  EXPECT_THROW(expand_hostlist("a[0-65535]b[0-65535]"), ferry::Error);
}

TEST(Hostlist, CompressesLikeScontrol) {
  // Outputs of `scontrol show hostlist` (Slurm 22.05) for the same inputs.
  EXPECT_EQ(compress_hostlist(expand_hostlist("a1,a3,a2,b1,a4,a5,a5")), "a[1,3,2],b1,a[4-5,5]");
  EXPECT_EQ(compress_hostlist(expand_hostlist("n08,n09,n10,n9,n010")), "n[08-10,9,010]");
  EXPECT_EQ(compress_hostlist(expand_hostlist("n8,n9,n10")), "n[8-10]");
  EXPECT_EQ(compress_hostlist(expand_hostlist("n099,n100,n101")), "n[099-101]");
  EXPECT_EQ(compress_hostlist(expand_hostlist("n1,n01,n001")), "n[1,01,001]");
  EXPECT_EQ(compress_hostlist(expand_hostlist("n007,n8")), "n[007,8]");
  EXPECT_EQ(compress_hostlist(expand_hostlist("a,b1,b2,c")), "a,b[1-2],c");
  EXPECT_EQ(compress_hostlist(expand_hostlist("x1y2,x1y3")), "x1y[2-3]");
  EXPECT_EQ(compress_hostlist(expand_hostlist("n1-1,n1-2")), "n1-[1-2]");
  EXPECT_EQ(compress_hostlist({"foo"}), "foo");
  EXPECT_EQ(compress_hostlist({}), "");
  EXPECT_THROW(compress_hostlist({"bad[host"}), ferry::Error);
  EXPECT_THROW(compress_hostlist({"two words"}), ferry::Error);
}

// expand(compress(hosts)) == hosts on random host lists: shared and distinct prefixes, padding,
// gaps, duplicates, shuffled order, names without digits.
TEST(Hostlist, CompressThenExpandIsIdentity) {
  std::mt19937 rng(20261122);
  const char* prefixes[] = {"nid", "x3001c0s", "gpu-", "login", "n1-", "a"};
  for (int round = 0; round < 2000; ++round) {
    std::vector<std::string> hosts;
    int count = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < count; ++i) {
      std::string prefix = prefixes[rng() % 6];
      switch (rng() % 5) {
        case 0: hosts.push_back(prefix + "x"); break;
        case 1: hosts.push_back(prefix + std::to_string(rng() % 12)); break;
        default: {
          int width = static_cast<int>(rng() % 6);
          std::string digits = std::to_string(rng() % 1200);
          if (static_cast<int>(digits.size()) < width) digits.insert(0, width - digits.size(), '0');
          hosts.push_back(prefix + digits);
        }
      }
      if (rng() % 3 == 0 && !hosts.empty()) hosts.push_back(hosts.back());
    }
    if (rng() % 2) std::sort(hosts.begin(), hosts.end());
    std::string expr = compress_hostlist(hosts);
    ASSERT_EQ(expand_hostlist(expr), hosts) << expr;
    ASSERT_LE(expr.size(), joined(hosts).size() + 2) << expr;  // at worst one pair of brackets more
  }
}

TEST(CountList, ExpandsSlurmCounts) {
  EXPECT_EQ(expand_count_list("2(x3),1", "SLURM_TASKS_PER_NODE"),
            (std::vector<unsigned>{2, 2, 2, 1}));
  EXPECT_EQ(expand_count_list("72(x2),36", "SLURM_JOB_CPUS_PER_NODE"),
            (std::vector<unsigned>{72, 72, 36}));
  EXPECT_EQ(expand_count_list("8", "X"), (std::vector<unsigned>{8}));
  for (const char* bad : {"", "2(x)", "2(3)", "x", "2,,1", "2(x0)", "2(x3", "-1"}) {
    try {
      expand_count_list(bad, "SLURM_TASKS_PER_NODE");
      ADD_FAILURE() << "accepted " << bad;
    } catch (const ferry::Error& e) {
      EXPECT_NE(std::string(e.what()).find("SLURM_TASKS_PER_NODE"), std::string::npos);
    }
  }
}
