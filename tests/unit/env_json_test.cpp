// The JSON forms of env's results: the keys, in the order, that ferry pack, unpack, inspect and
// venv --json print (scripts and the cli tests read them), and the names of kinds and actions.
#include <gtest/gtest.h>

#include <vector>

#include "env/env.hpp"
#include "json_keys.hpp"

using namespace ferry;

TEST(EnvJson, KindAndVenvActionNames) {
  EXPECT_EQ(util::name(env::Kind::conda), "conda");
  EXPECT_EQ(util::name(env::Kind::venv), "venv");
  EXPECT_EQ(util::name(env::Kind::prefix), "prefix");
  EXPECT_EQ(util::name(env::VenvAction::created), "created");
  EXPECT_EQ(util::name(env::VenvAction::reused), "reused");
  EXPECT_EQ(util::name(env::VenvAction::replaced), "replaced");
}

TEST(EnvJson, PackResultCallsTheTreeBytesBytesIn) {
  env::PackResult r;
  r.kind = env::Kind::conda;
  r.files = 3;
  r.hardlinks = 1;
  r.bytes = 1000;
  r.bytes_out = 400;
  r.phases = {{"collect", 0.5}, {"files", 2.0}, {"finish", 0.25}};
  nlohmann::ordered_json j = r;
  EXPECT_EQ(json_keys(j),
            (std::vector<std::string>{"output", "prefix", "kind", "format", "python_version",
                                      "files", "directories", "symlinks", "hardlinks", "bytes_in",
                                      "bytes_out", "frames", "text_records", "binary_records",
                                      "seconds", "phases", "warnings"}));
  // One object, the phases in the order they happened.
  EXPECT_EQ(json_keys(j["phases"]), (std::vector<std::string>{"collect", "files", "finish"}));
  EXPECT_EQ(j["phases"]["files"], 2.0);
  EXPECT_EQ(j["kind"], "conda");
  EXPECT_EQ(j["files"], 3);
  EXPECT_EQ(j["hardlinks"], 1);
  EXPECT_EQ(j["bytes_in"], 1000);
  EXPECT_EQ(j["bytes_out"], 400);
}

TEST(EnvJson, UnpackResultAndInspection) {
  env::UnpackResult u;
  format::TreeCounts counts{5, 4, 3, 2, 1};
  u.counts() = counts;
  u.already_present = true;
  nlohmann::ordered_json j = u;
  EXPECT_EQ(json_keys(j), (std::vector<std::string>{
                              "dest", "archive", "format", "kind", "source_prefix",
                              "already_present", "files", "directories", "symlinks", "hardlinks",
                              "bytes", "frames", "relocated_files", "seconds", "warnings"}));
  EXPECT_EQ(j["already_present"], true);
  EXPECT_EQ(j["files"], 5);
  EXPECT_EQ(j["directories"], 4);
  EXPECT_EQ(j["symlinks"], 3);
  EXPECT_EQ(j["hardlinks"], 2);
  EXPECT_EQ(j["bytes"], 1);

  env::Inspection in;
  in.counts() = counts;
  EXPECT_EQ(in.counts(), counts);
  EXPECT_EQ(
      json_keys(nlohmann::ordered_json(in)),
      (std::vector<std::string>{"archive", "format", "archive_bytes", "frames", "has_manifest",
                                "kind", "source_prefix", "python_version", "tool", "files", "bytes",
                                "directories", "symlinks", "hardlinks", "text_records",
                                "binary_records", "placeholders", "warnings"}));
}

TEST(EnvJson, VenvResult) {
  env::VenvResult r;
  r.action = env::VenvAction::reused;
  nlohmann::ordered_json j = r;
  EXPECT_EQ(json_keys(j),
            (std::vector<std::string>{"path", "base", "base_from", "python_version", "action",
                                      "has_pip", "activate", "seconds", "warnings"}));
  EXPECT_EQ(j["action"], "reused");
}
