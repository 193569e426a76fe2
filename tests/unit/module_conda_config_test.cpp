// module's .condarc merge: what `ferry conda-config` writes into a shared installation's settings.
#include <gtest/gtest.h>

#include "module/module.hpp"

using namespace ferry;

namespace {

module::CondaConfig settings() {
  module::CondaConfig c;
  c.threads = 8;
  c.channels = {"conda-forge", "bioconda"};
  c.strict_priority = true;
  c.no_auto_update = true;
  return c;
}

std::string merge(const std::string& text, const module::CondaConfig& c = settings()) {
  return module::merge_condarc(text, c, "/opt/conda/.condarc");
}

std::string refusal(const std::string& text, const module::CondaConfig& c = settings()) {
  try {
    merge(text, c);
  } catch (const Error& e) {
    return e.what();
  }
  return "(accepted)";
}

}  // namespace

TEST(MergeCondarc, FromNothingWritesEachSettingAndCondaDefaultsAfterTheChannels) {
  EXPECT_EQ(merge(""),
            "default_threads: 8\n"
            "channels:\n  - conda-forge\n  - bioconda\n  - defaults\n"
            "channel_priority: strict\n"
            "auto_update_conda: false\n");
}

TEST(MergeCondarc, KeepsCommentsOtherKeysAndTheirOrder) {
  std::string text =
      "# site settings, do not remove\n"
      "ssl_verify: /etc/pki/ca.pem\n"
      "\n"
      "channels:\n"
      "  - defaults\n"
      "  - bioconda\n"
      "proxy_servers:\n"
      "  http: http://proxy:3128\n";
  EXPECT_EQ(merge(text),
            "# site settings, do not remove\n"
            "ssl_verify: /etc/pki/ca.pem\n"
            "\n"
            "channels:\n"
            "  - conda-forge\n"
            "  - bioconda\n"
            "  - defaults\n"
            "proxy_servers:\n"
            "  http: http://proxy:3128\n"
            "default_threads: 8\n"
            "channel_priority: strict\n"
            "auto_update_conda: false\n");
}

TEST(MergeCondarc, MergingTwiceChangesNothingTheSecondTime) {
  std::string once = merge("channels:\n  - defaults\ndefault_threads: 2\n");
  EXPECT_EQ(merge(once), once);
}

TEST(MergeCondarc, AValueAlreadySetKeepsItsBytesEvenWithoutAFinalNewline) {
  module::CondaConfig c;
  c.strict_priority = true;
  EXPECT_EQ(merge("channel_priority: 'STRICT'", c), "channel_priority: 'STRICT'");
  EXPECT_EQ(merge("channel_priority: flexible\n", c), "channel_priority: strict\n");
}

TEST(MergeCondarc, RefusesWhatItCannotEditNamingFileAndLine) {
  EXPECT_EQ(refusal("channels: [defaults]\n"),
            "/opt/conda/.condarc:1: 'channels' is not a '  - item' list; ferry conda-config will "
            "not replace it");
  EXPECT_EQ(refusal("ssl_verify: true\n\tindented: x\n").substr(0, 31),
            "/opt/conda/.condarc:2: a tab; f");
  EXPECT_EQ(refusal("default_threads: 2\ndefault_threads: 3\n").substr(0, 44),
            "/opt/conda/.condarc:2: 'default_threads' twi");
  EXPECT_EQ(refusal("default_threads:\n  - 4\n"),
            "/opt/conda/.condarc:1: 'default_threads' is not a plain value; ferry conda-config "
            "will not replace it");
  EXPECT_NE(refusal("--- \nchannels: []\n"), "(accepted)");
}
