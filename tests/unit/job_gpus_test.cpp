// GPU discovery on the recorded trees of tests/fixtures/sysfs (make_trees.py): what each machine
// has, in which order, where; and what the visibility variables leave a job.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "job/job.hpp"
#include "job_fixtures.hpp"

using ferry::job::discover_gpus;
using ferry::job::DiscoverOptions;
using ferry::job::Environ;
using ferry::job::format_cpu_list;
using ferry::job::GpuInventory;
using ferry::job::GpuVendor;

namespace {

GpuInventory gpus_of(const std::string& root, const Environ& env = {}) {
  DiscoverOptions options;
  options.sysfs_root = root;
  return discover_gpus(env, options);
}

// What a user checks first: the visible devices as "gpu[.tile]=selector".
std::string visible(const GpuInventory& inv) {
  std::string out;
  for (const auto& d : inv.visible) {
    if (!out.empty()) out += " ";
    out += std::to_string(d.gpu) + (d.tile >= 0 ? "." + std::to_string(d.tile) : "") + "=" +
           d.selector;
  }
  return out;
}

// Just the GPUs, for lists where the selector is a UUID.
std::string visible_gpus(const GpuInventory& inv) {
  std::string out;
  for (const auto& d : inv.visible) out += (out.empty() ? "" : ",") + std::to_string(d.gpu);
  return out;
}

bool any_note(const GpuInventory& inv, const std::string& part) {
  for (const std::string& note : inv.notes)
    if (note.find(part) != std::string::npos) return true;
  return false;
}

std::string notes(const GpuInventory& inv) {
  std::string out;
  for (const std::string& note : inv.notes) out += note + "\n";
  return out;
}

}  // namespace

TEST(VendorName, NamesEachVendor) {
  EXPECT_EQ(ferry::job::vendor_name(GpuVendor::nvidia), "nvidia");
  EXPECT_EQ(ferry::job::vendor_name(GpuVendor::amd), "amd");
  EXPECT_EQ(ferry::job::vendor_name(GpuVendor::intel), "intel");
}

// ---------------------------------------------------------------------------------------------
// Polaris: 4 × A100, GPU order the reverse of NUMA order (ALCF's device affinity table)

TEST(PolarisGpus, FourA100sWithTheirNumaNodesAndCpus) {
  GpuInventory inv = gpus_of(recorded_tree("polaris"));
  ASSERT_EQ(inv.gpus.size(), 4u) << notes(inv);
  const char* addresses[] = {"0000:07:00.0", "0000:46:00.0", "0000:85:00.0", "0000:c7:00.0"};
  const int numa[] = {3, 2, 1, 0};
  const char* cpus[] = {"24-31,56-63", "16-23,48-55", "8-15,40-47", "0-7,32-39"};
  for (unsigned i = 0; i < 4; ++i) {
    const auto& gpu = inv.gpus[i];
    EXPECT_EQ(gpu.vendor, GpuVendor::nvidia);
    EXPECT_EQ(gpu.index, i);
    EXPECT_EQ(gpu.pci_address, addresses[i]);
    EXPECT_EQ(gpu.numa_node, numa[i]);
    EXPECT_EQ(format_cpu_list(gpu.local_cpus), cpus[i]);
    EXPECT_EQ(gpu.model, "NVIDIA A100-SXM4-40GB");
    EXPECT_EQ(gpu.uuid.rfind("GPU-", 0), 0u);
    EXPECT_EQ(gpu.tiles, 1u);
    EXPECT_TRUE(gpu.usable);
  }
  EXPECT_EQ(inv.gpus[1].uuid, "GPU-8932f937-1b2c-4d3e-8f40-5a6b7c8d9e0f");
  EXPECT_EQ(inv.visibility_variable, "CUDA_VISIBLE_DEVICES");
  EXPECT_EQ(inv.hierarchy, "");
  // Unset: every GPU, selected by UUID (indices move under MPS and cgroups; UUIDs do not).
  ASSERT_EQ(inv.visible.size(), 4u);
  for (unsigned i = 0; i < 4; ++i) {
    EXPECT_EQ(inv.visible[i].gpu, i);
    EXPECT_EQ(inv.visible[i].tile, -1);
    EXPECT_EQ(inv.visible[i].selector, inv.gpus[i].uuid);
  }
}

