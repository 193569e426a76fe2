// The one reader of pyvenv.cfg and of an environment's Python version (src/env/python.cpp), which
// pack, ferry venv and ferry module share.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "env/env.hpp"
#include "temp_dir.hpp"

namespace env = ferry::env;
namespace fs = std::filesystem;

TEST(PyvenvCfg, KeysAndValuesWithoutTheirBlanks) {
  env::PyvenvCfg cfg = env::parse_pyvenv_cfg(
      "home = /opt/py/bin\r\n"
      "include-system-site-packages = true\n"
      "\tversion=3.11.7  \n"
      "executable = /opt/py/bin/python3.11\n"
      "command = /opt/py/bin/python3 -m venv --prompt a=b /w/v\n");
  EXPECT_EQ(cfg["home"], "/opt/py/bin");
  EXPECT_EQ(cfg["include-system-site-packages"], "true");
  EXPECT_EQ(cfg["version"], "3.11.7");
  EXPECT_EQ(cfg["command"], "/opt/py/bin/python3 -m venv --prompt a=b /w/v");  // the first '='
  EXPECT_EQ(cfg.size(), 5u);
}

TEST(PyvenvCfg, LinesWithoutEqualsAreSkippedAndALaterKeyWins) {
  env::PyvenvCfg cfg = env::parse_pyvenv_cfg("# a comment\n\nhome = /a\nhome = /b\nversion =\n");
  EXPECT_EQ(cfg["home"], "/b");
  EXPECT_EQ(cfg.count("version"), 1u);
  EXPECT_EQ(cfg["version"], "");
  EXPECT_EQ(cfg.size(), 2u);
  EXPECT_TRUE(env::parse_pyvenv_cfg("").empty());
  EXPECT_EQ(env::parse_pyvenv_cfg("home=/x").at("home"), "/x");  // no final newline
}

TEST(PyvenvCfg, VersionIsVenvsElseVirtualenvsVersionInfo) {
  EXPECT_EQ(env::pyvenv_python_version(env::parse_pyvenv_cfg("version = 3.12.1\n")), "3.12.1");
  EXPECT_EQ(env::pyvenv_python_version(env::parse_pyvenv_cfg("version_info = 3.10.4.final.0\n")),
            "3.10.4.final.0");
  EXPECT_EQ(env::pyvenv_python_version(
                env::parse_pyvenv_cfg("version_info = 3.10.4.final.0\nversion = 3.10.4\n")),
            "3.10.4");
  EXPECT_EQ(env::pyvenv_python_version(env::parse_pyvenv_cfg("home = /x\n")), "");
}

TEST(PythonVersion, MajorMinor) {
  EXPECT_EQ(env::python_major_minor("3.11.7"), "3.11");
  EXPECT_EQ(env::python_major_minor("3.10.4.final.0"), "3.10");
  EXPECT_EQ(env::python_major_minor("3.13"), "3.13");
  EXPECT_EQ(env::python_major_minor("3"), "3");
  EXPECT_EQ(env::python_major_minor(""), "");
}

TEST(PythonVersion, OfATreeIsItsLibPythonDirectory) {
  TempDir t;
  EXPECT_EQ(env::python_version_of_tree(t.path.string()), "");  // no lib/
  fs::create_directories(t.path / "lib/python3.11/site-packages");
  fs::create_directories(t.path / "lib/pkgconfig");
  std::ofstream(t.path / "lib/python3.12") << "a file, not a Python's library\n";
  fs::create_directories(t.path / "lib/python3.11t-extra");
  EXPECT_EQ(env::python_version_of_tree(t.path.string()), "3.11");
}

TEST(PyvenvCfg, ReadFromThePrefix) {
  TempDir t;
  std::ofstream(t.path / "pyvenv.cfg") << "home = /opt/py/bin\nversion = 3.11.7\n";
  env::PyvenvCfg cfg = env::read_pyvenv_cfg(t.path.string());
  EXPECT_EQ(cfg["home"], "/opt/py/bin");
  EXPECT_EQ(env::pyvenv_python_version(cfg), "3.11.7");
  fs::remove(t.path / "pyvenv.cfg");
  EXPECT_THROW(env::read_pyvenv_cfg(t.path.string()), ferry::Error);
}
