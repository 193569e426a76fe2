// conda environments, with conda-pack's rules (see the README for where ferry departs on purpose).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "env/collect.hpp"

namespace ferry::env {
namespace {

using Json = nlohmann::json;

bool skip_top_level(const std::string& name) {
  static const std::set<std::string> skipped = {
      "pkgs",   "envs",     "conda-bld", ".conda_lock", "users",       "conda-recipes",
      ".index", ".unionfs", ".nonadmin", "python.app",  "Launcher.app"};
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  // conda-pack compares against ".DS_STORE" case-sensitively and so never matches macOS's
  // ".DS_Store"; ferry compares without case.
  return skipped.count(name) || (!name.empty() && name.back() == '~') || lower == ".ds_store";
}

Json load_json(const std::string& path) {
  try {
    return Json::parse(util::read_file(path));
  } catch (const Json::exception& e) {
    throw Error(fmt::format("{}: invalid JSON: {}", path, e.what()));
  }
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// importlib.util.source_from_cache: <dir>/__pycache__/<base>.<tag>[.opt-N].pyc -> <dir>/<base>.py
std::optional<std::string> py_source_of(const std::string& path) {
  if (!path.ends_with(".pyc")) return std::nullopt;
  std::size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "" : path.substr(0, slash);
  std::string file = path.substr(slash == std::string::npos ? 0 : slash + 1);
  std::size_t dslash = dir.rfind('/');
  std::string parent_name = dir.substr(dslash == std::string::npos ? 0 : dslash + 1);
  if (parent_name != "__pycache__") return std::nullopt;
  auto dots = std::count(file.begin(), file.end(), '.');
  if (dots != 2 && dots != 3) return std::nullopt;
  std::string base = file.substr(0, file.find('.'));
  std::string outer = dslash == std::string::npos ? "" : dir.substr(0, dslash);
  return outer.empty() ? base + ".py" : outer + "/" + base + ".py";
}

struct PythonInfo {
  std::string version;
  std::string site_packages;
};

std::optional<PythonInfo> find_python(const std::string& prefix) {
  std::optional<PythonInfo> found;
  for (const auto& ent : std::filesystem::directory_iterator(prefix + "/conda-meta")) {
    std::string name = ent.path().filename().string();
    if (!name.starts_with("python-") || ent.path().extension() != ".json") continue;
    Json info = load_json(ent.path().string());
    if (info.value("name", "") != "python") continue;
    if (found) throw Error(fmt::format("{}: more than one python package is installed", prefix));
    PythonInfo p;
    p.version = info.value("version", "");
    // CEP 17's field names the real directory (python3.13t for free-threaded builds);
    // conda-pack ignores it, ferry uses it when present.
    if (info.contains("python_site_packages_path") && info["python_site_packages_path"].is_string())
      p.site_packages = info["python_site_packages_path"].get<std::string>();
    else
      p.site_packages = "lib/python" + python_major_minor(p.version) + "/site-packages";
    found = p;
  }
  return found;
}

void check_editables(const std::string& prefix, const std::string& site_packages) {
  std::string sp = prefix + "/" + site_packages;
  std::vector<std::string> editable;
  std::error_code ec;
  for (const auto& ent : std::filesystem::directory_iterator(sp, ec)) {
    std::string name = ent.path().filename().string();
    if (ent.path().extension() == ".dist-info") {
      std::string direct = ent.path().string() + "/direct_url.json";
      if (!exists(direct)) continue;
      Json d = load_json(direct);
      if (d.contains("dir_info") && d["dir_info"].value("editable", false))
        editable.push_back(name.substr(0, name.find('-')));
    } else if (ent.path().extension() == ".egg-link") {
      editable.push_back(name.substr(0, name.size() - 9));  // setup.py develop
    }
  }
  if (editable.empty()) return;
  std::sort(editable.begin(), editable.end());
  throw Error(
      fmt::format("{}: cannot pack an environment with editable packages (pip install -e "
                  "or setup.py develop): {}; use --ignore-editable-packages to pack "
                  "them as they are",
                  prefix, util::join(editable, ", ")));
}

std::string noarch_type(const std::string& pkg) {
  for (const char* meta : {"/info/link.json", "/info/package_metadata.json"}) {
    std::string path = pkg + meta;
    if (!exists(path)) continue;
    Json j = load_json(path);
    if (j.contains("noarch") && j["noarch"].is_object()) return j["noarch"].value("type", "");
    return "";
  }
  return "";
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    // conda-pack fails on blank lines in has_prefix and makes a "" target from one in files;
    // conda skips blanks and comments, and so does ferry.
    if (line.empty() || line[0] == '#') continue;
    lines.push_back(line);
  }
  return lines;
}

struct PrefixRecord {
  std::string placeholder;
  format::RelocMode mode;
};

std::map<std::string, PrefixRecord> read_has_prefix(const std::string& path) {
  std::map<std::string, PrefixRecord> out;
  for (const std::string& line : read_lines(path)) {
    std::vector<std::string> tokens;
    std::istringstream in(line);
    std::string tok;
    while (in >> tok) {
      tok.erase(
          std::remove_if(tok.begin(), tok.end(), [](char c) { return c == '"' || c == '\''; }),
          tok.end());
      tokens.push_back(tok);
    }
    if (tokens.size() == 1) {
      out[tokens[0]] = {"/opt/anaconda1anaconda2anaconda3", format::RelocMode::text};
    } else if (tokens.size() == 3) {
      out[tokens[2]] = {
          tokens[0], tokens[1] == "binary" ? format::RelocMode::binary : format::RelocMode::text};
    } else {
      throw Error(fmt::format("{}: cannot parse line '{}'", path, line));
    }
  }
  return out;
}

}  // namespace

Collection collect_conda(const PackOptions& options, const std::string& prefix) {
  Collection c;
  c.kind = Kind::conda;
  c.prefix = prefix;
  std::optional<PythonInfo> python = find_python(prefix);
  if (python) {
    c.python_version = python->version;
    if (!options.ignore_editable_packages) check_editables(prefix, python->site_packages);
  }

  std::vector<std::string> on_disk_list = walk_tree(prefix, &skip_top_level);
  std::set<std::string> on_disk(on_disk_list.begin(), on_disk_list.end());

  std::map<std::string, PackItem> chosen;  // target -> item
  std::set<std::string> clobbered;
  std::map<std::string, std::vector<std::string>> missing;  // package -> targets
  std::vector<std::string> uncached;

  auto add = [&](PackItem item) {
    auto [it, inserted] = chosen.emplace(item.target, item);
    if (!inserted) clobbered.insert(item.target);
  };

  std::vector<std::string> records;
  for (const auto& ent : std::filesystem::directory_iterator(prefix + "/conda-meta"))
    if (ent.path().extension() == ".json") records.push_back(ent.path().filename().string());
  std::sort(records.begin(), records.end());

  for (const std::string& record_name : records) {
    std::string record_path = prefix + "/conda-meta/" + record_name;
    Json info = load_json(record_path);
    std::string pkg_name = info.value("name", record_name);
    std::string pkg_id = pkg_name + "-" + info.value("version", "?");
    std::string source;
    if (info.contains("link") && info["link"].is_object() && info["link"].contains("source") &&
        info["link"]["source"].is_string())
      source = info["link"]["source"].get<std::string>();
    std::vector<std::string> files;
    if (info.contains("files") && info["files"].is_array())
      for (const auto& f : info["files"])
        if (f.is_string() && f.get<std::string>() != ".nonadmin")
          files.push_back(f.get<std::string>());

    std::vector<PackItem> new_items;
    if (source.empty() || !exists(source)) {
      uncached.push_back(pkg_id);
      for (const std::string& f : files) {
        PackItem item;
        item.target = f;
        item.source = prefix + "/" + f;
        item.detect = Detect::scan;
        item.placeholder = prefix;
        new_items.push_back(std::move(item));
      }
    } else {
      bool is_noarch = noarch_type(source) == "python";
      if (is_noarch && !python)
        throw Error(
            fmt::format("{}: noarch python package {} but no python is installed", prefix, pkg_id));
      auto map_path = [&](const std::string& p) {
        if (!is_noarch) return p;
        if (p.starts_with("site-packages/")) return python->site_packages + p.substr(13);
        if (p.starts_with("python-scripts/")) return "bin" + p.substr(14);
        return p;
      };
      std::set<std::string> seen;
      auto add_cached = [&](const std::string& rel, const PrefixRecord* rec) {
        PackItem item;
        item.target = map_path(rel);
        item.source = source + "/" + rel;
        if (rec) {
          item.detect = Detect::known;
          item.placeholder = rec->placeholder;
          item.reloc = rec->mode;
        }
        seen.insert(item.target);
        new_items.push_back(std::move(item));
      };
      std::string paths_json = source + "/info/paths.json";
      if (exists(paths_json)) {
        Json paths = load_json(paths_json);
        for (const auto& p : paths.at("paths")) {
          std::string rel = p.at("_path").get<std::string>();
          // A directory entry names a directory, which conda-pack then reports as missing
          // when it is not empty; ferry lets the walk find whatever the directory holds.
          if (p.value("path_type", "") == "directory") {
            seen.insert(map_path(rel));
            continue;
          }
          if (p.contains("prefix_placeholder") && p["prefix_placeholder"].is_string()) {
            // CEP 34: file_mode defaults to text (conda-pack treats a missing mode as no prefix).
            PrefixRecord rec{p["prefix_placeholder"].get<std::string>(),
                             p.value("file_mode", "text") == "binary" ? format::RelocMode::binary
                                                                      : format::RelocMode::text};
            add_cached(rel, &rec);
          } else {
            add_cached(rel, nullptr);
          }
        }
      } else {
        std::map<std::string, PrefixRecord> has_prefix;
        if (exists(source + "/info/has_prefix"))
          has_prefix = read_has_prefix(source + "/info/has_prefix");
        for (const std::string& rel : read_lines(source + "/info/files")) {
          auto it = has_prefix.find(rel);
          add_cached(rel, it == has_prefix.end() ? nullptr : &it->second);
        }
      }
      if (is_noarch) {  // files made at link time: .pyc and entry points, read from the env
        for (const std::string& f : files) {
          if (seen.count(f)) continue;
          if (f.size() > 4 && f.ends_with(".pyc") && !on_disk.count(f)) continue;
          PackItem item;
          item.target = f;
          item.source = prefix + "/" + f;
          if (f.starts_with("bin/")) {
            item.detect = Detect::scan;
            item.placeholder = prefix;
          }
          new_items.push_back(std::move(item));
        }
      }
    }
    for (PackItem& item : new_items) {
      if (!on_disk.count(item.target)) {
        missing[pkg_id].push_back(item.target);
        if (options.ignore_missing_files) continue;
      }
      add(std::move(item));
    }
    PackItem meta;
    meta.target = "conda-meta/" + record_name;
    meta.source = record_path;
    meta.rewrite_conda_meta = true;
    add(std::move(meta));
  }
  if (exists(prefix + "/conda-meta/history")) {
    PackItem h;
    h.target = "conda-meta/history";
    h.source = prefix + "/conda-meta/history";
    add(std::move(h));
  }

  if (!missing.empty() && !options.ignore_missing_files) {
    std::string detail;
    for (auto& [pkg, targets] : missing) {
      std::sort(targets.begin(), targets.end());
      detail += fmt::format("{}{} ({} file{}, e.g. {})", detail.empty() ? "" : "; ", pkg,
                            targets.size(), targets.size() == 1 ? "" : "s", targets.front());
    }
    throw Error(
        fmt::format("{}: files managed by conda are missing (deleted or overwritten, "
                    "often by pip): {}; use --ignore-missing-files to pack without them",
                    prefix, detail));
  }

  // A path claimed by two packages: the env holds one of them; pack what the env holds.
  for (const std::string& target : clobbered) {
    PackItem& item = chosen[target];
    item.source = prefix + "/" + target;
    item.detect = Detect::scan;
    item.placeholder = prefix;
    item.reloc = format::RelocMode::none;
  }
  if (!clobbered.empty())
    c.warnings.push_back(
        fmt::format("{}: {} paths are claimed by more than one package (e.g. {}); "
                    "packed as they are in the environment",
                    prefix, clobbered.size(), *clobbered.begin()));

  // Unmanaged files (pip installs, user data): from the env, scanned for the prefix. Only the
  // bytecode of managed sources is left out, so the unmanaged files join `chosen` after the walk:
  // otherwise an unmanaged X.py that sorts before __pycache__ would hide its own X.*.pyc.
  static const std::set<std::string> shims = {"bin/conda", "bin/activate", "bin/deactivate"};
  std::vector<PackItem> unmanaged;
  for (const std::string& rel : on_disk_list) {
    if (chosen.count(rel) || shims.count(rel)) continue;
    if (auto src = py_source_of(rel); src && chosen.count(*src)) continue;
    PackItem item;
    item.target = rel;
    item.source = prefix + "/" + rel;
    item.detect = Detect::scan;
    item.placeholder = prefix;
    unmanaged.push_back(std::move(item));
  }
  for (PackItem& item : unmanaged) chosen.emplace(item.target, std::move(item));

  if (!uncached.empty()) {
    std::sort(uncached.begin(), uncached.end());
    c.warnings.push_back(fmt::format(
        "{}: {} conda packages have no package cache entry (e.g. {}); their files are taken from "
        "the environment and only their text files are relocated",
        prefix, uncached.size(), uncached.front()));
  }

  for (auto& [target, item] : chosen) {
    if (!stat_item(item))
      throw Error(
          fmt::format("{}: cannot read (package cache changed while packing?)", item.source));
    if (item.type != format::EntryType::file) {
      item.detect = Detect::none;
      item.reloc = format::RelocMode::none;
    }
    c.items.push_back(std::move(item));
  }
  return c;
}

}  // namespace ferry::env