TEST(PolarisGpus, TheBmcDisplayAndOtherPciDevicesAreNotGpus) {
  GpuInventory inv = gpus_of(recorded_tree("polaris"));
  for (const auto& gpu : inv.gpus) {
    EXPECT_NE(gpu.pci_address, "0000:02:00.0");  // ASPEED VGA, first on the bus
    EXPECT_NE(gpu.pci_address, "0000:41:00.0");  // NIC
  }
  EXPECT_TRUE(any_note(inv, "0000:02:00.0: display device of vendor 0x1a03")) << notes(inv);
}

TEST(PolarisGpus, CudaVisibleDevices) {
  std::string root = recorded_tree("polaris");
  EXPECT_EQ(visible_gpus(gpus_of(root, {{"CUDA_VISIBLE_DEVICES", ""}})), "");        // empty: none
  EXPECT_EQ(visible_gpus(gpus_of(root, {{"CUDA_VISIBLE_DEVICES", "2,0"}})), "2,0");  // list order
  EXPECT_EQ(visible_gpus(gpus_of(root, {{"CUDA_VISIBLE_DEVICES", "3"}})), "3");
  EXPECT_EQ(visible_gpus(gpus_of(root, {{"CUDA_VISIBLE_DEVICES", "4"}})), "");  // no GPU 4
  EXPECT_EQ(visible_gpus(gpus_of(root, {{"CUDA_VISIBLE_DEVICES", "1,1,2"}})), "1,2");

  // The first invalid entry ends the list (CUDA Programming Guide).
  GpuInventory truncated = gpus_of(root, {{"CUDA_VISIBLE_DEVICES", "0,2,-1,1"}});
  EXPECT_EQ(visible_gpus(truncated), "0,2");
  EXPECT_TRUE(any_note(truncated, "'-1' names no GPU")) << notes(truncated);

  // UUIDs, whole or a unique prefix; an ambiguous prefix is invalid.
  EXPECT_EQ(visible_gpus(gpus_of(root, {{"CUDA_VISIBLE_DEVICES", "GPU-3c5b6b1e"}})), "0");
  EXPECT_EQ(visible_gpus(gpus_of(
                root, {{"CUDA_VISIBLE_DEVICES", "GPU-d41f0c2b-3e4f-4a5b-8c6d-7e8f9a0b1c2d,1"}})),
            "3,1");
  EXPECT_EQ(visible_gpus(gpus_of(root, {{"CUDA_VISIBLE_DEVICES", "3,GPU-8932f9,0"}})), "3");
  EXPECT_EQ(visible_gpus(gpus_of(root, {{"CUDA_VISIBLE_DEVICES", "1,MIG-GPU-x/1/0,2"}})), "1");
}

TEST(PolarisGpus, AGpuWhoseDeviceNodeCannotBeOpenedIsListedButNotVisible) {
  TreeCopy copy("polaris");
  copy.remove("dev/nvidia1");  // what a cgroup device rule looks like from inside the job
  GpuInventory inv = gpus_of(copy.root());
  ASSERT_EQ(inv.gpus.size(), 4u);
  EXPECT_FALSE(inv.gpus[1].usable);
  EXPECT_TRUE(inv.gpus[2].usable);
  EXPECT_EQ(visible_gpus(inv), "0,2,3");
  EXPECT_TRUE(any_note(inv, "0000:46:00.0: not usable")) << notes(inv);
  EXPECT_TRUE(any_note(inv, "dev/nvidia1")) << notes(inv);

  // Inside the cgroup CUDA numbers only what it can open: device 1 is the host's GPU 2.
  EXPECT_EQ(visible_gpus(gpus_of(copy.root(), {{"CUDA_VISIBLE_DEVICES", "1"}})), "2");
}

