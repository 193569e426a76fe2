// conda environments, with conda-pack's rules (see the README for where ferry departs on purpose).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <simdjson.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_invoke.h>

#include "env/collect.hpp"

namespace ferry::env {
namespace {

using Json = simdjson::dom::element;

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

// conda's metadata is read with simdjson: a large env's records and paths.json run to tens of MB,
// and building a tree of them node by node (nlohmann) was most of a conda pack's collection time.
// The element lives in the calling thread's parser, until that thread loads the next file.
Json load_json(const std::string& path) {
  thread_local simdjson::dom::parser parser;  // its DOM holds copies: the text may go
  Json root;
  if (auto error = parser.parse(util::read_file(path)).get(root))
    throw Error(fmt::format("{}: invalid JSON: {}", path, simdjson::error_message(error)));
  return root;
}

// object[key] as a string; fallback where it is missing or not a string.
std::string string_field(Json object, const char* key, std::string_view fallback = {}) {
  std::string_view value;
  if (object[key].get_string().get(value)) return std::string(fallback);
  return std::string(value);
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

void check_editables(const std::string& prefix, const std::string& site_packages) {
  std::string sp = prefix + "/" + site_packages;
  std::vector<std::string> editable;
  std::error_code ec;
  for (const auto& ent : std::filesystem::directory_iterator(sp, ec)) {
    std::string name = ent.path().filename().string();
    if (ent.path().extension() == ".dist-info") {
      std::string direct = ent.path().string() + "/direct_url.json";
      if (!exists(direct)) continue;
      bool is_editable = false;
      if (!load_json(direct)["dir_info"]["editable"].get_bool().get(is_editable) && is_editable)
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
    Json noarch;
    if (load_json(path)["noarch"].get(noarch)) return "";
    return string_field(noarch, "type");
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

// A file packed as the environment holds it, scanned for the prefix.
PackItem from_env(const std::string& prefix, const std::string& rel) {
  PackItem item;
  item.target = rel;
  item.source = prefix + "/" + rel;
  item.detect = Detect::scan;
  item.placeholder = prefix;
  return item;
}

// One conda-meta record: the package, where its package cache entry is, the files it installed.
struct PackageRecord {
  std::string name;     // the record's file name in conda-meta
  std::string path;     // the record itself
  std::string package;  // its "name"
  std::string version;
  std::string id;             // name-version, for messages
  std::string source;         // link.source, the package cache entry ("" when the record has none)
  std::string site_packages;  // CEP 17's python_site_packages_path, "" when absent
  std::vector<std::string> files;
};

PackageRecord read_record(const std::string& prefix, const std::string& record_name) {
  PackageRecord r;
  r.name = record_name;
  r.path = prefix + "/conda-meta/" + record_name;
  Json info = load_json(r.path);
  r.package = string_field(info, "name", record_name);
  r.version = string_field(info, "version");
  r.id = r.package + "-" + string_field(info, "version", "?");
  Json link;
  if (!info["link"].get(link)) r.source = string_field(link, "source");
  r.site_packages = string_field(info, "python_site_packages_path");
  simdjson::dom::array files;
  if (!info["files"].get_array().get(files))
    for (Json f : files) {
      std::string_view file;
      if (!f.get_string().get(file) && file != ".nonadmin") r.files.emplace_back(file);
    }
  return r;
}

// A path of a package cache entry, as the entry's info/ lists it.
struct CachedPath {
  std::string rel;  // in the cache entry
  bool directory = false;
  std::optional<PrefixRecord> prefix{};  // where it holds the build prefix, and how
};

// info/paths.json where the entry has one, else info/files with info/has_prefix.
std::vector<CachedPath> cached_paths(const std::string& source) {
  std::vector<CachedPath> out;
  std::string paths_json = source + "/info/paths.json";
  if (exists(paths_json)) {
    simdjson::dom::array paths;
    if (load_json(paths_json)["paths"].get_array().get(paths))
      throw Error(fmt::format("{}: has no \"paths\" list", paths_json));
    for (Json p : paths) {
      std::string_view rel;
      if (p["_path"].get_string().get(rel))
        throw Error(fmt::format("{}: an entry of \"paths\" has no \"_path\"", paths_json));
      CachedPath path{std::string(rel)};
      std::string_view placeholder;
      // A directory entry names a directory, which conda-pack then reports as missing when it is
      // not empty; ferry lets the walk find whatever the directory holds.
      if (string_field(p, "path_type") == "directory") {
        path.directory = true;
      } else if (!p["prefix_placeholder"].get_string().get(placeholder)) {
        // CEP 34: file_mode defaults to text (conda-pack treats a missing mode as no prefix).
        path.prefix =
            PrefixRecord{std::string(placeholder), string_field(p, "file_mode", "text") == "binary"
                                                       ? format::RelocMode::binary
                                                       : format::RelocMode::text};
      }
      out.push_back(std::move(path));
    }
    return out;
  }
  std::map<std::string, PrefixRecord> has_prefix;
  if (exists(source + "/info/has_prefix"))
    has_prefix = read_has_prefix(source + "/info/has_prefix");
  for (const std::string& rel : read_lines(source + "/info/files")) {
    CachedPath path{rel};
    if (auto it = has_prefix.find(rel); it != has_prefix.end()) path.prefix = it->second;
    out.push_back(std::move(path));
  }
  return out;
}

// A conda-meta record as loaded: the record, and its package cache entry's type and paths when
// the entry exists.
struct LoadedPackage {
  PackageRecord record;
  bool cached = false;  // link.source names an entry that exists
  bool noarch_python = false;
  std::vector<CachedPath> paths;  // the entry's, when cached
};

// collect_conda's passes share one Collecting: the environment, its records as loaded, what the
// walk found, and the items chosen so far with what went wrong on the way.
struct Collecting {
  const PackOptions& options;
  const std::string& prefix;
  Collection c{};
  std::vector<LoadedPackage> packages{};  // conda-meta's records, sorted by file name
  std::optional<PythonInfo> python{};
  std::vector<std::string> on_disk_list{};  // the walk, in its order
  std::set<std::string> on_disk{};
  std::map<std::string, PackItem> chosen{};  // target -> item
  std::set<std::string> clobbered{};
  std::map<std::string, std::vector<std::string>> missing{};  // package -> targets
  std::vector<std::string> uncached{};

  void add(PackItem item) {
    auto [it, inserted] = chosen.emplace(item.target, item);
    if (!inserted) clobbered.insert(item.target);
  }
};

std::vector<std::string> conda_meta_records(const std::string& prefix) {
  std::vector<std::string> records;
  for (const auto& ent : std::filesystem::directory_iterator(prefix + "/conda-meta"))
    if (ent.path().extension() == ".json") records.push_back(ent.path().filename().string());
  std::sort(records.begin(), records.end());
  return records;
}

// Every record and its cache entry's info/ parsed once, in parallel (a large env's JSON runs to
// tens of MB), while the env is walked. A failure is reported for the first record, in order,
// that failed, whichever thread met it first.
void load_packages_and_walk(Collecting& cx) {
  std::vector<std::string> names = conda_meta_records(cx.prefix);
  cx.packages.resize(names.size());
  std::vector<std::exception_ptr> failed(names.size());
  JobArena arena(cx.options.jobs ? cx.options.jobs : util::default_jobs());
  arena.execute([&] {
    tbb::parallel_invoke(
        [&] {
          cx.on_disk_list = walk_tree(cx.prefix, &skip_top_level);
          cx.on_disk = std::set<std::string>(cx.on_disk_list.begin(), cx.on_disk_list.end());
        },
        [&] {
          tbb::parallel_for(std::size_t{0}, names.size(), [&](std::size_t i) {
            try {
              LoadedPackage& p = cx.packages[i];
              p.record = read_record(cx.prefix, names[i]);
              p.cached = !p.record.source.empty() && exists(p.record.source);
              if (!p.cached) return;
              p.noarch_python = noarch_type(p.record.source) == "python";
              p.paths = cached_paths(p.record.source);
            } catch (...) {
              failed[i] = std::current_exception();
            }
          });
        });
  });
  for (const std::exception_ptr& e : failed)
    if (e) std::rethrow_exception(e);
}

// The installed python (its version, its site-packages) from the records; editable installs
// refused unless asked.
void find_python(Collecting& cx) {
  for (const LoadedPackage& p : cx.packages) {
    const PackageRecord& r = p.record;
    if (!r.name.starts_with("python-") || r.package != "python") continue;
    if (cx.python)
      throw Error(fmt::format("{}: more than one python package is installed", cx.prefix));
    // CEP 17's field names the real directory (python3.13t for free-threaded builds);
    // conda-pack ignores it, ferry uses it when present.
    cx.python = PythonInfo{r.version,
                           !r.site_packages.empty()
                               ? r.site_packages
                               : "lib/python" + python_major_minor(r.version) + "/site-packages"};
  }
  if (!cx.python) return;
  cx.c.python_version = cx.python->version;
  if (!cx.options.ignore_editable_packages) check_editables(cx.prefix, cx.python->site_packages);
}

// A package with a cache entry: its files from the entry, with the prefix records the entry
// keeps; a noarch python package's paths mapped to this env's python.
std::vector<PackItem> cached_items(const Collecting& cx, const LoadedPackage& p) {
  const PackageRecord& r = p.record;
  bool is_noarch = p.noarch_python;
  if (is_noarch && !cx.python)
    throw Error(
        fmt::format("{}: noarch python package {} but no python is installed", cx.prefix, r.id));
  auto map_path = [&](const std::string& path) {
    if (!is_noarch) return path;
    if (path.starts_with("site-packages/")) return cx.python->site_packages + path.substr(13);
    if (path.starts_with("python-scripts/")) return "bin" + path.substr(14);
    return path;
  };
  std::vector<PackItem> items;
  std::set<std::string> seen;
  for (const CachedPath& path : p.paths) {
    std::string target = map_path(path.rel);
    seen.insert(target);
    if (path.directory) continue;
    PackItem item;
    item.target = std::move(target);
    item.source = r.source + "/" + path.rel;
    if (path.prefix) {
      item.detect = Detect::known;
      item.placeholder = path.prefix->placeholder;
      item.reloc = path.prefix->mode;
    }
    items.push_back(std::move(item));
  }
  if (is_noarch) {  // files made at link time: .pyc and entry points, read from the env
    for (const std::string& f : r.files) {
      if (seen.count(f)) continue;
      if (f.size() > 4 && f.ends_with(".pyc") && !cx.on_disk.count(f)) continue;
      PackItem item;
      if (f.starts_with("bin/")) {
        item = from_env(cx.prefix, f);
      } else {
        item.target = f;
        item.source = cx.prefix + "/" + f;
      }
      items.push_back(std::move(item));
    }
  }
  return items;
}

// One package's files (from its cache entry, else from the env, scanned), those missing from the
// env noted, and its conda-meta record itself.
void collect_package(Collecting& cx, const LoadedPackage& p) {
  const PackageRecord& r = p.record;
  std::vector<PackItem> items;
  if (!p.cached) {
    cx.uncached.push_back(r.id);
    for (const std::string& f : r.files) items.push_back(from_env(cx.prefix, f));
  } else {
    items = cached_items(cx, p);
  }
  for (PackItem& item : items) {
    if (!cx.on_disk.count(item.target)) {
      cx.missing[r.id].push_back(item.target);
      if (cx.options.ignore_missing_files) continue;
    }
    cx.add(std::move(item));
  }
  PackItem meta;
  meta.target = "conda-meta/" + r.name;
  meta.source = r.path;
  meta.rewrite_conda_meta = true;
  cx.add(std::move(meta));
}

void add_history(Collecting& cx) {
  if (!exists(cx.prefix + "/conda-meta/history")) return;
  PackItem h;
  h.target = "conda-meta/history";
  h.source = cx.prefix + "/conda-meta/history";
  cx.add(std::move(h));
}

void check_missing(Collecting& cx) {
  if (cx.missing.empty() || cx.options.ignore_missing_files) return;
  std::string detail;
  for (auto& [pkg, targets] : cx.missing) {
    std::sort(targets.begin(), targets.end());
    detail += fmt::format("{}{} ({} file{}, e.g. {})", detail.empty() ? "" : "; ", pkg,
                          targets.size(), targets.size() == 1 ? "" : "s", targets.front());
  }
  throw Error(
      fmt::format("{}: files managed by conda are missing (deleted or overwritten, "
                  "often by pip): {}; use --ignore-missing-files to pack without them",
                  cx.prefix, detail));
}

// A path claimed by two packages: the env holds one of them; pack what the env holds.
void pack_clobbered_from_env(Collecting& cx) {
  for (const std::string& target : cx.clobbered) {
    PackItem& item = cx.chosen[target];
    item.source = cx.prefix + "/" + target;
    item.detect = Detect::scan;
    item.placeholder = cx.prefix;
    item.reloc = format::RelocMode::none;
  }
  if (!cx.clobbered.empty())
    cx.c.warnings.push_back(
        fmt::format("{}: {} paths are claimed by more than one package (e.g. {}); "
                    "packed as they are in the environment",
                    cx.prefix, cx.clobbered.size(), *cx.clobbered.begin()));
}

// Unmanaged files (pip installs, user data): from the env, scanned for the prefix. Only the
// bytecode of managed sources is left out, so the unmanaged files join `chosen` after the walk:
// otherwise an unmanaged X.py that sorts before __pycache__ would hide its own X.*.pyc.
void add_unmanaged(Collecting& cx) {
  static const std::set<std::string> shims = {"bin/conda", "bin/activate", "bin/deactivate"};
  std::vector<PackItem> unmanaged;
  for (const std::string& rel : cx.on_disk_list) {
    if (cx.chosen.count(rel) || shims.count(rel)) continue;
    if (auto src = py_source_of(rel); src && cx.chosen.count(*src)) continue;
    unmanaged.push_back(from_env(cx.prefix, rel));
  }
  for (PackItem& item : unmanaged) cx.chosen.emplace(item.target, std::move(item));
}

void warn_uncached(Collecting& cx) {
  if (cx.uncached.empty()) return;
  std::sort(cx.uncached.begin(), cx.uncached.end());
  cx.c.warnings.push_back(fmt::format(
      "{}: {} conda packages have no package cache entry (e.g. {}); their files are taken from "
      "the environment and only their text files are relocated",
      cx.prefix, cx.uncached.size(), cx.uncached.front()));
}

// Each chosen item's type, mode and times from its source; only regular files are relocated.
void stat_chosen(Collecting& cx) {
  std::vector<PackItem>& items = cx.c.items;
  for (auto& [target, item] : cx.chosen) items.push_back(std::move(item));
  std::vector<char> found = stat_items(items, cx.options.jobs);
  for (std::size_t i = 0; i < items.size(); ++i) {
    PackItem& item = items[i];
    if (!found[i])
      throw Error(
          fmt::format("{}: cannot read (package cache changed while packing?)", item.source));
    if (item.type != format::EntryType::file) {
      item.detect = Detect::none;
      item.reloc = format::RelocMode::none;
    }
  }
}

}  // namespace

Collection collect_conda(const PackOptions& options, const std::string& prefix) {
  Collecting cx{options, prefix};
  cx.c.kind = Kind::conda;
  cx.c.prefix = prefix;
  load_packages_and_walk(cx);  // every record and cache entry, and what the env holds on disk
  find_python(cx);             // its version; editable installs refused unless asked
  for (const LoadedPackage& p : cx.packages)
    collect_package(cx, p);  // each package's files, from its cache entry if any
  add_history(cx);
  check_missing(cx);            // managed files the env lost refuse the pack, unless asked
  pack_clobbered_from_env(cx);  // paths two packages claim
  add_unmanaged(cx);            // what no package claims
  warn_uncached(cx);
  stat_chosen(cx);
  return std::move(cx.c);
}

}  // namespace ferry::env
