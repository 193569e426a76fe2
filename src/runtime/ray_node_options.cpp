// `ferry ray-node`'s command line: what the coordinator writes behind the launcher, and what
// each node reads back.
#include <cmath>

#include <fmt/format.h>

#include "runtime/runtime.hpp"

namespace ferry::runtime {
namespace {

struct TextOption {
  const char* name;
  std::string RayNodeOptions::*field;
};
constexpr TextOption k_text[] = {
    {"--cluster", &RayNodeOptions::cluster},
    {"--dir", &RayNodeOptions::dir},
    {"--env", &RayNodeOptions::env_prefix},
    {"--head", &RayNodeOptions::head},
    {"--head-address", &RayNodeOptions::head_address},
    {"--interface", &RayNodeOptions::interface},
    {"--temp-dir", &RayNodeOptions::temp_dir},
    {"--sysfs-root", &RayNodeOptions::sysfs_root},
};
struct FlagOption {
  const char* name;
  bool RayNodeOptions::*field;
  bool set_to;  // the value the flag gives (the default is the other)
};
constexpr FlagOption k_flags[] = {
    {"--insecure", &RayNodeOptions::token, false},
    {"--dashboard", &RayNodeOptions::dashboard, true},
    {"--client", &RayNodeOptions::client, true},
    {"--head-temp-dir", &RayNodeOptions::own_temp_dir, false},
};

}  // namespace

std::vector<std::string> encode_ray_node_options(const RayNodeOptions& o) {
  std::vector<std::string> words = {"--role", util::name(o.role)};
  const RayNodeOptions defaults;
  for (const TextOption& t : k_text)
    if (o.*t.field != defaults.*t.field) words.insert(words.end(), {t.name, o.*t.field});
  if (o.port) words.insert(words.end(), {"--port", std::to_string(o.port)});
  if (o.timeout != defaults.timeout)
    words.insert(words.end(),
                 {"--timeout", std::to_string(static_cast<unsigned>(std::ceil(o.timeout)))});
  for (const FlagOption& f : k_flags)
    if (o.*f.field == f.set_to) words.push_back(f.name);
  return words;
}

RayNodeOptions decode_ray_node_options(const std::vector<std::string>& words) {
  RayNodeOptions o;
  bool role = false;
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string& name = words[i];
    const FlagOption* flag = nullptr;
    for (const FlagOption& f : k_flags)
      if (name == f.name) flag = &f;
    if (flag) {
      o.*flag->field = flag->set_to;
      continue;
    }
    const TextOption* text = nullptr;
    for (const TextOption& t : k_text)
      if (name == t.name) text = &t;
    if (!text && name != "--role" && name != "--port" && name != "--timeout")
      throw Error(fmt::format("{}: not an option of ferry ray-node", name), Error::Kind::usage);
    if (++i == words.size())
      throw Error(fmt::format("{}: needs a value", name), Error::Kind::usage);
    const std::string& value = words[i];
    if (text) {
      o.*text->field = value;
    } else if (name == "--port") {
      o.port = static_cast<unsigned>(util::parse_unsigned(value, 1, 65535, name));
    } else if (name == "--timeout") {
      o.timeout = static_cast<double>(util::parse_unsigned(value, 1, 1u << 20, name));
    } else {
      auto r = util::from_name<RayRole>(value);
      if (!r)
        throw Error(fmt::format("--role {}: expected node or check", value), Error::Kind::usage);
      o.role = *r;
      role = true;
    }
  }
  if (!role) throw Error("--role is required", Error::Kind::usage);
  if (o.cluster.empty()) throw Error("--cluster is required", Error::Kind::usage);
  if (o.role == RayRole::node && (o.head.empty() || o.head_address.empty() || !o.port))
    throw Error("--head, --head-address and --port are required", Error::Kind::usage);
  return o;
}

}  // namespace ferry::runtime
