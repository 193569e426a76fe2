// The command lines ferry stage starts on the nodes: what encode_node_options and
// encode_mpi_options write, their decoders read back as it was, whatever the paths hold.
#include <gtest/gtest.h>

#include "stage/stage.hpp"

using namespace ferry;
using namespace ferry::stage;

namespace {

void expect_same(const NodeOptions& a, const NodeOptions& b) {
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.archive, b.archive);
  EXPECT_EQ(a.dir, b.dir);
  EXPECT_EQ(a.jobs, b.jobs);
  EXPECT_EQ(a.remove_archive, b.remove_archive);
  EXPECT_EQ(a.image, b.image);
  EXPECT_EQ(a.identity, b.identity);
}

void expect_same(const MpiOptions& a, const MpiOptions& b) {
  EXPECT_EQ(a.archive, b.archive);
  EXPECT_EQ(a.dir, b.dir);
  EXPECT_EQ(a.jobs, b.jobs);
  EXPECT_EQ(a.progress, b.progress);
}

std::string error_of(const std::vector<std::string>& words) {
  try {
    decode_node_options(words);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), Error::Kind::usage);
    return e.what();
  }
  return "no error";
}

// Paths as a site may have them.
const char* const k_odd_paths[] = {
    "/mnt/bb/a user/env", "/tmp/it's \"quoted\"", "", "/données/環境", "--to", "-j"};

}  // namespace

TEST(NodeOptions, RoundTripEachStep) {
  for (const char* archive : k_odd_paths)
    for (const char* dir : k_odd_paths) {
      NodeOptions extract;
      extract.archive = archive;
      extract.dir = dir;
      extract.jobs = 12;
      extract.remove_archive = true;
      expect_same(decode_node_options(encode_node_options(extract)), extract);

      NodeOptions prepare;
      prepare.step = NodeOptions::Step::prepare;
      prepare.archive = archive;
      prepare.dir = dir;
      prepare.identity = 0xfedcba9876543210u;
      expect_same(decode_node_options(encode_node_options(prepare)), prepare);

      NodeOptions image = extract;  // an image's extract step carries its hash
      image.image = true;
      image.identity = 0x0123456789abcdefu;
      expect_same(decode_node_options(encode_node_options(image)), image);
      prepare.image = true;
      expect_same(decode_node_options(encode_node_options(prepare)), prepare);

      NodeOptions sweep;
      sweep.step = NodeOptions::Step::sweep;
      sweep.archive = archive;
      sweep.dir = dir;
      expect_same(decode_node_options(encode_node_options(sweep)), sweep);
    }
}

TEST(NodeOptions, DefaultsAreLeftOut) {
  NodeOptions o;
  o.archive = "/a";
  o.dir = "/d";
  EXPECT_EQ(encode_node_options(o), (std::vector<std::string>{"--archive", "/a", "--to", "/d"}));
  o.step = NodeOptions::Step::prepare;
  EXPECT_EQ(encode_node_options(o),
            (std::vector<std::string>{"--prepare", "--archive", "/a", "--to", "/d", "--identity",
                                      "0000000000000000"}));
}

TEST(NodeOptions, MalformedWordsAreUsageErrors) {
  EXPECT_EQ(error_of({"--to", "/d"}), "--archive is required");
  EXPECT_EQ(error_of({"--archive", "/a"}), "--to is required");
  EXPECT_EQ(error_of({"--archive", "/a", "--to"}), "--to: needs a value");
  EXPECT_EQ(error_of({"--archive", "/a", "--to", "/d", "-j", "many"}),
            "-j: 'many' is not a whole number from 0 to 4294967295");
  EXPECT_EQ(error_of({"--archive", "/a", "--to", "/d", "--prepare", "--identity", "xyz"}),
            "--identity xyz: expected an archive identity (hex)");
  EXPECT_EQ(error_of({"--archive", "/a", "--to", "/d", "--help"}),
            "--help: not an option of ferry stage-node");
}

TEST(MpiOptions, RoundTrip) {
  for (const char* archive : k_odd_paths)
    for (const char* dir : k_odd_paths)
      for (unsigned jobs : {0u, 1u, 4096u})
        for (bool progress : {false, true}) {
          MpiOptions o{archive, dir, jobs, progress};
          auto back = decode_mpi_options(encode_mpi_options(o));
          ASSERT_TRUE(back);
          expect_same(*back, o);
        }
}

TEST(MpiOptions, TheGrammarFerryMpiPrintsInItsUsage) {
  EXPECT_EQ(encode_mpi_options({"/a.tar.zst", "/d", 8, true}),
            (std::vector<std::string>{"stage", "/a.tar.zst", "/d", "-j", "8", "--progress"}));
  EXPECT_FALSE(decode_mpi_options({"stage", "/a"}));
  EXPECT_FALSE(decode_mpi_options({"unpack", "/a", "/d"}));
  EXPECT_FALSE(decode_mpi_options({"stage", "/a", "/d", "-j"}));
  EXPECT_FALSE(decode_mpi_options({"stage", "/a", "/d", "-j", "4097"}));
  EXPECT_FALSE(decode_mpi_options({"stage", "/a", "/d", "--fast"}));
}
