// `ferry dask-node`'s command line: what the coordinator writes behind the launcher, and what
// each node reads back.
#include <fmt/format.h>

#include "runtime/runtime.hpp"

namespace ferry::runtime {
namespace {

// Each text option: its name and where its value goes.
struct TextOption {
  const char* name;
  std::string DaskNodeOptions::*field;
};
constexpr TextOption k_text[] = {
    {"--cluster", &DaskNodeOptions::cluster},
    {"--dir", &DaskNodeOptions::dir},
    {"--env", &DaskNodeOptions::env_prefix},
    {"--scheduler", &DaskNodeOptions::scheduler},
    {"--interface", &DaskNodeOptions::interface},
    {"--local-directory", &DaskNodeOptions::local_directory},
    {"--sysfs-root", &DaskNodeOptions::sysfs_root},
    {"--notebook", &DaskNodeOptions::notebook},
};
struct NumberOption {
  const char* name;
  unsigned DaskNodeOptions::*field;
  unsigned min, max, fallback;  // fallback: the default, left out when encoding
};
constexpr NumberOption k_numbers[] = {
    {"--port", &DaskNodeOptions::port, 1, 65535, 0},
    {"--dashboard-port", &DaskNodeOptions::dashboard_port, 1, 65535, 0},
    {"--notebook-port", &DaskNodeOptions::notebook_port, 1, 65535, 0},
    {"--workers", &DaskNodeOptions::workers, 1, 4096, 1},
    {"--threads", &DaskNodeOptions::threads, 1, 65536, 0},
};

}  // namespace

std::vector<std::string> encode_dask_node_options(const DaskNodeOptions& o) {
  std::vector<std::string> words = {"--role", util::name(o.role)};
  const DaskNodeOptions defaults;
  for (const TextOption& t : k_text)
    if (o.*t.field != defaults.*t.field) words.insert(words.end(), {t.name, o.*t.field});
  for (const NumberOption& n : k_numbers)
    if (o.*n.field != n.fallback) words.insert(words.end(), {n.name, std::to_string(o.*n.field)});
  if (o.per_gpu) words.push_back("--per-gpu");
  if (!o.tls) words.push_back("--insecure");
  return words;
}

DaskNodeOptions decode_dask_node_options(const std::vector<std::string>& words) {
  DaskNodeOptions o;
  bool role = false;
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string& name = words[i];
    if (name == "--per-gpu") {
      o.per_gpu = true;
      continue;
    }
    if (name == "--insecure") {
      o.tls = false;
      continue;
    }
    const TextOption* text = nullptr;
    for (const TextOption& t : k_text)
      if (name == t.name) text = &t;
    const NumberOption* number = nullptr;
    for (const NumberOption& n : k_numbers)
      if (name == n.name) number = &n;
    if (!text && !number && name != "--role")
      throw Error(fmt::format("{}: not an option of ferry dask-node", name), Error::Kind::usage);
    if (++i == words.size())
      throw Error(fmt::format("{}: needs a value", name), Error::Kind::usage);
    const std::string& value = words[i];
    if (text) {
      o.*text->field = value;
    } else if (number) {
      o.*number->field =
          static_cast<unsigned>(util::parse_unsigned(value, number->min, number->max, name));
    } else {
      auto r = util::from_name<DaskRole>(value);
      if (!r)
        throw Error(fmt::format("--role {}: expected scheduler, workers or check", value),
                    Error::Kind::usage);
      o.role = *r;
      role = true;
    }
  }
  if (!role) throw Error("--role is required", Error::Kind::usage);
  if (o.cluster.empty()) throw Error("--cluster is required", Error::Kind::usage);
  return o;
}

}  // namespace ferry::runtime
