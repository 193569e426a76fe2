// The JSON-form helpers every layer uses: FERRY_JSON_FIELDS writes the fields listed, under their
// names, in that order (nested forms and enums included); util::name and util::from_name read an
// enum's NLOHMANN_JSON_SERIALIZE_ENUM table both ways, and a name not in it names nothing.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <vector>

#include "util/util.hpp"

namespace ferry::test_json {

enum class Colour { red, green };
NLOHMANN_JSON_SERIALIZE_ENUM(Colour, {{Colour::red, "red"}, {Colour::green, "green"}})

struct Inner {
  int count = 0;
};
FERRY_JSON_FIELDS(Inner, count)

struct Outer {
  std::string zeta = "z";
  Colour colour = Colour::green;
  std::vector<Inner> inners{{1}, {2}};
  bool alpha = true;
  int not_listed = 7;
};
FERRY_JSON_FIELDS(Outer, zeta, colour, inners, alpha)

}  // namespace ferry::test_json

using namespace ferry;
using test_json::Colour;

TEST(JsonForms, FieldsInTheOrderListed) {
  nlohmann::ordered_json j = test_json::Outer{};
  EXPECT_EQ(j.dump(),
            R"({"zeta":"z","colour":"green","inners":[{"count":1},{"count":2}],"alpha":true})");
}

TEST(JsonForms, EnumNamesBothWays) {
  EXPECT_EQ(util::name(Colour::red), "red");
  EXPECT_EQ(util::name(Colour::green), "green");
  for (Colour c : {Colour::red, Colour::green})
    EXPECT_EQ(util::from_name<Colour>(util::name(c)), c);
  EXPECT_EQ(util::from_name<Colour>("blue"), std::nullopt);
  EXPECT_EQ(util::from_name<Colour>(""), std::nullopt);
  EXPECT_EQ(util::from_name<Colour>("Red"), std::nullopt);
}
