// The Ray side's pure parts: ray-node's command line both ways, the port block's layout, and the
// choice of Ray's directory against the kernel's limit on socket paths.
#include <gtest/gtest.h>

#include <set>

#include "runtime/runtime.hpp"

namespace ferry::runtime {
namespace {

TEST(RayNodeOptions, RoundTripKeepsEveryField) {
  RayNodeOptions o;
  o.cluster = "slurm-42-20480";
  o.dir = "/home/u/.cache/ferry/jobs/slurm-42/ray-20480";
  o.env_prefix = "/mnt/bb/u/env with space";
  o.head = "nid001";
  o.head_address = "10.0.0.1";
  o.port = 20480;
  o.token = false;
  o.dashboard = true;
  o.client = true;
  o.own_temp_dir = false;
  o.interface = "hsn0";
  o.temp_dir = "-odd";  // a value that starts with '-' is still a value
  o.timeout = 600;
  o.sysfs_root = "/rec/polaris";
  RayNodeOptions back = decode_ray_node_options(encode_ray_node_options(o));
  EXPECT_EQ(back.role, RayRole::node);
  EXPECT_EQ(back.cluster, o.cluster);
  EXPECT_EQ(back.dir, o.dir);
  EXPECT_EQ(back.env_prefix, o.env_prefix);
  EXPECT_EQ(back.head, "nid001");
  EXPECT_EQ(back.head_address, "10.0.0.1");
  EXPECT_EQ(back.port, 20480u);
  EXPECT_FALSE(back.token);
  EXPECT_TRUE(back.dashboard);
  EXPECT_TRUE(back.client);
  EXPECT_FALSE(back.own_temp_dir);
  EXPECT_EQ(back.interface, "hsn0");
  EXPECT_EQ(back.temp_dir, "-odd");
  EXPECT_EQ(back.timeout, 600);
  EXPECT_EQ(back.sysfs_root, "/rec/polaris");
  // The defaults stay off the line; the check role needs no head.
  RayNodeOptions check;
  check.role = RayRole::check;
  check.cluster = "c";
  EXPECT_EQ(encode_ray_node_options(check),
            (std::vector<std::string>{"--role", "check", "--cluster", "c"}));
  EXPECT_EQ(decode_ray_node_options(encode_ray_node_options(check)).role, RayRole::check);
}

TEST(RayNodeOptions, BadLinesNameTheOption) {
  auto message = [](const std::vector<std::string>& words) {
    try {
      decode_ray_node_options(words);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message({"--cluster", "c"}), "--role is required");
  EXPECT_EQ(message({"--role", "node", "--cluster", "c"}),
            "--head, --head-address and --port are required");
  EXPECT_EQ(message({"--role", "head", "--cluster", "c"}), "--role head: expected node or check");
  EXPECT_EQ(message({"--role", "check", "--cluster", "c", "--bogus", "1"}),
            "--bogus: not an option of ferry ray-node");
  EXPECT_EQ(message({"--role", "check", "--cluster"}), "--cluster: needs a value");
}

TEST(RayPorts, EveryPortInsideTheBlockAndDistinct) {
  RayPorts p{20480};
  std::set<unsigned> fixed = {p.gcs(),
                              p.node_manager(),
                              p.object_manager(),
                              p.client_server(),
                              p.dashboard(),
                              p.dashboard_agent_listen(),
                              p.dashboard_agent_grpc(),
                              p.metrics_export(),
                              p.runtime_env_agent(),
                              p.autoscaler_metrics(),
                              p.dashboard_metrics()};
  EXPECT_EQ(fixed.size(), 11u);
  EXPECT_GE(*fixed.begin(), p.base);
  EXPECT_LT(*fixed.rbegin(), p.base + k_ray_fixed_ports);  // the probed head of the block
  EXPECT_EQ(p.min_worker(), p.base + k_ray_fixed_ports);
  EXPECT_EQ(p.max_worker(), p.base + k_ray_port_block - 1);  // the next block starts after it
}

TEST(RayTempDir, FirstBaseWhoseSocketsFitElseHowLongTheyWouldBe) {
  EXPECT_EQ(ray_temp_dir({"/tmp"}, 20480, "nid001"), "/tmp/ferry-ray-20480-nid001");
  EXPECT_EQ(ray_temp_dir({"/tmp/"}, 20480, "nid001"), "/tmp/ferry-ray-20480-nid001");
  // Ray's longest socket is <dir>/session_<26 chars of date>_<pid>/sockets/plasma_store: 64
  // bytes after the directory, 107 in all.
  std::string deep = "/local/scratch/" + std::string(40, 'j');
  EXPECT_EQ(ray_temp_dir({deep, "/tmp"}, 20480, "n1"), "/tmp/ferry-ray-20480-n1");
  std::size_t shortest = 0;
  EXPECT_EQ(ray_temp_dir({deep}, 20480, "n1", &shortest), "");
  EXPECT_EQ(shortest, deep.size() + std::string("/ferry-ray-20480-n1").size() + 64);
  // Exactly at the limit still fits.
  std::string edge(107 - 64 - std::string("/ferry-ray-20480-n1").size(), 'x');
  edge[0] = '/';
  EXPECT_EQ(ray_temp_dir({edge}, 20480, "n1"), edge + "/ferry-ray-20480-n1");
  EXPECT_EQ(ray_temp_dir({edge + "y"}, 20480, "n1"), "");
}

}  // namespace
}  // namespace ferry::runtime