TEST(WorkstationGpus, IntegratedIntelGpuIsLeftOutAndNvidiaWorksWithoutProc) {
  GpuInventory inv = gpus_of(recorded_tree("workstation"));
  ASSERT_EQ(inv.gpus.size(), 1u) << notes(inv);
  EXPECT_EQ(inv.gpus[0].vendor, GpuVendor::nvidia);
  EXPECT_EQ(inv.gpus[0].pci_address, "0000:01:00.0");
  EXPECT_EQ(inv.gpus[0].model, "");  // no /proc/driver/nvidia, no NVML under a recorded root
  EXPECT_EQ(inv.gpus[0].numa_node, -1);
  EXPECT_EQ(visible(inv), "0=0");  // no UUID known: the index
  EXPECT_TRUE(any_note(inv, "0000:00:02.0 (device 0xa780) is an integrated GPU")) << notes(inv);
  EXPECT_TRUE(any_note(inv, "device node unknown")) << notes(inv);
}

// ---------------------------------------------------------------------------------------------
// Frontier: 8 MI250X GCDs, numbered in KFD order, which is not NUMA order

TEST(FrontierGpus, EightGcdsInKfdOrder) {
  GpuInventory inv = gpus_of(recorded_tree("frontier"));
  ASSERT_EQ(inv.gpus.size(), 8u) << notes(inv);
  const char* buses[] = {"c1", "c6", "c9", "ce", "d1", "d6", "d9", "de"};
  const int numa[] = {3, 3, 1, 1, 0, 0, 2, 2};
  for (unsigned i = 0; i < 8; ++i) {
    EXPECT_EQ(inv.gpus[i].vendor, GpuVendor::amd);
    EXPECT_EQ(inv.gpus[i].index, i);
    EXPECT_EQ(inv.gpus[i].pci_address, std::string("0000:") + buses[i] + ":00.0");
    EXPECT_EQ(inv.gpus[i].numa_node, numa[i]) << i;
    EXPECT_EQ(inv.gpus[i].model, "gfx90a");
  }
  // GPU 4 is on NUMA 0; its PCI local_cpulist is the whole node (the 8-core split is the
  // machine table's business).
  EXPECT_EQ(format_cpu_list(inv.gpus[4].local_cpus), "0-15,64-79");
  EXPECT_EQ(format_cpu_list(inv.gpus[5].local_cpus), "0-15,64-79");
  EXPECT_EQ(format_cpu_list(inv.gpus[0].local_cpus), "48-63,112-127");
  EXPECT_EQ(inv.gpus[4].uuid, "GPU-2C6A4E8F1B3D5704");  // ROCr's form of the KFD unique_id
  EXPECT_EQ(inv.visibility_variable, "ROCR_VISIBLE_DEVICES");
  EXPECT_EQ(visible(inv), "0=0 1=1 2=2 3=3 4=4 5=5 6=6 7=7");
}

TEST(FrontierGpus, RocrVisibleDevices) {
  std::string root = recorded_tree("frontier");
  EXPECT_EQ(visible(gpus_of(root, {{"ROCR_VISIBLE_DEVICES", "4,5"}})), "4=4 5=5");
  EXPECT_EQ(visible(gpus_of(root, {{"ROCR_VISIBLE_DEVICES", "5,4"}})), "5=5 4=4");
  EXPECT_EQ(visible(gpus_of(root, {{"ROCR_VISIBLE_DEVICES", ""}})), "");
  EXPECT_EQ(visible(gpus_of(root, {{"ROCR_VISIBLE_DEVICES", "gpu-2c6a4e8f1b3d5704"}})), "4=4");
  // ROCr ends the list at a repeated or invalid entry.
  EXPECT_EQ(visible(gpus_of(root, {{"ROCR_VISIBLE_DEVICES", "1,1,2"}})), "1=1");
  EXPECT_EQ(visible(gpus_of(root, {{"ROCR_VISIBLE_DEVICES", "6,8,7"}})), "6=6");
  EXPECT_EQ(visible(gpus_of(root, {{"ROCR_VISIBLE_DEVICES", "GPU-2C6A4E8F1B3D57"}})),
            "");  // ambiguous
}

