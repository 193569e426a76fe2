// The machine table: parsed from JSON (comments allowed: centres annotate their entries), merged
// with the users' files, and matched against this host.
#include <climits>
#include <regex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "job/job.hpp"

namespace ferry::job {

extern const char k_builtin_machines[];

namespace {

using Json = nlohmann::json;

Launcher parse_launcher(const std::string& name, const std::string& where) {
  for (Launcher l : {Launcher::srun, Launcher::pals, Launcher::mpich, Launcher::openmpi,
                     Launcher::flux, Launcher::jsrun, Launcher::local})
    if (launcher_name(l) == name) return l;
  throw Error(fmt::format(
      "{}: unknown launcher '{}' (srun, pals, mpich, openmpi, flux, jsrun, local)", where, name));
}

Scheduler parse_scheduler(const std::string& name, const std::string& where) {
  for (Scheduler s : {Scheduler::none, Scheduler::slurm, Scheduler::pbs, Scheduler::lsf,
                      Scheduler::cobalt, Scheduler::flux})
    if (scheduler_name(s) == name) return s;
  throw Error(fmt::format("{}: unknown scheduler '{}'", where, name));
}

void check_regex(const std::string& pattern, const std::string& where) {
  try {
    std::regex re(pattern);
  } catch (const std::regex_error& e) {
    throw Error(fmt::format("{}: bad pattern '{}': {}", where, pattern, e.what()));
  }
}

Machine parse_machine(const Json& j, const std::string& where) {
  Machine m;
  m.name = j.at("name").get<std::string>();
  std::string here = fmt::format("{}: machine '{}'", where, m.name);
  m.description = j.value("description", "");
  m.docs = j.value("docs", std::vector<std::string>{});
  if (j.contains("match")) {
    const Json& match = j.at("match");
    m.match_env = match.value("env", std::map<std::string, std::string>{});
    m.match_domains = match.value("domains", std::vector<std::string>{});
    m.match_hostnames = match.value("hostnames", std::vector<std::string>{});
    if (match.contains("scheduler"))
      m.match_scheduler = parse_scheduler(match.at("scheduler"), here);
    for (const auto& [var, pattern] : m.match_env) check_regex(pattern, here);
    for (const auto& pattern : m.match_hostnames) check_regex(pattern, here);
  }
  m.launcher = parse_launcher(j.value("launcher", "local"), here);
  m.launcher_args = j.value("launcher_args", std::vector<std::string>{});
  m.reserved_cpus = j.value("reserved_cpus", std::vector<unsigned>{});
  m.rank_env = j.value("rank_env", std::map<std::string, std::string>{});
  m.node_local = j.value("node_local", std::vector<std::string>{});
  for (const auto& [gpu, cpus] : j.value("gpu_cpus", std::map<std::string, std::string>{})) {
    std::optional<unsigned> index = util::parse_decimal(gpu, UINT_MAX);
    if (!index) throw Error(fmt::format("{}: gpu_cpus key '{}' is not a GPU index", here, gpu));
    m.gpu_cpus[*index] = parse_cpu_list(cpus, here + " gpu_cpus");
  }
  if (j.contains("layouts")) {
    for (const auto& [key, value] : j.at("layouts").items()) {
      std::optional<unsigned> ppn = util::parse_decimal(key, UINT_MAX);
      if (!ppn || *ppn == 0)
        throw Error(
            fmt::format("{}: layout key '{}' is not a number of ranks per node", here, key));
      Layout layout;
      layout.cpu_bind = value.value("cpu_bind", "");
      layout.depth = value.value("depth", 0u);
      if (value.contains("cpus_per_rank"))
        layout.cpus_per_rank = value.at("cpus_per_rank").get<unsigned>();
      layout.launcher_args = value.value("launcher_args", std::vector<std::string>{});
      layout.launcher_binds_gpus = value.value("launcher_binds_gpus", false);
      m.layouts[*ppn] = std::move(layout);
    }
  }
  m.source = where;
  return m;
}

bool ends_with_domain(const std::string& fqdn, const std::string& domain) {
  if (fqdn.size() <= domain.size()) return fqdn == domain;
  return fqdn.ends_with(domain) && fqdn[fqdn.size() - domain.size() - 1] == '.';
}

// 3: site variables, 2: domain, 1: host name, 0: scheduler only, -1: no match.
int match_strength(const Machine& m, const Environ& env, const std::string& hostname,
                   const std::string& fqdn, Scheduler scheduler) {
  if (!m.match_env.empty()) {
    bool all = true;
    for (const auto& [var, pattern] : m.match_env) {
      auto value = lookup(env, var);
      if (!value || !std::regex_search(*value, std::regex(pattern))) all = false;
    }
    if (all) return 3;
  }
  for (const auto& d : m.match_domains)
    if (ends_with_domain(fqdn, d) || ends_with_domain(hostname, d)) return 2;
  for (const auto& pattern : m.match_hostnames)
    if (std::regex_search(hostname, std::regex(pattern))) return 1;
  if (m.match_scheduler && *m.match_scheduler == scheduler) return 0;
  return -1;
}

}  // namespace

std::string_view launcher_name(Launcher launcher) {
  switch (launcher) {
    case Launcher::srun: return "srun";
    case Launcher::pals: return "pals";
    case Launcher::mpich: return "mpich";
    case Launcher::openmpi: return "openmpi";
    case Launcher::flux: return "flux";
    case Launcher::jsrun: return "jsrun";
    case Launcher::local: break;
  }
  return "local";
}

std::vector<Machine> parse_machines(std::string_view json, const std::string& source) {
  Json doc;
  try {
    doc = Json::parse(json, nullptr, true, /*ignore_comments=*/true);
  } catch (const Json::parse_error& e) {
    throw Error(fmt::format("{}: not a valid machine table: {}", source, e.what()));
  }
  std::vector<Machine> machines;
  try {
    // The table's own node-local places, for its entries that name none.
    auto node_local = doc.value("node_local", std::vector<std::string>{});
    for (const Json& j : doc.at("machines")) {
      machines.push_back(parse_machine(j, source));
      if (machines.back().node_local.empty()) machines.back().node_local = node_local;
    }
  } catch (const Json::exception& e) {
    throw Error(fmt::format("{}: malformed machine entry: {}", source, e.what()));
  }
  return machines;
}

std::vector<Machine> load_machines(const Environ& env) {
  std::vector<Machine> machines = parse_machines(k_builtin_machines, "built-in machines.json");
  auto files = lookup(env, "FERRY_MACHINES");
  if (!files) return machines;
  const std::vector<std::string> builtin_node_local = machines.back().node_local;  // "local"'s
  // Later files win; a user's entry goes first so it is preferred on equal match strength.
  for (std::string_view part : util::split(*files, ':')) {
    if (part.empty()) continue;
    std::string path(part);
    std::string text;
    try {
      text = util::read_file(path);
    } catch (const Error&) {
      throw Error(fmt::format("FERRY_MACHINES: cannot read {}", path), Error::Kind::usage);
    }
    std::vector<Machine> mine = parse_machines(text, path);
    for (Machine& m : mine) {
      if (m.node_local.empty()) m.node_local = builtin_node_local;
      std::erase_if(machines, [&](const Machine& old) { return old.name == m.name; });
    }
    machines.insert(machines.begin(), std::make_move_iterator(mine.begin()),
                    std::make_move_iterator(mine.end()));
  }
  return machines;
}

const Machine& recognise_machine(const std::vector<Machine>& machines, const Environ& env,
                                 const std::string& hostname, const std::string& fqdn,
                                 Scheduler scheduler) {
  const Machine* best = nullptr;
  int best_strength = -1;
  for (const Machine& m : machines) {
    int s = match_strength(m, env, hostname, fqdn, scheduler);
    if (s > best_strength) {
      best = &m;
      best_strength = s;
    }
  }
  if (!best)
    throw Error(
        fmt::format("no machine entry matches this host ({}) or the scheduler ({}); add one with "
                    "FERRY_MACHINES",
                    hostname, scheduler_name(scheduler)));
  return *best;
}

const Machine& find_machine(const std::vector<Machine>& machines, const std::string& name) {
  for (const Machine& m : machines)
    if (m.name == name) return m;
  std::vector<std::string> known;
  for (const Machine& m : machines) known.push_back(m.name);
  throw Error(
      fmt::format("--machine {}: unknown machine (known: {})", name, util::join(known, ", ")),
      Error::Kind::usage);
}

}  // namespace ferry::job
