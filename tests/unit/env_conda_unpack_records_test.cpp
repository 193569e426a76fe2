#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "env/conda_unpack_records.hpp"
#include "util/util.hpp"

using ferry::env::parse_conda_unpack_records;
using ferry::format::RelocMode;

namespace {

std::string hex(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

std::string script_of(const std::string& records) {
  return "#!/usr/bin/env python\n# Import progress bar to display unpack progress\n"
         "from conda_unpack_progress import progressbar\n\n_prefix_records = [\n" +
         records + "\n]\n\nif __name__ == '__main__':\n    import os\n";
}

}  // namespace

// Each line is what Python 3.11's repr() wrote for a (path, placeholder, mode) tuple, as conda-pack
// writes its records, with os.fsencode(path) and placeholder.encode() as hex (generated once with
// /usr/bin/python3). \xNN is U+00NN (UTF-8 on disk), \udcNN the raw byte of a non-UTF-8 name.
TEST(CondaUnpackRecords, DecodesWhatPythonReprWrote) {
  struct Vector {
    const char* repr;
    const char* path_hex;
    const char* placeholder_hex;
  };
  const Vector vectors[] = {
      {R"py(('lib/café.txt', '/opt/anaconda1anaconda2anaconda3', 'text'))py",
       "6c69622f636166c3a92e747874",
       "2f6f70742f616e61636f6e646131616e61636f6e646132616e61636f6e646133"},
      {R"py(('share/no\xa0break', '/home/jürgen/it\'s "env"', 'binary'))py",
       "73686172652f6e6fc2a0627265616b", "2f686f6d652f6ac3bc7267656e2f697427732022656e7622"},
      {R"py(('share/nel\x85line', '/p\xa0q', 'text'))py", "73686172652f6e656cc2856c696e65",
       "2f70c2a071"},
      {R"py(('share/ls\u2028sep', '/opt/anaconda1anaconda2anaconda3', 'binary'))py",
       "73686172652f6c73e280a8736570",
       "2f6f70742f616e61636f6e646131616e61636f6e646132616e61636f6e646133"},
      // (a combining accent after a plain e: written as escapes, so no editor can compose them)
      {"('share/e\xcc\x81"
       "combining', '/home/j\xc3\xbcrgen/it\\'s \"env\"', 'text')",
       "73686172652f65cc81636f6d62696e696e67", "2f686f6d652f6ac3bc7267656e2f697427732022656e7622"},
      {R"py(('share/emoji😀', '/p\xa0q', 'binary'))py", "73686172652f656d6f6a69f09f9880",
       "2f70c2a071"},
      {R"py(('share/raw\udcff\udc80byte', '/opt/anaconda1anaconda2anaconda3', 'text'))py",
       "73686172652f726177ff8062797465",
       "2f6f70742f616e61636f6e646131616e61636f6e646132616e61636f6e646133"},
      {R"py(("share/it's", '/home/jürgen/it\'s "env"', 'binary'))py", "73686172652f69742773",
       "2f686f6d652f6ac3bc7267656e2f697427732022656e7622"},
      {R"py(('share/say "hi"', '/p\xa0q', 'text'))py", "73686172652f7361792022686922",
       "2f70c2a071"},
      {R"py(('share/both \'"', '/opt/anaconda1anaconda2anaconda3', 'binary'))py",
       "73686172652f626f7468202722",
       "2f6f70742f616e61636f6e646131616e61636f6e646132616e61636f6e646133"},
      {R"py(('share/back\\slash\\x41', '/home/jürgen/it\'s "env"', 'text'))py",
       "73686172652f6261636b5c736c6173685c783431",
       "2f686f6d652f6ac3bc7267656e2f697427732022656e7622"},
      {R"py(('share/with space', '/p\xa0q', 'binary'))py", "73686172652f77697468207370616365",
       "2f70c2a071"},
      {R"py(('share/tab\tnl\ncr\r', '/opt/anaconda1anaconda2anaconda3', 'text'))py",
       "73686172652f746162096e6c0a63720d",
       "2f6f70742f616e61636f6e646131616e61636f6e646132616e61636f6e646133"},
      {R"py(('share/ctl\x01\x1f\x7f', '/home/jürgen/it\'s "env"', 'binary'))py",
       "73686172652f63746c011f7f", "2f686f6d652f6ac3bc7267656e2f697427732022656e7622"},
      {R"py(('share/zwsp\u200b', '/p\xa0q', 'text'))py", "73686172652f7a777370e2808b",
       "2f70c2a071"},
      {R"py(('share/pua\ue000', '/opt/anaconda1anaconda2anaconda3', 'binary'))py",
       "73686172652f707561ee8080",
       "2f6f70742f616e61636f6e646131616e61636f6e646132616e61636f6e646133"},
      {R"py(('share/unassigned\u0378', '/home/jürgen/it\'s "env"', 'text'))py",
       "73686172652f756e61737369676e6564cdb8", "2f686f6d652f6ac3bc7267656e2f697427732022656e7622"},
      {R"py(('share/tag\U000e0001', '/p\xa0q', 'binary'))py", "73686172652f746167f3a08081",
       "2f70c2a071"},
      {R"py(('share/max\U0010ffff', '/opt/anaconda1anaconda2anaconda3', 'text'))py",
       "73686172652f6d6178f48fbfbf",
       "2f6f70742f616e61636f6e646131616e61636f6e646132616e61636f6e646133"},
      {R"py(('share/soft\xadhyphen', '/home/jürgen/it\'s "env"', 'binary'))py",
       "73686172652f736f6674c2ad68797068656e", "2f686f6d652f6ac3bc7267656e2f697427732022656e7622"},
      {R"py(('share/latinÿ', '/p\xa0q', 'text'))py", "73686172652f6c6174696ec3bf", "2f70c2a071"},
      {R"py(('share/cjk中', '/opt/anaconda1anaconda2anaconda3', 'binary'))py",
       "73686172652f636a6be4b8ad",
       "2f6f70742f616e61636f6e646131616e61636f6e646132616e61636f6e646133"},
      {R"py(('share/bom\ufeff', '/home/jürgen/it\'s "env"', 'text'))py", "73686172652f626f6defbbbf",
       "2f686f6d652f6ac3bc7267656e2f697427732022656e7622"},
      {R"py(('share/c1\x9f', '/p\xa0q', 'binary'))py", "73686172652f6331c29f", "2f70c2a071"},
  };
  std::string lines;
  for (const auto& v : vectors) lines += (lines.empty() ? "" : ",\n") + std::string(v.repr);
  auto records = parse_conda_unpack_records(script_of(lines), "env.tar.gz");
  EXPECT_EQ(records.archive, "env.tar.gz");
  ASSERT_EQ(records.list.size(), std::size(vectors));
  for (std::size_t i = 0; i < records.list.size(); ++i) {
    SCOPED_TRACE(vectors[i].repr);
    EXPECT_EQ(hex(records.list[i].path), vectors[i].path_hex);
    EXPECT_EQ(hex(records.list[i].placeholder), vectors[i].placeholder_hex);
    EXPECT_EQ(records.list[i].mode, i % 2 == 0 ? RelocMode::text : RelocMode::binary);
  }
}