TEST(FrontierGpus, HipAndCudaVisibleDevicesCountWithinRocrs) {
  std::string root = recorded_tree("frontier");
  GpuInventory inv = gpus_of(root, {{"ROCR_VISIBLE_DEVICES", "4,5"}, {"HIP_VISIBLE_DEVICES", "1"}});
  EXPECT_EQ(visible(inv), "5=5");
  EXPECT_TRUE(any_note(inv, "must unset it")) << notes(inv);
  EXPECT_EQ(
      visible(gpus_of(root, {{"ROCR_VISIBLE_DEVICES", "6,7"}, {"CUDA_VISIBLE_DEVICES", "0"}})),
      "6=6");
  // HIP's variable wins over CUDA's; an empty one filters nothing (HIP reads it as unset).
  EXPECT_EQ(visible(gpus_of(root, {{"HIP_VISIBLE_DEVICES", "3"}, {"CUDA_VISIBLE_DEVICES", "2"}})),
            "3=3");
  EXPECT_EQ(visible(gpus_of(root, {{"HIP_VISIBLE_DEVICES", ""}, {"CUDA_VISIBLE_DEVICES", "2"}})),
            "2=2");
  EXPECT_EQ(visible(gpus_of(root, {{"HIP_VISIBLE_DEVICES", ""}})).size(),
            visible(gpus_of(root)).size());
  // Within ROCr's two devices, index 2 does not exist.
  EXPECT_EQ(
      visible(gpus_of(root, {{"ROCR_VISIBLE_DEVICES", "0,1"}, {"HIP_VISIBLE_DEVICES", "1,2,0"}})),
      "1=1");
}

TEST(FrontierGpus, ARenderNodeThatCannotBeOpenedHidesTheGcd) {
  TreeCopy copy("frontier");
  copy.remove("dev/dri/renderD130");
  GpuInventory inv = gpus_of(copy.root());
  ASSERT_EQ(inv.gpus.size(), 8u);
  EXPECT_FALSE(inv.gpus[2].usable);
  EXPECT_EQ(visible(inv), "0=0 1=1 3=2 4=3 5=4 6=5 7=6");  // ROCr renumbers what it can open
  EXPECT_EQ(visible(gpus_of(copy.root(), {{"ROCR_VISIBLE_DEVICES", "2"}})), "3=2");
}

// ---------------------------------------------------------------------------------------------
// Aurora: 6 PVC cards × 2 tiles; FLAT unless ZE_FLAT_DEVICE_HIERARCHY says otherwise

TEST(AuroraGpus, SixCardsOfTwoTilesOnTwoSockets) {
  for (std::string machine : {"aurora", "aurora_xe"}) {  // i915's gt/gt<k>, xe's tile<k>
    GpuInventory inv = gpus_of(recorded_tree(machine));
    ASSERT_EQ(inv.gpus.size(), 6u) << machine << "\n" << notes(inv);
    const char* addresses[] = {"0000:18:00.0", "0000:42:00.0", "0000:6c:00.0",
                               "0001:18:00.0", "0001:42:00.0", "0001:6c:00.0"};
    for (unsigned i = 0; i < 6; ++i) {
      EXPECT_EQ(inv.gpus[i].vendor, GpuVendor::intel);
      EXPECT_EQ(inv.gpus[i].pci_address, addresses[i]);
      EXPECT_EQ(inv.gpus[i].tiles, 2u) << machine;
      EXPECT_EQ(inv.gpus[i].numa_node, i < 3 ? 0 : 1);
      EXPECT_EQ(format_cpu_list(inv.gpus[i].local_cpus), i < 3 ? "0-51,104-155" : "52-103,156-207");
      EXPECT_EQ(inv.gpus[i].model, "Intel Data Center GPU Max (Ponte Vecchio)");
    }
    EXPECT_EQ(inv.visibility_variable, "ZE_AFFINITY_MASK");
    // FLAT by default: 12 devices, tile t of card c is device 2c + t.
    EXPECT_EQ(inv.hierarchy, "FLAT");
    EXPECT_EQ(visible(inv),
              "0.0=0 0.1=1 1.0=2 1.1=3 2.0=4 2.1=5 3.0=6 3.1=7 4.0=8 4.1=9 5.0=10 5.1=11");
  }
}

