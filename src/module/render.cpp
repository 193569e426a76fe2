// Modulefile text for Lmod (Lua) and Environment Modules (Tcl). Every command is one the module
// engine reverses on unload; see the README's "Modules" section for why each one was chosen.
#include <tuple>

#include <fmt/format.h>

#include "module/module.hpp"
#include "util/util.hpp"

namespace ferry::module {
namespace {

// A Lua string literal.
std::string lua_str(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\{:03d}", u);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// One Tcl word: braced when that keeps it literal, otherwise every special character escaped.
std::string tcl_word(std::string_view s) {
  if (!s.empty() && s.find_first_of("{}\\") == std::string_view::npos)
    return fmt::format("{{{}}}", s);
  std::string out;
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (std::string_view("{}[]$\\\"; \t").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out.empty() ? "{}" : out;
}

std::string kind_word(env::Kind kind) { return kind == env::Kind::venv ? "venv" : "conda"; }

struct Plan {
  std::vector<std::pair<std::string, std::optional<std::string>>> vars;  // nullopt: unset
};

// What activation does (as `ferry activate` and conda do, minus the prompt).
Plan activation(const EnvInfo& info) {
  Plan p;
  if (info.kind == env::Kind::venv) {
    p.vars.emplace_back("VIRTUAL_ENV", info.prefix);
  } else {
    p.vars.emplace_back("CONDA_PREFIX", info.prefix);
    p.vars.emplace_back("CONDA_DEFAULT_ENV", info.prefix);
  }
  p.vars.emplace_back("PYTHONHOME", std::nullopt);
  for (const auto& [k, v] : info.env_vars) p.vars.emplace_back(k, v);  // conda's `env config vars`
  return p;
}

std::string package_line(const std::vector<Package>& packages) {
  std::vector<std::string> named;
  for (const Package& p : packages) named.push_back(p.name + " " + p.version);
  return util::join(named, ", ");
}

std::string user_dirs_help(const CondaRoot* root) {
  if (!root) return "";
  std::string out =
      "\nconda keeps new envs and downloaded packages in the first writable directory of\n";
  if (root->user_dirs.empty()) {
    out += fmt::format(
        "CONDA_ENVS_PATH and CONDA_PKGS_DIRS; this module puts the shared {0}/envs and\n"
        "{0}/pkgs in front of yours (read-only for most users: conda then uses ~/.conda).\n",
        root->root);
  } else {
    out += fmt::format(
        "CONDA_ENVS_PATH and CONDA_PKGS_DIRS; this module puts yours first ({0}/envs and\n"
        "{0}/pkgs, expanded when it is loaded), then the shared {1}/envs and {1}/pkgs, so\n"
        "  conda create -n NAME ...   makes {0}/envs/NAME and reuses the shared packages.\n",
        root->user_dirs_pattern, root->root);
  }
  return out;
}

std::string help_text(const EnvInfo& info, const Naming& naming, const CondaRoot* root) {
  std::string py =
      info.python_version.empty() ? "" : fmt::format(" (Python {})", info.python_version);
  std::string out = fmt::format("{}/{}: the {} environment {}{}.\n", naming.name, naming.version,
                                kind_word(info.kind), info.prefix, py);
  if (info.unpacked_from) out += fmt::format("Unpacked by ferry from {}.\n", *info.unpacked_from);
  std::vector<Package> keys = key_packages(info);
  if (!keys.empty()) {
    out += "\nKey packages:\n";
    for (const Package& p : keys) out += fmt::format("  {} {}\n", p.name, p.version);
  }
  std::string q = util::shell_word(info.prefix);
  out += fmt::format(
      "{} packages in all; list them with:\n  {}\n", info.packages.size(),
      info.kind == env::Kind::conda ? "conda list --prefix " + q : q + "/bin/python -m pip list");
  out += fmt::format(
      "\nLoading puts {}/bin first on PATH, sets {}, unsets PYTHONHOME", info.prefix,
      info.kind == env::Kind::venv ? "VIRTUAL_ENV" : "CONDA_PREFIX and CONDA_DEFAULT_ENV");
  if (!info.activate_scripts.empty())
    out += " and sources the environment's etc/conda/activate.d scripts";
  out += ";\nunloading gives every variable back the value it had before.\n";
  out += user_dirs_help(root);
  out += "\nExtend it:\n";
  if (info.kind == env::Kind::conda) {
    out += "  - for yourself, on top of it:   pip install --user PACKAGE\n";
    out +=
        fmt::format("  - a venv on top of it:          ferry venv $SCRATCH/myvenv --base {}\n", q);
    out += fmt::format(
        "  - clone it and change the copy: conda create --prefix $SCRATCH/myclone --clone {}\n", q);
  } else {
    out += fmt::format(
        "  - install into it (if you may write it): {}/bin/python -m pip install PACKAGE\n", q);
    out += "  - or make your own venv on the same base: ferry venv $SCRATCH/myvenv --base BASE\n";
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> whatis(const EnvInfo& info, const Naming& naming) {
  std::vector<std::pair<std::string, std::string>> w = {
      {"Name", naming.name},
      {"Version", naming.version},
      {"Category", "python " + kind_word(info.kind)},
      {"Keywords", "python " + kind_word(info.kind) + " environment"},
      {"Description",
       fmt::format("{} environment {}{}", kind_word(info.kind), info.prefix,
                   info.python_version.empty() ? "" : " (Python " + info.python_version + ")")}};
  std::vector<Package> keys = key_packages(info);
  if (!keys.empty()) w.emplace_back("Packages", package_line(keys));
  return w;
}

// Lmod 8.6 keeps the bottom of a pushenv stack (__LMOD_STACK_<VAR>) after the last pop, and a later
// pushenv would restore that stale value instead of the one the user has now: reseed it on load.
constexpr std::string_view k_lua_helpers = R"(local function ferry_b64(s)
  local a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
  local out = {}
  for i = 1, #s, 3 do
    local b1, b2, b3 = s:byte(i, i + 2)
    local n = b1 * 65536 + (b2 or 0) * 256 + (b3 or 0)
    local c = {}
    for k = 3, 0, -1 do
      local d = math.floor(n / 64 ^ k) % 64
      c[#c + 1] = a:sub(d + 1, d + 1)
    end
    if not b2 then c[3] = "=" end
    if not b3 then c[4] = "=" end
    out[#out + 1] = table.concat(c)
  end
  return table.concat(out)
end
local function ferry_pushenv(name, value)
  if mode() == "load" then
    local stack, cur = os.getenv("__LMOD_STACK_" .. name), os.getenv(name)
    if stack and not stack:find(":", 1, true) then
      local want = cur and cur ~= "" and ferry_b64(cur) or nil
      if stack ~= want then
        if want then setenv("__LMOD_STACK_" .. name, want) else unsetenv("__LMOD_STACK_" .. name) end
      end
    end
  end
  pushenv(name, value)
end
-- After the activate.d scripts: a variable they assigned whole (source_sh records a setenv, which
-- unsets on unload) is pushed once more over the value it had before them, so the pop on unload,
-- which comes after source_sh's own undo, gives that value back (or leaves it unset).
local function ferry_keep(name, before)
  if mode() == "load" then
    local key = "__LMOD_STACK_" .. name
    local stack = os.getenv(key)
    if not stack or not stack:find(":", 1, true) then
      if before and before ~= "" then setenv(key, ferry_b64(before)) else unsetenv(key) end
    end
  end
  local now = os.getenv(name)
  if now == nil then pushenv(name, false) else pushenv(name, now) end
end
)";

// Environment Modules 5.2's pushenv cuts values at ':' and cannot push "unset": each variable's
// previous value is kept in __FERRY_SAVED_<VAR> ("=" + value; absent when it was unset) and put
// back on unload by `unsetenv VAR VALUE`, which sets VAR to VALUE when the module is unloaded. On
// unload, `setenv VAR VALUE` unsets VAR in the shell but leaves VALUE visible to the next
// modulefile the same command evaluates (the load half of a switch would save it as the user's):
// `setenv VAR {}` clears it.
//
// Environment Modules 4.5 (RHEL 8's) and 4.6 lack getenv --return-value and family (5.1). getenv
// with a default answers alike in every version while loading and unloading (only `module
// display` differs: 5.x shows "$VAR"); ::env would not do, as 5.x keeps an unset variable there,
// empty. The family is kept as 5.1 keeps it, in MODULES_FAMILY_<NAME>, and a load of another
// member refused as 5.1 refuses it.
constexpr std::string_view k_tcl_helpers = R"(proc ferry_family {name} {
  if {[info commands family] ne {}} { return [family $name] }
  set var MODULES_FAMILY_[string toupper $name]
  set other [getenv $var {}]
  if {[module-info mode load] && $other ne {} && $other ne [module-info name]} {
    puts stderr "[module-info name]: cannot be loaded beside $other (family $name): unload it first"
    return -code break
  }
  setenv $var [module-info name]
}
proc ferry_env {name args} {
  set saved __FERRY_SAVED_$name
  if {[module-info mode unload]} {
    setenv $name {}
    set old [getenv $saved __ferry_unset__]
    if {$old ne {__ferry_unset__}} {
      setenv $saved $old
      unsetenv $name [string range $old 1 end]
    }
    return
  }
  if {[module-info mode load]} {
    set cur [getenv $name __ferry_unset__]
    if {$cur ne {__ferry_unset__}} { setenv $saved =$cur }
  }
  if {[llength $args]} { setenv $name [lindex $args 0] } else { unsetenv $name }
}
# Around the activate.d scripts: source-sh records a variable they assign whole as setenv, which
# unsets it on unload; ferry_before keeps its earlier value and ferry_after, evaluated after
# source-sh's undo on unload, puts it back.
proc ferry_before {name} {
  set saved __FERRY_SAVED_$name
  if {[module-info mode load]} {
    set cur [getenv $name __ferry_unset__]
    if {$cur ne {__ferry_unset__}} { setenv $saved =$cur }
  }
}
proc ferry_after {name} {
  set saved __FERRY_SAVED_$name
  if {![module-info mode unload]} { return }
  set old [getenv $saved __ferry_unset__]
  if {$old ne {__ferry_unset__}} {
    setenv $saved $old
    unsetenv $name [string range $old 1 end]
  } else {
    setenv $name {}
  }
}
)";

// --conda-root: CONDA_ENVS_PATH / CONDA_PKGS_DIRS get the user's directories (--user-dirs, expanded
// now, when loaded), then ROOT's, then what the user had: set whole, so unload restores the user's
// value exactly even when the variables the pattern names have changed since the load.
constexpr std::string_view k_lua_root_helpers = R"(local function ferry_expand(parts)
  local out = ""
  for _, p in ipairs(parts) do
    if type(p) == "table" then
      local v = os.getenv(p[1])
      if not v or v == "" then return nil, p[1] end
      out = out .. v
    else
      out = out .. p
    end
  end
  return out
end
local function ferry_dirs(name, user, shared, sep)
  local v = user and (user .. sep .. shared) or shared
  local cur = os.getenv(name)
  if cur and cur ~= "" then v = v .. sep .. cur end
  return v
end
)";

constexpr std::string_view k_tcl_root_helpers = R"(proc ferry_expand {parts} {
  set out {}
  foreach {kind text} $parts {
    if {$kind eq {var}} {
      set v [getenv $text {}]
      if {$v eq {}} { return [list {} $text] }
      append out $v
    } else {
      append out $text
    }
  }
  return [list $out {}]
}
proc ferry_dirs {name user shared sep} {
  set v $shared
  if {$user ne {}} { set v $user$sep$shared }
  set cur [getenv $name {}]
  if {$cur ne {}} { append v $sep$cur }
  return $v
}
)";

// The message a load prints when a variable --user-dirs names is unset: before and after its name.
std::pair<std::string, std::string> unset_message(const Naming& naming, const CondaRoot& root) {
  return {fmt::format("{}/{}: $", naming.name, naming.version),
          fmt::format(" is not set: your conda envs and packages go to conda's defaults, not to {}",
                      root.user_dirs_pattern)};
}

std::string render_lua_root(const Naming& naming, const CondaRoot& root) {
  std::string out(k_lua_root_helpers);
  if (root.user_dirs.empty()) {
    out += "local ferry_user = nil\n";
  } else {
    std::vector<std::string> parts;
    for (const CondaRoot::Part& p : root.user_dirs)
      parts.push_back(p.variable ? "{" + lua_str(p.text) + "}" : lua_str(p.text));
    out += "local ferry_user, ferry_missing = ferry_expand({" + util::join(parts, ", ") + "})\n";
    auto [before, after] = unset_message(naming, root);
    out += "if not ferry_user and mode() == \"load\" then\n  LmodMessage(" + lua_str(before) +
           " .. ferry_missing .. " + lua_str(after) + ")\nend\n";
  }
  for (const auto& [var, sub, sep] :
       {std::tuple{"CONDA_ENVS_PATH", "/envs", ":"}, {"CONDA_PKGS_DIRS", "/pkgs", ","}})
    out += fmt::format(
        "ferry_pushenv(\"{0}\", ferry_dirs(\"{0}\", ferry_user and ferry_user .. \"{1}\", {2}, "
        "\"{3}\"))\n",
        var, sub, lua_str(root.root + sub), sep);
  return out;
}

std::string render_tcl_root(const Naming& naming, const CondaRoot& root) {
  std::string out(k_tcl_root_helpers);
  if (root.user_dirs.empty()) {
    out += "set ferry_user {}\n";
  } else {
    std::vector<std::string> parts;
    for (const CondaRoot::Part& p : root.user_dirs)
      parts.push_back((p.variable ? "var " : "lit ") + tcl_word(p.text));
    out +=
        "lassign [ferry_expand [list " + util::join(parts, " ") + "]] ferry_user ferry_missing\n";
    auto [before, after] = unset_message(naming, root);
    out += "if {$ferry_user eq {} && [module-info mode load]} {\n  puts stderr [string cat " +
           tcl_word(before) + " $ferry_missing " + tcl_word(after) + "]\n}\n";
  }
  for (const auto& [var, sub, sep] :
       {std::tuple{"CONDA_ENVS_PATH", "/envs", ":"}, {"CONDA_PKGS_DIRS", "/pkgs", ","}})
    out += fmt::format(
        "ferry_env {0} [ferry_dirs {0} [expr {{$ferry_user eq {{}} ? {{}} : \"$ferry_user{1}\"}}] "
        "{2} {3}]\n",
        var, sub, tcl_word(root.root + sub), sep);
  return out;
}

std::string render_lua(const EnvInfo& info, const Naming& naming, const CondaRoot* root) {
  std::string out = fmt::format(
      "-- {}/{}: the {} environment {}\n"
      "-- Written by `ferry module`; write it again rather than edit it. Every command below is\n"
      "-- reversed by `module unload`, which gives the shell back exactly as it was.\n",
      naming.name, naming.version, kind_word(info.kind), info.prefix);
  if (!info.activate_scripts.empty())
    out += fmt::format(
        "if convertToCanonical(LmodVersion()) < convertToCanonical(\"8.6\") then\n"
        "  LmodError({})\nend\n",
        lua_str(naming.name + "/" + naming.version + " needs Lmod 8.6 or newer (source_sh)"));
  out += "\nhelp(" + lua_str(help_text(info, naming, root)) + ")\n";
  for (const auto& [k, v] : whatis(info, naming)) out += "whatis(" + lua_str(k + ": " + v) + ")\n";
  out += "\n";
  if (!naming.family.empty()) out += "family(" + lua_str(naming.family) + ")\n";
  out += k_lua_helpers;
  out += "prepend_path(\"PATH\", " + lua_str(info.prefix + "/bin") + ")\n";
  for (const auto& [name, value] : activation(info).vars)
    out += "ferry_pushenv(" + lua_str(name) + ", " + (value ? lua_str(*value) : "false") + ")\n";
  if (root) out += render_lua_root(naming, *root);
  // Lmod runs source_sh's shell with LD_LIBRARY_PATH and LD_PRELOAD reset to their values when Lmod
  // was configured (tools/capture.lua), so a script's edit of them is seen as a fresh setenv that
  // drops the user's entries: those are put back after it (append_path), and the old value is kept.
  std::vector<std::string> keep = info.script_vars, hidden;
  for (const std::string& v : info.script_list_vars)
    if (v == "LD_LIBRARY_PATH" || v == "LD_PRELOAD") hidden.push_back(v);
  keep.insert(keep.end(), hidden.begin(), hidden.end());
  if (!keep.empty()) out += "local ferry_before = {}\n";
  for (const std::string& v : keep)
    out += "ferry_before[" + lua_str(v) + "] = os.getenv(" + lua_str(v) + ")\n";
  for (const std::string& script : info.activate_scripts)
    out += "source_sh(\"bash\", " + lua_str(util::shell_word(script)) + ")\n";
  for (const std::string& v : hidden)
    out += fmt::format(
        "if ferry_before[{0}] and ferry_before[{0}] ~= \"\" then append_path({0}, "
        "ferry_before[{0}]) end\n",
        lua_str(v));
  for (const std::string& v : keep)
    out += "ferry_keep(" + lua_str(v) + ", ferry_before[" + lua_str(v) + "])\n";
  return out;
}

std::string render_tcl(const EnvInfo& info, const Naming& naming, const CondaRoot* root) {
  std::string out = fmt::format(
      "#%Module4.5\n"
      "# {}/{}: the {} environment {}\n"
      "# Written by `ferry module`; write it again rather than edit it. Every command below is\n"
      "# reversed by `module unload`, which gives the shell back exactly as it was.\n\n",
      naming.name, naming.version, kind_word(info.kind), info.prefix);
  out +=
      "proc ModulesHelp {} {\n  puts stderr " + tcl_word(help_text(info, naming, root)) + "\n}\n";
  for (const auto& [k, v] : whatis(info, naming))
    out += "module-whatis " + tcl_word(k + ": " + v) + "\n";
  out += "\n";
  out += k_tcl_helpers;
  if (!naming.family.empty()) out += "ferry_family " + tcl_word(naming.family) + "\n";
  if (!info.activate_scripts.empty())
    out += "if {[info commands source-sh] eq {}} {\n  puts stderr " +
           tcl_word(naming.name + "/" + naming.version +
                    ": needs Environment Modules 4.6 or newer (source-sh)") +
           "\n  break\n}\n";
  out += "prepend-path PATH " + tcl_word(info.prefix + "/bin") + "\n";
  for (const auto& [name, value] : activation(info).vars)
    out += "ferry_env " + name + (value ? " " + tcl_word(*value) : "") + "\n";
  if (root) out += render_tcl_root(naming, *root);
  for (const std::string& v : info.script_vars) out += "ferry_before " + v + "\n";
  for (const std::string& script : info.activate_scripts)
    out += "source-sh bash " + tcl_word(script) + "\n";
  for (const std::string& v : info.script_vars) out += "ferry_after " + v + "\n";
  return out;
}

}  // namespace

std::string render(const EnvInfo& info, const Naming& naming, System system,
                   const CondaRoot* root) {
  return system == System::lmod ? render_lua(info, naming, root) : render_tcl(info, naming, root);
}

}  // namespace ferry::module
