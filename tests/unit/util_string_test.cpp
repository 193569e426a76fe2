// util's one split, trim, join and number parsers.
#include <gtest/gtest.h>

#include "util/util.hpp"

using namespace ferry;
using Views = std::vector<std::string_view>;

TEST(Split, KeepsEmptyFieldsAndNeedsNoTrailingSeparator) {
  EXPECT_EQ(util::split("a,,b", ','), (Views{"a", "", "b"}));
  EXPECT_EQ(util::split("", ','), (Views{""}));
  EXPECT_EQ(util::split("a,", ','), (Views{"a", ""}));
  EXPECT_EQ(util::split("no separator", ','), (Views{"no separator"}));
}

TEST(SplitLines, DropsOnlyTheEmptyFieldOfAFinalNewline) {
  EXPECT_EQ(util::split_lines("x\ny\n"), (Views{"x", "y"}));
  EXPECT_EQ(util::split_lines("x\n\ny"), (Views{"x", "", "y"}));
  EXPECT_EQ(util::split_lines(""), Views{});
  EXPECT_EQ(util::split_lines("\n"), (Views{""}));
}

TEST(Trim, RemovesBlanksAtBothEndsOnly) {
  EXPECT_EQ(util::trim(" \t a b \r\n"), "a b");
  EXPECT_EQ(util::trim("   "), "");
  EXPECT_EQ(util::trim("x"), "x");
}

TEST(KeyValueLines, SplitsAtTheFirstSeparatorAndTrimsBothSides) {
  std::map<std::string, std::string> values = util::key_value_lines(
      "Model: \t\t NVIDIA A100\nBus Location: 0000:07:00.0\r\nno separator\n\nModel: H100", ':');
  EXPECT_EQ(values.size(), 2u);
  EXPECT_EQ(values["Model"], "H100");  // a later key wins
  EXPECT_EQ(values["Bus Location"], "0000:07:00.0");
  EXPECT_TRUE(util::key_value_lines("", '=').empty());
}

TEST(Join, PutsTheSeparatorBetweenParts) {
  EXPECT_EQ(util::join({"srun", "-n", "4"}, " "), "srun -n 4");
  EXPECT_EQ(util::join({}, ","), "");
  EXPECT_EQ(util::join({"one"}, ","), "one");
}

TEST(ParseUnsigned, TakesWholeNumbersInRangeAndNamesWhatWasWrong) {
  EXPECT_EQ(util::parse_unsigned("8", 1, 64, "--jobs"), 8u);
  EXPECT_EQ(util::parse_unsigned("18446744073709551615", 0, UINT64_MAX, "n"), UINT64_MAX);
  for (const char* bad :
       {"0", "65", "", " 8", "8 ", "+8", "-1", "0x8", "8.0", "18446744073709551616"}) {
    try {
      util::parse_unsigned(bad, 1, 64, "--jobs");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), Error::Kind::usage);
      EXPECT_EQ(std::string(e.what()),
                "--jobs: '" + std::string(bad) + "' is not a whole number from 1 to 64");
    }
  }
}

TEST(ParseHex64, TakesUpToSixteenHexDigits) {
  EXPECT_EQ(util::parse_hex64("ff"), 255u);
  EXPECT_EQ(util::parse_hex64("FFFFFFFFFFFFFFFF"), UINT64_MAX);
  EXPECT_EQ(util::parse_hex64("0123456789abcdef"), 0x0123456789abcdefull);
  for (const char* bad : {"", "0x1", "g", "1 ", "10000000000000000", "-1"})
    EXPECT_EQ(util::parse_hex64(bad), std::nullopt) << "'" << bad << "'";
}

TEST(AppendJsonString, QuotesAndEscapesOnlyWhatJsonNeeds) {
  std::string out = "[";
  ferry::util::append_json_string(out, "plain caf\xc3\xa9");
  out += ",";
  // The last byte is a NUL, which JSON needs escaped too.
  ferry::util::append_json_string(out, std::string("a\"b\\c\nd\te\x01\x1f\x7f", 13));
  EXPECT_EQ(out, "[\"plain caf\xc3\xa9\",\"a\\\"b\\\\c\\nd\\te\\u0001\\u001f\x7f\\u0000\"");
}
