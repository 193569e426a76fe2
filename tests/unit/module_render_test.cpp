// module's pure parts: --user-dirs parsing, naming, key packages and the modulefile text.
#include <gtest/gtest.h>

#include "module/module.hpp"

using namespace ferry;
using Part = module::CondaRoot::Part;

// ADL finds it in Part's namespace.
namespace ferry::module {
bool operator==(const CondaRoot::Part& a, const CondaRoot::Part& b) {
  return a.text == b.text && a.variable == b.variable;
}
}  // namespace ferry::module

namespace {

std::string user_dirs_error(const std::string& pattern) {
  try {
    module::parse_user_dirs(pattern);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), Error::Kind::usage);
    return e.what();
  }
  return "(accepted)";
}

module::EnvInfo conda_env() {
  module::EnvInfo info;
  info.prefix = "/scratch/u/envs/torch 2";
  info.kind = env::Kind::conda;
  info.python_version = "3.11.7";
  info.packages = {{"numpy", "1.26.4"}, {"pip", "24.0"}, {"python", "3.11.7"}, {"zlib", "1.3"}};
  return info;
}

}  // namespace

TEST(ParseUserDirs, SplitsLiteralTextAndVariables) {
  EXPECT_EQ(module::parse_user_dirs("$SCRATCH/conda"),
            (std::vector<Part>{{"SCRATCH", true}, {"/conda", false}}));
  EXPECT_EQ(module::parse_user_dirs("/scratch/${USER}/conda/"),
            (std::vector<Part>{{"/scratch/", false}, {"USER", true}, {"/conda", false}}));
  EXPECT_EQ(module::parse_user_dirs("/"), (std::vector<Part>{{"/", false}}));
}

TEST(ParseUserDirs, RefusesWhatCondaOrTheModulefileCouldNotUse) {
  EXPECT_EQ(user_dirs_error("conda"),
            "--user-dirs 'conda': must be an absolute path or start with a variable, e.g. "
            "'$SCRATCH/conda'");
  EXPECT_EQ(user_dirs_error("/a:/b"),
            "--user-dirs '/a:/b': ':' and ',' separate conda's lists and cannot be in a directory");
  EXPECT_EQ(user_dirs_error("/a,b"),
            "--user-dirs '/a,b': ':' and ',' separate conda's lists and cannot be in a directory");
  EXPECT_EQ(user_dirs_error("/a/$/b"),
            "--user-dirs '/a/$/b': '$' must start a variable: $NAME or ${NAME}");
  EXPECT_EQ(user_dirs_error("/a/${USER"),
            "--user-dirs '/a/${USER': '$' must start a variable: $NAME or ${NAME}");
  EXPECT_EQ(user_dirs_error("/a/\nb"), "--user-dirs '/a/\nb': control characters");
  EXPECT_EQ(user_dirs_error(""),
            "--user-dirs '': must be an absolute path or start with a variable, e.g. "
            "'$SCRATCH/conda'");
}

TEST(DefaultNaming, IsTheBasenameAndPythonMajorMinor) {
  module::Naming n = module::default_naming(conda_env(), "python");
  EXPECT_EQ(n.name, "torch 2");
  EXPECT_EQ(n.version, "3.11");
  EXPECT_EQ(n.family, "python");
  module::EnvInfo none = conda_env();
  none.python_version.clear();
  EXPECT_EQ(module::default_naming(none, "").version, "default");
}

TEST(KeyPackages, ComeInTheFixedOrderAndOnlyWhenPresent) {
  std::vector<module::Package> keys = module::key_packages(conda_env());
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_EQ(keys[0].name, "python");
  EXPECT_EQ(keys[1].name, "numpy");
  EXPECT_EQ(keys[2].name, "pip");
}

TEST(Render, LuaPutsTheEnvFirstOnPathAndSetsCondaVariablesReversibly) {
  module::EnvInfo info = conda_env();
  std::string lua =
      module::render(info, module::default_naming(info, "python"), module::System::lmod);
  EXPECT_EQ(lua.rfind("-- torch 2/3.11: the conda environment /scratch/u/envs/torch 2\n", 0), 0u);
  EXPECT_NE(lua.find("family(\"python\")\n"), std::string::npos);
  EXPECT_NE(lua.find("prepend_path(\"PATH\", \"/scratch/u/envs/torch 2/bin\")\n"),
            std::string::npos);
  EXPECT_NE(lua.find("ferry_pushenv(\"CONDA_PREFIX\", \"/scratch/u/envs/torch 2\")\n"),
            std::string::npos);
  // Without activation scripts there is nothing to source and no Lmod version check.
  EXPECT_EQ(lua.find("source_sh("), std::string::npos);
  EXPECT_EQ(lua.find("LmodVersion"), std::string::npos);
}

TEST(Render, TclQuotesEveryWordSoPathsWithSpecialCharactersStayLiteral) {
  module::EnvInfo info = conda_env();
  info.prefix = "/scratch/u/envs/a $b[c]";
  std::string tcl = module::render(info, module::default_naming(info, ""), module::System::tcl);
  EXPECT_EQ(tcl.rfind("#%Module4.5\n", 0), 0u);  // RHEL 8's Environment Modules
  EXPECT_NE(tcl.find("prepend-path PATH {/scratch/u/envs/a $b[c]/bin}\n"), std::string::npos);
  EXPECT_EQ(tcl.find("\nferry_family "), std::string::npos);  // no family when none is asked for
  info.prefix = "/scratch/u/envs/odd{";
  tcl = module::render(info, module::default_naming(info, ""), module::System::tcl);
  EXPECT_NE(tcl.find("prepend-path PATH /scratch/u/envs/odd\\{/bin\n"), std::string::npos);
}

TEST(Render, ActivationScriptsAreSourcedWithTheVariablesTheyAssignKept) {
  module::EnvInfo info = conda_env();
  info.activate_scripts = {info.prefix + "/etc/conda/activate.d/cuda.sh"};
  info.script_vars = {"CUDA_HOME"};
  module::Naming n = module::default_naming(info, "python");
  std::string lua = module::render(info, n, module::System::lmod);
  EXPECT_NE(lua.find("LmodError(\"torch 2/3.11 needs Lmod 8.6 or newer (source_sh)\")"),
            std::string::npos);
  std::size_t before = lua.find("ferry_before[\"CUDA_HOME\"] = os.getenv(\"CUDA_HOME\")\n");
  std::size_t source =
      lua.find("source_sh(\"bash\", \"'/scratch/u/envs/torch 2/etc/conda/activate.d/cuda.sh'\")\n");
  std::size_t keep = lua.find("ferry_keep(\"CUDA_HOME\", ferry_before[\"CUDA_HOME\"])\n");
  ASSERT_NE(before, std::string::npos);
  ASSERT_NE(source, std::string::npos);
  ASSERT_NE(keep, std::string::npos);
  EXPECT_LT(before, source);
  EXPECT_LT(source, keep);
  std::string tcl = module::render(info, n, module::System::tcl);
  EXPECT_NE(tcl.find("puts stderr {torch 2/3.11: needs Environment Modules 4.6 or newer "
                     "(source-sh)}\n  break\n"),
            std::string::npos);
  EXPECT_LT(tcl.find("ferry_before CUDA_HOME\n"), tcl.find("source-sh bash"));
  EXPECT_LT(tcl.find("source-sh bash"), tcl.find("ferry_after CUDA_HOME\n"));
}
