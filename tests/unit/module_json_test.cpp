// The JSON form of a written modulefile (ferry module --json) and the names of write actions
// (also printed by ferry conda-config).
#include <gtest/gtest.h>

#include <vector>

#include "json_keys.hpp"
#include "module/module.hpp"

using namespace ferry;

TEST(ModuleJson, WrittenHasTheKeysOfModuleJson) {
  module::Written w;
  w.prefix = "/envs/torch";
  w.kind = env::Kind::conda;
  w.module = "torch/3.11";
  w.name = "torch";
  w.action = module::WriteAction::unchanged;
  w.packages = 7;
  w.key_packages = {{"python", "3.11.7"}, {"numpy", "1.26.4"}};
  nlohmann::ordered_json j = w;
  EXPECT_EQ(json_keys(j), (std::vector<std::string>{"prefix", "kind", "module", "path", "action",
                                                    "python_version", "packages", "key_packages",
                                                    "activate_scripts"}));
  EXPECT_EQ(j["kind"], "conda");
  EXPECT_EQ(j["module"], "torch/3.11");
  EXPECT_EQ(j["action"], "unchanged");
  EXPECT_EQ(j["key_packages"].dump(),
            R"([{"name":"python","version":"3.11.7"},{"name":"numpy","version":"1.26.4"}])");
}

TEST(ModuleJson, Names) {
  EXPECT_EQ(util::name(module::WriteAction::written), "written");
  EXPECT_EQ(util::name(module::WriteAction::unchanged), "unchanged");
  EXPECT_EQ(util::name(module::WriteAction::replaced), "replaced");
  EXPECT_EQ(util::name(module::System::lmod), "lmod");
  EXPECT_EQ(util::name(module::System::tcl), "tcl");
}