// Random names (controls, Latin-1, the BMP, astral planes, surrogate-escaped bytes) written by the
// python3 on this machine, compared with os.fsencode's bytes.
TEST(CondaUnpackRecords, AgreesWithPythonOnRandomNames) {
  if (std::system("python3 -c '' >/dev/null 2>&1") != 0) GTEST_SKIP() << "no python3 on PATH";
  char dir_template[] = "/tmp/ferry-records-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  std::string dir = dir_template;
  struct RemoveAll {
    std::string dir;
    ~RemoveAll() { std::filesystem::remove_all(dir); }
  } remove_dir{dir};
  const char* generator = R"py(
import os, random, sys
rng = random.Random(int(sys.argv[2]))
def char():
    pool = rng.randrange(6)
    if pool == 0: return chr(rng.randrange(1, 0x100))
    if pool == 1: return chr(rng.choice([0x85, 0xa0, 0xad, 0x2028, 0x2029, 0x200b, 0xfeff, 0x301, 0x27, 0x22, 0x5c]))
    if pool == 2: return chr(0xdc80 + rng.randrange(0x80))
    if pool == 3: return chr(rng.choice([rng.randrange(0x100, 0xd800), rng.randrange(0xe000, 0x10000)]))
    if pool == 4: return chr(rng.randrange(0x10000, 0x110000))
    return rng.choice("abc/ .-_")
records, expected = [], []
for i in range(3000):
    name = "".join(char() for _ in range(rng.randrange(1, 12)))
    placeholder = "/p" + "".join(char() for _ in range(rng.randrange(0, 8))).replace("\\", "")
    placeholder = "".join(c for c in placeholder if not 0xd800 <= ord(c) < 0xe000)
    records.append(repr((name, placeholder, rng.choice(["text", "binary"]))))
    expected.append(os.fsencode(name).hex() + " " + placeholder.encode().hex())
with open(sys.argv[1] + "/conda-unpack", "w", encoding="utf-8") as f:
    f.write("_prefix_records = [\n" + ",\n".join(records) + "\n]\n")
with open(sys.argv[1] + "/expected", "w") as f:
    f.write("\n".join(expected) + "\n")
)py";
  { std::ofstream(dir + "/gen.py") << generator; }
  ASSERT_EQ(std::system(fmt::format("python3 {0}/gen.py {0} 20240611", dir).c_str()), 0);
  auto records = parse_conda_unpack_records(ferry::util::read_file(dir + "/conda-unpack"), "t");
  std::ifstream expected(dir + "/expected");
  std::string path_hex, placeholder_hex;
  std::size_t i = 0;
  while (expected >> path_hex >> placeholder_hex) {
    ASSERT_LT(i, records.list.size());
    EXPECT_EQ(hex(records.list[i].path), path_hex) << "record " << i;
    EXPECT_EQ(hex(records.list[i].placeholder), placeholder_hex) << "record " << i;
    ++i;
  }
  EXPECT_EQ(i, records.list.size());
  EXPECT_EQ(i, 3000u);
}

