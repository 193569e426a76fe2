// Byte-exact checks of the relocation rules, with conda's and rattler's test vectors.
#include <gtest/gtest.h>

#include <random>

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
  ASSERT_TRUE(
      rel::replace_text("a=/old/p\nb=/old/p/lib:/old/p\n", "/old/p", "/much/longer/new", out));
  EXPECT_EQ(out, "a=/much/longer/new\nb=/much/longer/new/lib:/much/longer/new\n");
  EXPECT_FALSE(rel::replace_text("nothing here", "/old/p", "/x", out));
}

TEST(Relocation, BinaryShorterPadsAfterTheStringsNul) {
  EXPECT_EQ(binary("xxxaaaaaxyz\0zz"s, "aaaaa", "bbbb"), "xxxbbbbxyz\0\0zz"s);
}

TEST(Relocation, BinaryEqualLength) {
  EXPECT_EQ(binary("aaaaa\0"s, "aaaaa", "bbbbb"), "bbbbb\0"s);
  EXPECT_EQ(binary("aaaaa\0"
                   "1234aaaaacc\0\0"s,
                   "aaaaa", "bbbbb"),
            "bbbbb\0"
            "1234bbbbbcc\0\0"s);
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
  std::string data =
      "12345Hello, fabulous world!\0"
      "6789"s;
  std::string out = binary(data, "fabulous", "cruel");
  EXPECT_EQ(out,
            "12345Hello, cruel world!\0\0\0\0"
            "6789"s);
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
  std::string truncated =
      "\x7f"
      "ELF\x02\x01"s +
      std::string(10, '\0');
  EXPECT_TRUE(rel::elf_search_paths(truncated).empty());
}

// The streaming rules must give byte for byte what the whole-buffer rules give, wherever the
// pieces are cut: random data dense in the prefix, NULs and newlines, cut at random points.
namespace {

std::string streamed(rel::StreamReplacer::Rule rule, std::string_view data, const std::string& from,
                     const std::string& to, std::mt19937& rng, bool* changed = nullptr) {
  rel::StreamReplacer s(rule, from, to, "test");
  std::string out;
  std::size_t pos = 0;
  while (pos < data.size()) {
    std::size_t n = std::uniform_int_distribution<std::size_t>(0, 40)(rng);
    s.feed(data.substr(pos, n), out);
    pos += std::min(n, data.size() - pos);
  }
  s.finish(out);
  if (changed) *changed = s.changed();
  return out;
}

std::string random_blob(std::mt19937& rng, const std::string& prefix, bool with_nuls) {
  std::string data;
  std::size_t parts = std::uniform_int_distribution<std::size_t>(0, 30)(rng);
  for (std::size_t i = 0; i < parts; ++i) {
    switch (std::uniform_int_distribution<int>(0, 4)(rng)) {
      case 0: data += prefix; break;
      case 1:
        data +=
            prefix.substr(0, std::uniform_int_distribution<std::size_t>(1, prefix.size() - 1)(rng));
        break;
      case 2: data += with_nuls ? '\0' : '\n'; break;
      case 3: data += "/lib:"; break;
      default: data += static_cast<char>(std::uniform_int_distribution<int>('a', 'z')(rng));
    }
  }
  return data;
}

}  // namespace

TEST(StreamReplacer, BinaryMatchesTheWholeBufferRule) {
  std::mt19937 rng(20261201);
  const std::string from = "/opt/placeholder/env";
  for (const std::string to :
       {"/short", "/opt/placeholder/ENV", "/a/much/longer/destination/path"}) {
    for (int trial = 0; trial < 3000; ++trial) {
      std::string data = random_blob(rng, from, true);
      std::string whole;
      rel::BinaryResult result = rel::replace_binary(data, from, to, whole);
      bool changed = false;
      std::string out = streamed(rel::StreamReplacer::Rule::binary, data, from, to, rng, &changed);
      if (result == rel::BinaryResult::replaced) {
        ASSERT_EQ(out, whole) << "trial " << trial;
        EXPECT_TRUE(changed);
      } else {
        ASSERT_EQ(out, data) << "trial " << trial;  // unchanged, or too long: left as it was
      }
    }
  }
}

TEST(StreamReplacer, TextMatchesTheWholeBufferRuleShebangIncluded) {
  std::mt19937 rng(7);
  const std::string from = "/opt/placeholder/env";
  const std::string to =
      "/a/destination/that/makes/the/shebang/line/longer/than/linux/allows/" + std::string(60, 'x');
  for (int trial = 0; trial < 3000; ++trial) {
    std::string data = (trial % 2 ? "#!" + from + "/bin/python3.11\n" : std::string()) +
                       random_blob(rng, from, false);
    std::string whole = data;
    if (rel::replace_text(data, from, to, whole)) rel::fix_long_shebang(whole);
    ASSERT_EQ(streamed(rel::StreamReplacer::Rule::text, data, from, to, rng), whole)
        << "trial " << trial;
  }
}

TEST(StreamReplacer, AnOpenStringPastTheBoundIsAnErrorNotASkip) {
  rel::StreamReplacer s(rel::StreamReplacer::Rule::binary, "/opt/p", "/x", "member 'big'");
  std::string out;
  s.feed("/opt/p", out);
  std::string filler(1 << 20, 'a');
  EXPECT_THROW(
      {
        for (std::size_t i = 0; i <= rel::StreamReplacer::k_max_run >> 20; ++i) s.feed(filler, out);
      },
      ferry::Error);
}
