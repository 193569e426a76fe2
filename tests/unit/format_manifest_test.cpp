// The manifest (version 2): every member kind round-trips, and malformed or old ones are refused.
#include <gtest/gtest.h>

#include "format/format.hpp"

namespace fmt_ = ferry::format;

TEST(Manifest, EveryMemberKindRoundTripsAndCountsInTheIdentity) {
  fmt_::Manifest m;
  m.kind = "prefix";
  m.source_prefix = "/opt/env";
  m.placeholders = {"/opt/env"};
  m.files.push_back({"bin/tool", 12, 0x1234, 0, fmt_::RelocMode::text, 0755});
  m.dir_entries.push_back({"share/empty", 0700});
  m.symlink_entries.push_back({"bin/python", "python3.11"});
  m.hardlink_entries.push_back({"bin/tool2", "bin/tool"});
  fmt_::Manifest back = fmt_::Manifest::parse(m.to_json(), "test");
  EXPECT_EQ(back.to_json(), m.to_json());
  EXPECT_EQ(back.files.at(0).perm, 0755u);
  EXPECT_EQ(back.dir_entries.at(0).perm, 0700u);
  EXPECT_EQ(back.symlink_entries.at(0).target, "python3.11");
  fmt_::TreeCounts counts = back.counts();
  EXPECT_EQ(counts.directories + counts.symlinks + counts.hardlinks, 3u);
  EXPECT_EQ(counts.files, 1u);  // the hardlink is not a second file
  EXPECT_EQ(counts.bytes, 12u);
  // A symlink target or a mode alone changes the archive's identity.
  fmt_::Manifest other = m;
  other.symlink_entries[0].target = "/usr/bin/python3";
  EXPECT_NE(other.identity(), m.identity());
  other = m;
  other.files[0].perm = 0644;
  EXPECT_NE(other.identity(), m.identity());
}

TEST(Manifest, NumbersThatAreNotIntegersInRangeAreRefused) {
  // Found by fuzzing: nlohmann's conversion of such values is undefined behaviour.
  for (
      const char* text :
      {R"({"ferry_manifest": 2111111055555.555})", R"({"ferry_manifest": -1e300})",
       R"({"ferry_manifest":2,"kind":"prefix","source_prefix":"/","placeholders":[],"directories":[],"symlinks":[],"hardlinks":[],"files":[["a",-5,"0",-1,"none",420]]})",
       R"({"ferry_manifest":2,"kind":"prefix","source_prefix":"/","placeholders":[],"directories":[],"symlinks":[],"hardlinks":[],"files":[["a",1,"0",4294967296,"none",420]]})"})
    EXPECT_THROW(fmt_::Manifest::parse(text, "test"), ferry::Error) << text;
}

TEST(Manifest, VersionOneIsRefusedAsUnverifiable) {
  try {
    fmt_::Manifest::parse(
        R"({"ferry_manifest":1,"kind":"prefix","source_prefix":"/","placeholders":[],"files":[]})",
        "old.tar.zst");
    FAIL() << "accepted";
  } catch (const ferry::Error& e) {
    EXPECT_NE(std::string(e.what()).find("pack it again"), std::string::npos) << e.what();
  }
}

TEST(Manifest, NamesWithQuotesBackslashesAndControlBytesRoundTrip) {
  fmt_::Manifest m;
  m.kind = "prefix";
  m.source_prefix = "/opt/\"env\"";
  m.placeholders = {"/opt/\"env\""};
  m.warnings = {"a\tb\\c\nd"};
  // Every byte below 0x20, a quote, a backslash, DEL and multi-byte UTF-8, in one name.
  std::string odd;
  for (int c = 1; c < 0x20; ++c) odd += static_cast<char>(c);
  odd += "\"\\\x7f caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d";
  m.files.push_back({"share/" + odd, 3, ~0ull, -1, fmt_::RelocMode::none, 0644});
  m.symlink_entries.push_back({"lib/" + odd, "../share/" + odd});
  fmt_::Manifest back = fmt_::Manifest::parse(m.to_json(), "test");
  EXPECT_EQ(back.source_prefix, m.source_prefix);
  EXPECT_EQ(back.warnings, m.warnings);
  EXPECT_EQ(back.files.at(0).path, "share/" + odd);
  EXPECT_EQ(back.files.at(0).xxh3, ~0ull);
  EXPECT_EQ(back.files.at(0).placeholder, -1);
  EXPECT_EQ(back.symlink_entries.at(0).target, "../share/" + odd);
  EXPECT_EQ(back.to_json(), m.to_json());
}

TEST(Manifest, ANameThatIsNotUtf8IsRefusedNamingIt) {
  fmt_::Manifest m;
  m.kind = "prefix";
  m.source_prefix = "/opt/env";
  m.files.push_back({"share/caf\xe9", 3, 1, -1, fmt_::RelocMode::none, 0644});
  try {
    (void)m.to_json();
    FAIL() << "accepted";
  } catch (const ferry::Error& e) {
    EXPECT_NE(std::string(e.what()).find("share/caf\\xe9"), std::string::npos) << e.what();
  }
}