// Escapes a Python literal may hold though repr() never writes them (octal, \a \b \f \v, a line
// continuation, an unknown escape that keeps its backslash), and a trailing comma; the expected
// bytes are what Python 3.11 made of the same literal.
TEST(CondaUnpackRecords, OtherPythonEscapes) {
  auto records = parse_conda_unpack_records(
      "_prefix_records = [('a\\101\\0101\\7b\\a\\q\\\nz', \"/p\\'\\\"\\f\\v\\b\", 'text' ,),]",
      "t");
  ASSERT_EQ(records.list.size(), 1u);
  EXPECT_EQ(hex(records.list[0].path), "614108310762075c717a");
  EXPECT_EQ(hex(records.list[0].placeholder), "2f7027220c0b08");
}

TEST(CondaUnpackRecords, EmptyList) {
  EXPECT_TRUE(parse_conda_unpack_records("_prefix_records = [\n]\n", "t").list.empty());
}

TEST(CondaUnpackRecords, MalformedIsAnError) {
  auto refused = [](const std::string& records) {
    try {
      parse_conda_unpack_records("_prefix_records = [" + records, "env.tar.gz");
    } catch (const ferry::Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_THROW(parse_conda_unpack_records("no records here", "t"), ferry::Error);
  EXPECT_NE(refused("('a', 'b', 'weird')]").find("env.tar.gz: bin/conda-unpack: "),
            std::string::npos);
  EXPECT_NE(refused("('a', 'b'").find("expected ','"), std::string::npos);
  EXPECT_NE(refused("('a', 'b', 'text')").find("expected ']'"), std::string::npos);
  EXPECT_NE(refused("('a\n', 'b', 'text')]").find("unterminated"), std::string::npos);
  EXPECT_NE(refused("('a\\x4', 'b', 'text')]").find("escape"), std::string::npos);
  EXPECT_NE(refused("('a\\U00110000', 'b', 'text')]").find("U+10FFFF"), std::string::npos);
  EXPECT_NE(refused("('a\\N{DASH}', 'b', 'text')]").find("\\N{"), std::string::npos);
  // os.fsencode only turns U+DC80-U+DCFF back into bytes; placeholders are encoded strictly.
  EXPECT_NE(refused("('a\\udc41', 'b', 'text')]").find("U+DC41"), std::string::npos);
  EXPECT_NE(refused("('a\\ud800', 'b', 'text')]").find("U+D800"), std::string::npos);
  EXPECT_NE(refused("('a', '/b\\udcff', 'text')]").find("U+DCFF"), std::string::npos);
  EXPECT_NE(refused("('a\\x00', 'b', 'text')]").find("NUL"), std::string::npos);
  EXPECT_NE(refused("('a\xff', 'b', 'text')]").find("not UTF-8"), std::string::npos);
  EXPECT_NE(refused("('a\xed\xb3\xbf', 'b', 'text')]").find("not UTF-8"), std::string::npos);
  EXPECT_NE(refused("('a', '', 'text')]").find("empty placeholder"), std::string::npos);
}
