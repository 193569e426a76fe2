// The points of a sweep: the product's order, zip, CSV and JSON files, the comma escape, and the
// templated words.
#include <gtest/gtest.h>

#include "sweep/sweep.hpp"

namespace ferry::sweep {
namespace {

using Points = std::vector<std::vector<std::string>>;

template <class F>
std::string usage_message(F f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), Error::Kind::usage);
    return e.what();
  }
  return "no error";
}

TEST(SweepPoints, ProductVariesTheLastFastest) {
  Grid g = product({parse_parameter("a=1,2"), parse_parameter("b=x,y,z")});
  EXPECT_EQ(g.names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(g.points,
            (Points{{"1", "x"}, {"1", "y"}, {"1", "z"}, {"2", "x"}, {"2", "y"}, {"2", "z"}}));
  EXPECT_TRUE(product({}).points.empty());
}

TEST(SweepPoints, ZipPairsAndNamesTheLengths) {
  Grid g = zip({parse_parameter("a=1,2"), parse_parameter("b=x,y")});
  EXPECT_EQ(g.points, (Points{{"1", "x"}, {"2", "y"}}));
  EXPECT_EQ(usage_message([] {
              zip({parse_parameter("lr=1,2,3"), parse_parameter("bs=4,5")});
            }),
            "--zip: the lists differ in length: lr has 3, bs has 2");
}

TEST(SweepPoints, CommasAndBackslashes) {
  EXPECT_EQ(parse_parameter("v=a\\,b,c").values, (std::vector<std::string>{"a,b", "c"}));
  EXPECT_EQ(parse_parameter("v=a\\\\,b").values, (std::vector<std::string>{"a\\", "b"}));
  EXPECT_EQ(parse_parameter("v=a\\b").values, (std::vector<std::string>{"a\\b"}));
  EXPECT_EQ(parse_parameter("v=a,,b").values, (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(parse_parameter("v=").values, (std::vector<std::string>{""}));
  EXPECT_EQ(parse_parameter("v=x=y 'q' * $HOME").values,
            (std::vector<std::string>{"x=y 'q' * $HOME"}));
  EXPECT_TRUE(is_parameter_word("opt.lr=1"));
  EXPECT_FALSE(is_parameter_word("python"));
  EXPECT_FALSE(is_parameter_word("1a=2"));
  EXPECT_EQ(usage_message([] { parse_parameter("=1"); }),
            "'=1': expected NAME=V1,V2,... (NAME: letters, digits, _ . -)");
}

TEST(SweepPoints, CsvRows) {
  Grid g = parse_points_csv("lr,name\n0.1,\"a, \"\"b\"\"\"\r\n0.2,plain\n\n", "p.csv");
  EXPECT_EQ(g.names, (std::vector<std::string>{"lr", "name"}));
  EXPECT_EQ(g.points, (Points{{"0.1", "a, \"b\""}, {"0.2", "plain"}}));
  EXPECT_EQ(parse_points_csv("a\n\"two\nlines\"", "p.csv").points, (Points{{"two\nlines"}}));
  EXPECT_EQ(usage_message([] { parse_points_csv("a,b\n1,2\n3\n", "p.csv"); }),
            "p.csv: line 3: 1 fields, the header has 2");
  EXPECT_EQ(usage_message([] { parse_points_csv("a\n\"open", "p.csv"); }),
            "p.csv: line 2: a quoted field is not closed");
}

TEST(SweepPoints, JsonRows) {
  Grid g = parse_points_json(R"([{"lr": 0.5, "name": "x y", "on": true}, {"name": "z", "lr": 1,
                                  "on": false}])",
                             "p.json");
  EXPECT_EQ(g.names, (std::vector<std::string>{"lr", "name", "on"}));
  EXPECT_EQ(g.points, (Points{{"0.5", "x y", "true"}, {"1", "z", "false"}}));
  EXPECT_EQ(usage_message([] { parse_points_json(R"([{"a": 1}, {"b": 2}])", "p.json"); }),
            "p.json: point 1: no value for 'a'");
  EXPECT_EQ(usage_message([] { parse_points_json(R"([{"a": null}])", "p.json"); }),
            "p.json: point 0: 'a' is not a string, number or boolean");
  EXPECT_EQ(usage_message([] { parse_points_json(R"({"a": 1})", "p.json"); }),
            "p.json: expected a list of objects");
}

TEST(SweepPoints, GridChecks) {
  EXPECT_EQ(usage_message([] { check_grid({}); }),
            "the sweep has no points (give NAME=V1,V2,... or --from FILE with rows)");
  EXPECT_EQ(usage_message([] { check_grid(product({parse_parameter("index=1")})); }),
            "parameter 'index': the name is taken by {index} (choose another)");
  EXPECT_EQ(usage_message([] {
              check_grid(product({parse_parameter("a=1"), parse_parameter("a=2")}));
            }),
            "parameter 'a' is given twice");
}

TEST(SweepTemplate, WordsStayWords) {
  Grid g = product({parse_parameter("lr=0.1"), parse_parameter("name=x y")});
  EXPECT_EQ(expand_command({"run", "--lr={lr}", "{name}", "{{{index}}}", "{dir}/out", "}}"}, g, 0,
                           "/s/runs/0"),
            (std::vector<std::string>{"run", "--lr=0.1", "x y", "{0}", "/s/runs/0/out", "}"}));
}

TEST(SweepTemplate, ErrorsNameTheWord) {
  std::vector<std::string> names = {"lr"};
  EXPECT_EQ(usage_message([&] {
              check_command({"run", "--bs={bs}"}, names);
            }),
            "command word '--bs={bs}': unknown parameter {bs} (known: {lr}, {index}, {dir})");
  EXPECT_EQ(usage_message([&] { check_command({"a{lr"}, names); }),
            "command word 'a{lr': a '{' without its '}' (write {{ for a literal brace)");
  EXPECT_EQ(usage_message([&] { check_command({"a}"}, names); }),
            "command word 'a}': a '}' without its '{' (write }} for a literal brace)");
  EXPECT_EQ(usage_message([&] { check_command({}, names); }),
            "no command to run (give it after --)");
}

}  // namespace
}  // namespace ferry::sweep
