// `ferry rank`'s command line, written by `ferry launch` (and `ferry rank --spawn`) and read by
// `ferry rank`: the one encoder and the one decoder.
#include <climits>

#include <fmt/format.h>

#include "job/job.hpp"

namespace ferry::job {
namespace {

unsigned count_of(const std::string& value, std::string_view option) {
  return static_cast<unsigned>(util::parse_unsigned(value, 0, UINT_MAX, option));
}

// "0-7:8-15": one CPU list per local rank.
std::vector<std::vector<unsigned>> parse_rank_cpus(const std::string& text) {
  std::vector<std::vector<unsigned>> out;
  for (std::string_view list : util::split(text, ':'))
    out.push_back(parse_cpu_list(list, "--cpus"));
  return out;
}

}  // namespace

std::vector<std::string> encode_rank_options(const RankOptions& options) {
  const RankSetup& setup = options.setup;
  std::vector<std::string> words;
  if (options.spawn > 0) words.insert(words.end(), {"--spawn", std::to_string(options.spawn)});
  if (!setup.master_addr.empty()) words.insert(words.end(), {"--master-addr", setup.master_addr});
  if (setup.master_port)
    words.insert(words.end(), {"--master-port", std::to_string(*setup.master_port)});
  if (!setup.gpu_selectors.empty())
    words.insert(words.end(),
                 {"--gpus", util::join(setup.gpu_selectors, ","), "--gpus-per-rank",
                  std::to_string(setup.gpus_per_rank), "--visibility", setup.visibility_variable});
  if (!setup.cpus.empty()) {
    std::vector<std::string> lists;
    for (const auto& c : setup.cpus) lists.push_back(format_cpu_list(c));
    words.insert(words.end(), {"--cpus", util::join(lists, ":")});
  }
  for (const auto& [k, v] : setup.extra_env) words.insert(words.end(), {"--env", k + "=" + v});
  if (setup.threads) words.insert(words.end(), {"--threads", std::to_string(*setup.threads)});
  if (setup.planned_threads)
    words.insert(words.end(), {"--planned-threads", std::to_string(*setup.planned_threads)});
  words.push_back("--");
  words.insert(words.end(), options.command.begin(), options.command.end());
  return words;
}

RankOptions decode_rank_options(const std::vector<std::string>& words) {
  RankOptions options;
  RankSetup& setup = options.setup;
  std::string gpus, visibility;
  unsigned gpus_per_rank = 1;
  std::size_t i = 0;
  for (; i < words.size() && words[i] != "--"; i += 2) {
    const std::string& name = words[i];
    if (i + 1 == words.size())
      throw Error(fmt::format("{}: needs a value", name), Error::Kind::usage);
    const std::string& value = words[i + 1];
    if (name == "--spawn") {
      options.spawn = count_of(value, name);
    } else if (name == "--master-addr") {
      setup.master_addr = value;
    } else if (name == "--master-port") {
      setup.master_port = count_of(value, name);
    } else if (name == "--gpus") {
      gpus = value;
    } else if (name == "--gpus-per-rank") {
      gpus_per_rank = count_of(value, name);
    } else if (name == "--visibility") {
      visibility = value;
    } else if (name == "--cpus") {
      if (!value.empty()) setup.cpus = parse_rank_cpus(value);
    } else if (name == "--threads" || name == "--planned-threads") {
      // --threads 0: leave the thread variables alone (a runtime sets them per worker).
      unsigned n = static_cast<unsigned>(
          util::parse_unsigned(value, name == "--threads" ? 0 : 1, 1u << 20, name));
      (name == "--threads" ? setup.threads : setup.planned_threads) = n;
    } else if (name == "--env") {
      auto eq = value.find('=');
      if (eq == std::string::npos || eq == 0)
        throw Error(fmt::format("--env {}: expected KEY=VALUE", value), Error::Kind::usage);
      setup.extra_env[value.substr(0, eq)] = value.substr(eq + 1);
    } else {
      throw Error(fmt::format("{}: not an option of ferry rank", name), Error::Kind::usage);
    }
  }
  if (!gpus.empty()) {
    for (std::string_view s : util::split(gpus, ',')) setup.gpu_selectors.emplace_back(s);
    setup.gpus_per_rank = gpus_per_rank;
    setup.visibility_variable = visibility.empty() ? "CUDA_VISIBLE_DEVICES" : visibility;
  }
  if (i < words.size())
    options.command.assign(words.begin() + static_cast<std::ptrdiff_t>(i + 1), words.end());
  return options;
}

}  // namespace ferry::job
