// Byte-exact checks of the relocation rules, with conda's and rattler's test vectors.
#include <gtest/gtest.h>

#include "env/env.hpp"

using namespace std::string_literals;
namespace rel = ferry::env::relocation;

namespace {

std::string binary(const std::string& data, const std::string& from, const std::string& to,
                   rel::BinaryResult expect = rel::BinaryResult::replaced) {
  std::string out;
  EXPECT_EQ(rel::replace_binary(data, from, to, out), expect);
  return out;
}

}  // namespace

TEST(Relocation, TextReplacesEveryOccurrence) {
  std::string out;
  ASSERT_TRUE(rel::replace_text("a=/old/p\nb=/old/p/lib:/old/p\n", "/old/p", "/much/longer/new", out));
  EXPECT_EQ(out, "a=/much/longer/new\nb=/much/longer/new/lib:/much/longer/new\n");
  EXPECT_FALSE(rel::replace_text("nothing here", "/old/p", "/x", out));
}

TEST(Relocation, BinaryShorterPadsAfterTheStringsNul) {
  EXPECT_EQ(binary("xxxaaaaaxyz\0zz"s, "aaaaa", "bbbb"), "xxxbbbbxyz\0\0zz"s);
}

TEST(Relocation, BinaryEqualLength) {
  EXPECT_EQ(binary("aaaaa\0"s, "aaaaa", "bbbbb"), "bbbbb\0"s);
  EXPECT_EQ(binary("aaaaa\0" "1234aaaaacc\0\0"s, "aaaaa", "bbbbb"), "bbbbb\0" "1234bbbbbcc\0\0"s);
}

TEST(Relocation, BinaryLongerIsRefused) {
  binary("xxxaaaaaxyz\0zz"s, "aaaaa", "bbbbbbbb", rel::BinaryResult::too_long);
  binary("aaaacaaaa\0"s, "aaaa", "bbbbb", rel::BinaryResult::too_long);
}

TEST(Relocation, BinarySeveralOccurrencesInOneCString) {
  EXPECT_EQ(binary("aaaacaaaa\0"s, "aaaa", "bbb"), "bbbcbbb\0\0\0"s);
  EXPECT_EQ(binary("fooaafoo\n\0"s, "foo", "fo"), "foaafo\n\0\0\0"s);
  EXPECT_EQ(binary("fooaa\n\0"s, "foo", "bar"), "baraa\n\0"s);
}

TEST(Relocation, BinaryWithoutTerminatingNulIsLeftAlone) {
  binary("abc/old/prefix/lib"s, "/old/prefix", "/new", rel::BinaryResult::unchanged);
  // The first occurrence has a NUL, the last one does not.
  EXPECT_EQ(binary("/old\0/old"s, "/old", "/n"), "/n\0\0\0/old"s);
}

TEST(Relocation, BinaryKeepsLengthAndFollowingData) {
  std::string data = "12345Hello, fabulous world!\0" "6789"s;
  std::string out = binary(data, "fabulous", "cruel");
  EXPECT_EQ(out, "12345Hello, cruel world!\0\0\0\0" "6789"s);
  EXPECT_EQ(out.size(), data.size());
}

TEST(Relocation, BinaryPathListInOneString) {
  std::string data = "beginPATH=/placeholder/etc/share:/placeholder/bin/:\0somemoretext"s;
  std::string out = binary(data, "/placeholder", "/target");
  EXPECT_EQ(out, "beginPATH=/target/etc/share:/target/bin/:\0\0\0\0\0\0\0\0\0\0\0somemoretext"s);
}

TEST(Relocation, ShortShebangIsKept) {
  std::string s = "#!/opt/env/bin/python3.11\nprint(1)\n";
  EXPECT_FALSE(rel::fix_long_shebang(s));
}

TEST(Relocation, LongPythonShebangBecomesShTrampoline) {
  std::string exe = "/" + std::string(140, 'x') + "/bin/python3.11";
  std::string s = "#!" + exe + " -E\nimport sys\n";
  ASSERT_TRUE(rel::fix_long_shebang(s));
  EXPECT_EQ(s, "#!/bin/sh\n'''exec' \"" + exe + "\" -E \"$0\" \"$@\" #'''\nimport sys\n");
}

TEST(Relocation, LongOtherShebangUsesEnv) {
  std::string s = "#!/" + std::string(120, 's') + "/bin/perl -w\nprint 1;\n";
  ASSERT_TRUE(rel::fix_long_shebang(s));
  EXPECT_EQ(s, "#!/usr/bin/env perl -w\nprint 1;\n");
}

TEST(Relocation, EscapedSpaceShebangUsesEnv) {
  std::string s = "#!/she\\ bang/python --and --flags -x\n";
  ASSERT_TRUE(rel::fix_long_shebang(s));
  EXPECT_EQ(s, "#!/usr/bin/env python --and --flags -x\n");
}

TEST(Relocation, ShebangExactly127IsKept128IsNot) {
  auto make = [](std::size_t length) {
    std::string prefix = "#!/";
    std::string tail = "/bin/tool";
    return prefix + std::string(length - prefix.size() - tail.size(), 'p') + tail;
  };
  std::string at = make(127) + "\n";
  EXPECT_FALSE(rel::fix_long_shebang(at));
  std::string over = make(128) + "\n";
  EXPECT_TRUE(rel::fix_long_shebang(over));
  EXPECT_EQ(over, "#!/usr/bin/env tool\n");
}

TEST(Relocation, ShebangOnlyLineWithoutNewline) {
  std::string s = "#!/" + std::string(130, 'q') + "/bin/bash";
  ASSERT_TRUE(rel::fix_long_shebang(s));
  EXPECT_EQ(s, "#!/usr/bin/env bash");
}

TEST(Relocation, NotAShebang) {
  std::string s = "# comment\n";
  EXPECT_FALSE(rel::fix_long_shebang(s));
  std::string env = "#!/usr/bin/env perl\n";
  EXPECT_FALSE(rel::fix_long_shebang(env));
}

TEST(Relocation, ElfSearchPathsOfNonElfIsEmpty) {
  EXPECT_TRUE(rel::elf_search_paths("not an elf file at all, just text").empty());
  std::string truncated = "\x7f" "ELF\x02\x01"s + std::string(10, '\0');
  EXPECT_TRUE(rel::elf_search_paths(truncated).empty());
}