TEST(AuroraGpus, CompositeExposesCardsAndTheMaskSelectsTiles) {
  std::string root = recorded_tree("aurora");
  GpuInventory inv = gpus_of(root, {{"ZE_FLAT_DEVICE_HIERARCHY", "COMPOSITE"}});
  EXPECT_EQ(inv.hierarchy, "COMPOSITE");
  EXPECT_EQ(visible(inv), "0=0 1=1 2=2 3=3 4=4 5=5");
  Environ env = {{"ZE_FLAT_DEVICE_HIERARCHY", "COMPOSITE"}, {"ZE_AFFINITY_MASK", "0.0,0.1"}};
  EXPECT_EQ(visible(gpus_of(root, env)), "0.0=0.0 0.1=0.1");
  env["ZE_AFFINITY_MASK"] = "5.1,1";  // card order, as Level Zero keeps it
  EXPECT_EQ(visible(gpus_of(root, env)), "1=1 5.1=5.1");
  env["ZE_AFFINITY_MASK"] = "6,0.2,2";  // no card 6, no tile 2: skipped, not list-ending
  GpuInventory skipped = gpus_of(root, env);
  EXPECT_EQ(visible(skipped), "2=2");
  EXPECT_TRUE(any_note(skipped, "'0.2' names no COMPOSITE device or tile")) << notes(skipped);
}

TEST(AuroraGpus, FlatMaskSelectsTilesByFlatNumberInMaskOrder) {
  std::string root = recorded_tree("aurora");
  EXPECT_EQ(visible(gpus_of(root, {{"ZE_AFFINITY_MASK", "11,0"}})), "5.1=11 0.0=0");
  EXPECT_EQ(visible(gpus_of(root, {{"ZE_AFFINITY_MASK", "0.1,3"}})), "1.1=3");  // X.Y: not FLAT
  EXPECT_EQ(visible(gpus_of(root, {{"ZE_AFFINITY_MASK", ""}})).size(),
            visible(gpus_of(root)).size());  // an empty mask filters nothing
  GpuInventory combined =
      gpus_of(root, {{"ZE_FLAT_DEVICE_HIERARCHY", "COMBINED"}, {"ZE_AFFINITY_MASK", "2"}});
  EXPECT_EQ(combined.hierarchy, "COMBINED");
  EXPECT_EQ(visible(combined), "1.0=2");
  GpuInventory odd = gpus_of(root, {{"ZE_FLAT_DEVICE_HIERARCHY", "composite"}});  // case matters
  EXPECT_EQ(odd.hierarchy, "FLAT");
  EXPECT_TRUE(any_note(odd, "'composite' is not FLAT")) << notes(odd);
}

TEST(AuroraGpus, AnUnusableCardIsSkippedInTheNumbering) {
  TreeCopy copy("aurora");
  copy.remove("dev/dri/renderD129");
  GpuInventory inv = gpus_of(copy.root());
  EXPECT_FALSE(inv.gpus[1].usable);
  EXPECT_EQ(visible(inv), "0.0=0 0.1=1 2.0=2 2.1=3 3.0=4 3.1=5 4.0=6 4.1=7 5.0=8 5.1=9");
  EXPECT_EQ(visible(gpus_of(copy.root(), {{"ZE_FLAT_DEVICE_HIERARCHY", "COMPOSITE"}})),
            "0=0 2=1 3=2 4=3 5=4");
}

// ---------------------------------------------------------------------------------------------

TEST(NoGpus, APlainMachine) {
  GpuInventory inv = gpus_of(recorded_tree("none"));
  EXPECT_TRUE(inv.gpus.empty());
  EXPECT_TRUE(inv.visible.empty());
  EXPECT_EQ(inv.visibility_variable, "");
  EXPECT_TRUE(any_note(inv, "no GPUs found"));
  EXPECT_TRUE(gpus_of(recorded_tree("none"), {{"CUDA_VISIBLE_DEVICES", "0"}}).visible.empty());
}

TEST(NoGpus, MissingTreeIsNoGpusNotAnError) {
  EXPECT_TRUE(gpus_of("/nonexistent-ferry-root").gpus.empty());
}

TEST(ThisMachine, DiscoveryIsConsistent) {
  GpuInventory inv = gpus_of("/");
  for (unsigned i = 0; i < inv.gpus.size(); ++i) EXPECT_EQ(inv.gpus[i].index, i);
  for (const auto& device : inv.visible) {
    ASSERT_LT(device.gpu, inv.gpus.size());
    EXPECT_TRUE(inv.gpus[device.gpu].usable);
    EXPECT_FALSE(device.selector.empty());
  }
  EXPECT_FALSE(inv.notes.empty());
}
