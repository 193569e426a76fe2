// Shared by the unit tests of the layers' JSON forms: an object's keys, in the order it holds them
// (the order --json prints them).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

inline std::vector<std::string> json_keys(const nlohmann::ordered_json& json) {
  std::vector<std::string> out;
  for (const auto& item : json.items()) out.push_back(item.key());
  return out;
}
