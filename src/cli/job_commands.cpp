// The job verbs: hostlist, job, launch, rank. Each parses and calls the job library.
#include <cstdio>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "job/job.hpp"

namespace ferry::cli {
namespace {

using Json = nlohmann::ordered_json;

void add_hostlist(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("hostlist", "Expand or compress Slurm hostlist expressions");
  cmd->require_subcommand(1);
  auto exprs = std::make_shared<std::vector<std::string>>();
  auto json = std::make_shared<bool>(false);
  CLI::App* expand = cmd->add_subcommand("expand", "One host per line, in order, as scontrol show hostnames");
  expand->add_option("EXPR", *exprs, "Hostlist expressions")->required();
  expand->add_flag("--json", *json, "Print a JSON list");
  expand->callback([=] {
    std::vector<std::string> hosts;
    for (const auto& e : *exprs)
      for (auto& h : job::expand_hostlist(e)) hosts.push_back(std::move(h));
    if (*json) {
      std::printf("%s\n", Json(hosts).dump().c_str());
    } else {
      for (const auto& h : hosts) std::printf("%s\n", h.c_str());
    }
  });
  CLI::App* compress = cmd->add_subcommand("compress", "One expression for the hosts given, order kept");
  compress->add_option("HOST", *exprs, "Hosts or hostlist expressions")->required();
  compress->add_flag("--json", *json, "Print a JSON string");
  compress->callback([=] {
    std::vector<std::string> hosts;
    for (const auto& e : *exprs)
      for (auto& h : job::expand_hostlist(e)) hosts.push_back(std::move(h));
    std::string expr = job::compress_hostlist(hosts);
    std::printf("%s\n", *json ? Json(expr).dump().c_str() : expr.c_str());
  });
}

}  // namespace

void add_job_commands(CLI::App& app) { add_hostlist(app); }

}  // namespace ferry::cli
