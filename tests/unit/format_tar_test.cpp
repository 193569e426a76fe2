// The tar encoder and the incremental parser agree, whatever the chunking.
#include <gtest/gtest.h>

#include <random>

#include "format/format.hpp"

using namespace ferry::format;

namespace {

std::vector<Entry> sample_entries() {
  std::vector<Entry> entries;
  Entry d{"pkg", EntryType::directory, 0755, 1700000000, 0, "", 0};
  entries.push_back(d);
  for (int i = 0; i < 20; ++i) {
    Entry f{
        "pkg/file" + std::to_string(i) + ".py", EntryType::file, 0644, 1700000000 + i, 0, "", 0};
    entries.push_back(f);
  }
  Entry longname{"pkg/" + std::string(180, 'n') + "/deep/" + std::string(120, 'm') + ".txt",
                 EntryType::file,
                 0600,
                 1600000000,
                 0,
                 "",
                 0};
  entries.push_back(longname);
  entries.push_back(
      {"pkg/link", EntryType::symlink, 0777, 1700000000, 0, "../" + std::string(150, 't'), 0});
  entries.push_back({"pkg/hard", EntryType::hardlink, 0644, 1700000000, 0, "pkg/file1.py", 0});
  entries.push_back({"pkg/empty", EntryType::file, 0755, 1700000000, 0, "", 0});
  return entries;
}

std::string data_for(const Entry& e) {
  if (e.type != EntryType::file || e.path == "pkg/empty") return {};
  return std::string(e.path.size() * 37 + 1, static_cast<char>('a' + e.path.size() % 26));
}

std::vector<Member> parse_in_chunks(const std::string& stream, std::size_t chunk) {
  TarParser parser("test");
  std::vector<Member> out;
  for (std::size_t pos = 0; pos < stream.size(); pos += chunk)
    parser.feed(std::make_shared<const std::string>(stream.substr(pos, chunk)), out);
  parser.finish();
  return out;
}

}  // namespace

TEST(Tar, RoundTripWhateverTheChunking) {
  TarEncoder enc;
  std::string stream;
  auto entries = sample_entries();
  for (const Entry& e : entries) enc.add(e, data_for(e), stream);
  enc.finish(stream);
  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{511}, std::size_t{512},
                            std::size_t{513}, std::size_t{4096}, stream.size()}) {
    auto members = parse_in_chunks(stream, chunk);
    ASSERT_EQ(members.size(), entries.size()) << "chunk " << chunk;
    for (std::size_t i = 0; i < entries.size(); ++i) {
      EXPECT_EQ(normalize_member_path(members[i].entry.path, "t"),
                entries[i].path);  // dirs end in /
      EXPECT_EQ(members[i].entry.type, entries[i].type);
      EXPECT_EQ(members[i].entry.mode, entries[i].mode);
      EXPECT_EQ(members[i].entry.mtime_sec, entries[i].mtime_sec);
      EXPECT_EQ(members[i].entry.link, entries[i].link);
      EXPECT_EQ(std::string(members[i].data), data_for(entries[i])) << entries[i].path;
    }
  }
}

TEST(Tar, TruncatedStreamIsAnError) {
  TarEncoder enc;
  std::string stream;
  Entry f{"a.txt", EntryType::file, 0644, 1, 0, "", 0};
  enc.add(f, std::string(3000, 'x'), stream);
  enc.finish(stream);
  TarParser parser("t.tar");
  std::vector<Member> out;
  parser.feed(std::make_shared<const std::string>(stream.substr(0, 1500)), out);
  EXPECT_THROW(parser.finish(), ferry::Error);
}

TEST(Tar, BadChecksumIsAnError) {
  TarEncoder enc;
  std::string stream;
  Entry f{"a.txt", EntryType::file, 0644, 1, 0, "", 0};
  enc.add(f, "hello", stream);
  stream[10] ^= 0x55;
  TarParser parser("t.tar");
  std::vector<Member> out;
  EXPECT_THROW(parser.feed(std::make_shared<const std::string>(stream), out), ferry::Error);
}

TEST(Tar, RandomBytesNeverCrash) {
  std::mt19937 rng(42);
  for (int round = 0; round < 200; ++round) {
    std::string junk(512 * (1 + rng() % 8), '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    TarParser parser("junk");
    std::vector<Member> out;
    try {
      parser.feed(std::make_shared<const std::string>(junk), out);
      parser.finish();
    } catch (const ferry::Error&) {
    }
  }
}

TEST(MemberPath, Normalises) {
  EXPECT_EQ(normalize_member_path("./a//b/./c/", "t"), "a/b/c");
  EXPECT_EQ(normalize_member_path("./", "t"), "");
  EXPECT_THROW(normalize_member_path("/etc/passwd", "t"), ferry::Error);
  EXPECT_THROW(normalize_member_path("a/../../b", "t"), ferry::Error);
  EXPECT_THROW(normalize_member_path("..", "t"), ferry::Error);
  EXPECT_THROW(normalize_member_path("", "t"), ferry::Error);
  // Names already normal are taken whole; one odd part anywhere takes the careful way.
  EXPECT_EQ(normalize_member_path("lib/python3.11/site.py", "t"), "lib/python3.11/site.py");
  EXPECT_EQ(normalize_member_path(".hidden/..dots/...", "t"), ".hidden/..dots/...");
  EXPECT_EQ(normalize_member_path("a/b/.", "t"), "a/b");
  EXPECT_EQ(normalize_member_path("a/b/", "t"), "a/b");
  EXPECT_THROW(normalize_member_path("a/b/..", "t"), ferry::Error);
  EXPECT_THROW(normalize_member_path("//etc", "t"), ferry::Error);
}
