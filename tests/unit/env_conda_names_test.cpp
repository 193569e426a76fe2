// conda's `-n NAME`, as conda finds it: the variables' envs directories first, then the root's
// envs/, then ~/.conda/envs, then ~/.conda/environments.txt; "base" is the root; a miss names
// where it looked.
#include <gtest/gtest.h>

#include <fstream>

#include "env/env.hpp"
#include "temp_dir.hpp"

using namespace ferry::env;
using Environ = std::map<std::string, std::string>;

namespace {

void make_env(const std::string& dir) { std::filesystem::create_directories(dir + "/conda-meta"); }

std::string message_of(const std::string& name, const Environ& env) {
  try {
    find_conda_env(name, env);
  } catch (const ferry::Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST(CondaNames, CondasOrderOfEnvsDirectories) {
  TempDir t;
  std::string root = t / "miniforge", home = t / "home";
  make_env(root);
  make_env(root + "/envs/torch");
  make_env(home + "/.conda/envs/torch");
  make_env(home + "/.conda/envs/mine");
  make_env(t / "project/envs/torch");
  Environ env = {{"CONDA_EXE", root + "/bin/conda"}, {"HOME", home}};
  // The root's envs/ comes before the user's.
  EXPECT_EQ(find_conda_env("torch", env), root + "/envs/torch");
  EXPECT_EQ(find_conda_env("mine", env), home + "/.conda/envs/mine");
  EXPECT_EQ(find_conda_env("base", env), root);
  // CONDA_ENVS_PATH's directories come first; an entry that lacks the env is passed over.
  env["CONDA_ENVS_PATH"] = t / "empty" + ":" + t / "project/envs";
  EXPECT_EQ(find_conda_env("torch", env), t / "project/envs/torch");
  // The root from an active env inside it, when CONDA_EXE is not set.
  Environ active = {{"CONDA_PREFIX", root + "/envs/torch"}};
  EXPECT_EQ(find_conda_env("base", active), root);
  EXPECT_EQ(find_conda_env("torch", active), root + "/envs/torch");
}

TEST(CondaNames, EnvironmentsTxtListsPrefixEnvs) {
  TempDir t;
  std::string home = t / "home";
  make_env(t / "scratch/proj-env");
  std::filesystem::create_directories(home + "/.conda");
  std::ofstream(home + "/.conda/environments.txt") << t / "gone/proj-env"
                                                   << "\n"
                                                   << t / "scratch/proj-env"
                                                   << "\n";
  EXPECT_EQ(find_conda_env("proj-env", {{"HOME", home}}), t / "scratch/proj-env");
}

TEST(CondaNames, AMissNamesWhereItLooked) {
  TempDir t;
  std::string root = t / "miniforge";
  make_env(root);
  std::filesystem::create_directories(root + "/envs/notconda");  // no conda-meta: not an env
  Environ env = {{"CONDA_EXE", root + "/bin/conda"}, {"HOME", t / "home"}};
  std::string m = message_of("notconda", env);
  EXPECT_NE(m.find("-n notconda: no conda environment of that name in "), std::string::npos) << m;
  EXPECT_NE(m.find(root + "/envs"), std::string::npos) << m;
  EXPECT_NE(m.find(t / "home/.conda/environments.txt"), std::string::npos) << m;
  EXPECT_NE(message_of("a/b", env).find("not a path (use -p PATH)"), std::string::npos);
  EXPECT_NE(message_of("base", {}).find("-n base: no conda installation found"), std::string::npos);
}
