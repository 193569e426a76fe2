#include <gtest/gtest.h>

#include "env/conda_unpack_records.hpp"

using ferry::env::parse_conda_unpack_records;
using ferry::format::RelocMode;

TEST(CondaUnpackRecords, ParsesReprTuples) {
  std::string script = R"(#!/usr/bin/env python
from conda_unpack_progress import progressbar
_prefix_records = [
('bin/f2py', '/opt/anaconda1anaconda2anaconda3', 'text'),
('lib/libz.so.1', "/opt/it's/placeholder", 'binary'),
('share/caf\xe9\\x.txt', '/p\u00e9', 'text')
]
if __name__ == '__main__':
    main()
)";
  auto records = parse_conda_unpack_records(script, "test");
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].path, "bin/f2py");
  EXPECT_EQ(records[0].placeholder, "/opt/anaconda1anaconda2anaconda3");
  EXPECT_EQ(records[0].mode, RelocMode::text);
  EXPECT_EQ(records[1].placeholder, "/opt/it's/placeholder");
  EXPECT_EQ(records[1].mode, RelocMode::binary);
  EXPECT_EQ(records[2].path, "share/caf\xe9\\x.txt");
  EXPECT_EQ(records[2].placeholder, "/p\xc3\xa9");
}

TEST(CondaUnpackRecords, EmptyList) {
  EXPECT_TRUE(parse_conda_unpack_records("_prefix_records = [\n]\n", "t").empty());
}

TEST(CondaUnpackRecords, MalformedIsAnError) {
  EXPECT_THROW(parse_conda_unpack_records("no records here", "t"), ferry::Error);
  EXPECT_THROW(parse_conda_unpack_records("_prefix_records = [('a', 'b', 'weird')]", "t"), ferry::Error);
  EXPECT_THROW(parse_conda_unpack_records("_prefix_records = [('a', 'b'", "t"), ferry::Error);
}
