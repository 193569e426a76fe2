// ferry::env — Python environments: what to pack (conda envs, venvs, install prefixes), how to
// relocate them, and the pack/unpack/inspect/activate operations. Built on format and util.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/format.hpp"

namespace ferry::env {

// This program and its version, "ferry 0.1.0": CMake's project VERSION, the one place it is
// written (version.cpp.in). Every manifest's `tool` field records it; `ferry --version` starts
// with it.
extern const char k_tool[];

enum class Kind { conda, venv, prefix };
NLOHMANN_JSON_SERIALIZE_ENUM(Kind, {{Kind::conda, "conda"},
                                    {Kind::venv, "venv"},
                                    {Kind::prefix, "prefix"}})
// Throws Error naming the path when it is not a directory.
Kind detect_kind(const std::string& prefix);

// conda's env directories, in conda's order: CONDA_ENVS_DIRS and CONDA_ENVS_PATH entries, the
// root installation's envs/ (the root: CONDA_ROOT, else CONDA_EXE's, else CONDA_PREFIX's), then
// ~/.conda/envs. `environ` is the process environment (or a recorded one).
std::vector<std::string> conda_envs_dirs(const std::map<std::string, std::string>& environ);
// `-n NAME` as conda resolves it: "base" (or "root") is the root installation; else NAME in the
// first envs directory that has it as a conda env (a conda-meta/ inside), else a prefix listed in
// ~/.conda/environments.txt whose last component is NAME. Throws a usage Error naming NAME and
// where it looked.
std::string find_conda_env(const std::string& name,
                           const std::map<std::string, std::string>& environ);

// What an environment's files say about its Python (python.cpp); nothing is run.
//
// pyvenv.cfg as site.py reads it: each line with a '=' is a key and a value, both without the
// blanks around them; a later line wins. Keys are compared as written (site.py lowercases them;
// venv, virtualenv and uv write them lowercase).
using PyvenvCfg = std::map<std::string, std::string>;
PyvenvCfg parse_pyvenv_cfg(std::string_view text);
// PREFIX/pyvenv.cfg, parsed; Error when it cannot be read.
PyvenvCfg read_pyvenv_cfg(const std::string& prefix);
// The Python version a pyvenv.cfg records: `version` (venv), else `version_info` (virtualenv, uv);
// "" when it has neither.
std::string pyvenv_python_version(const PyvenvCfg& cfg);
// The X.Y of the tree's lib/pythonX.Y directory ("3.11"); "" when it has none.
std::string python_version_of_tree(const std::string& prefix);
// "3.11" of "3.11.7"; a version with fewer dots stays as it is.
std::string python_major_minor(std::string_view version);

// ---------------------------------------------------------------------------------------------
// Relocation rules, byte-exact with conda where conda is right.
namespace relocation {

// Text: every occurrence of from becomes to. Returns false (out untouched) when from is absent.
bool replace_text(std::string_view data, std::string_view from, std::string_view to,
                  std::string& out);

enum class BinaryResult { unchanged, replaced, too_long };
// Binary (conda's C-string rule): each run from an occurrence of `from` to the next NUL has every
// `from` in it replaced and (len(from) - len(to)) * count NULs added after its NUL, so the file
// keeps its length. An occurrence with no NUL before the end is left alone. too_long: `to` is
// longer than `from` and an occurrence exists (out is then unspecified).
BinaryResult replace_binary(std::string_view data, std::string_view from, std::string_view to,
                            std::string& out);

// One C string of the binary rule: appends cstring (no NUL in it) with every `from` replaced by
// `to` (not longer), its NUL, and the NULs that keep its length.
void append_padded_cstring(std::string_view cstring, std::string_view from, std::string_view to,
                           std::string& out);

// File ranges [begin, end) of the DT_RPATH and DT_RUNPATH strings of a 64-bit little-endian ELF
// file (end is the terminating NUL). Empty for anything else or a malformed file.
std::vector<std::pair<std::size_t, std::size_t>> elf_search_paths(std::string_view data);

// The binary rule inside the ELF search-path strings only. Other copies of the prefix in a binary
// are left alone: linkers merge string tails, so `/old/prefix/3.11.7` may also be the storage of
// the version string "3.11.7", and padding it with NULs would empty that string.
BinaryResult replace_search_paths(std::string_view data, std::string_view from, std::string_view to,
                                  std::string& out);

// The same rules for a file too large to hold, fed in pieces: feed() appends to out what can be
// written so far, finish() the rest. The output is byte-identical to the whole-buffer functions'.
// A binary string (occurrence to NUL) longer than k_max_run cannot be held: it is an Error, not a
// silent skip. changed()/too_long() tell what happened, as BinaryResult does.
class StreamReplacer {
 public:
  static constexpr std::size_t k_max_run = 16u << 20;
  enum class Rule { text, binary };
  StreamReplacer(Rule rule, std::string from, std::string to, std::string subject);
  // The rule of a record: text, or binary (conda's C-string rule) for anything else.
  StreamReplacer(format::RelocMode mode, std::string from, std::string to, std::string subject)
      : StreamReplacer(mode == format::RelocMode::text ? Rule::text : Rule::binary, std::move(from),
                       std::move(to), std::move(subject)) {}
  void feed(std::string_view piece, std::string& out);
  void finish(std::string& out);
  bool changed() const { return m_changed; }
  bool too_long() const { return m_too_long; }

 private:
  void drain(std::string& out, bool at_end);
  Rule m_rule;
  std::string m_from, m_to, m_subject;
  std::string m_pending;  // input not yet written: a possible partial match, or an open C string
  bool m_in_run = false;  // m_pending starts at an occurrence whose NUL has not come yet
  bool m_changed = false, m_too_long = false;
  bool m_head_done = false;  // text: the first line has been checked for a long #!
  std::string m_head;        // text: output held until the first line is whole
};

// elf_search_paths of the file open at fd, read with pread (offsets into the file).
std::vector<std::pair<std::uint64_t, std::uint64_t>> elf_search_paths_in_file(int fd);

// The ELF search-path strings of the file open at fd as the binary rule rewrites them, with their
// file offsets (same lengths), nothing written: patches gets only the changed ones.
BinaryResult search_path_patches(int fd, std::string_view from, std::string_view to,
                                 const std::string& subject,
                                 std::vector<std::pair<std::uint64_t, std::string>>& patches);

// The binary rule inside the ELF search-path strings of the file open at fd (read with pread,
// rewritten with pwrite in place, same length): for files too large to hold.
BinaryResult replace_search_paths_in_file(int fd, std::string_view from, std::string_view to,
                                          const std::string& subject);

// Linux runs at most 127 bytes of a #! line, and a path with spaces cannot be a #! interpreter.
// Rewrites such a first line: a python interpreter gets the /bin/sh trampoline that conda uses
// (the script still runs with that exact interpreter), anything else `#!/usr/bin/env NAME ARGS`.
// Returns true when data changed.
bool fix_long_shebang(std::string& data);

}  // namespace relocation

// ---------------------------------------------------------------------------------------------
struct PackOptions {
  std::string prefix;
  std::string output;
  format::Codec codec = format::Codec::zstd;
  std::optional<int> level;  // zstd default 3, gzip default 6
  unsigned jobs = 0;         // 0: every core
  std::optional<std::string> dest_prefix;
  std::vector<std::string> excludes;
  bool ignore_missing_files = false;
  bool ignore_editable_packages = false;
  bool force = false;
  util::ProgressSink* progress = nullptr;  // told the bytes read, twice (both passes)
};

// The tree packed (bytes: its files' bytes, before compression).
struct PackResult : format::TreeCounts {
  Kind kind = Kind::prefix;
  std::string prefix, output, format, python_version;
  std::uint64_t bytes_out = 0, frames = 0;
  std::uint64_t text_records = 0, binary_records = 0;
  double seconds = 0;
  std::vector<std::pair<std::string, double>> phases;  // in order: "collect", "classify", ...
  std::vector<std::string> warnings;
};
// By hand, not FERRY_JSON_FIELDS: the tree's bytes are "bytes_in" there, beside "bytes_out", and
// the phases are one object, in the order they happened.
inline void to_json(nlohmann::ordered_json& json, const PackResult& r) {
  nlohmann::ordered_json phases = nlohmann::ordered_json::object();
  for (const auto& [name, seconds] : r.phases) phases[name] = seconds;
  json = {{"output", r.output},
          {"prefix", r.prefix},
          {"kind", r.kind},
          {"format", r.format},
          {"python_version", r.python_version},
          {"files", r.files},
          {"directories", r.directories},
          {"symlinks", r.symlinks},
          {"hardlinks", r.hardlinks},
          {"bytes_in", r.bytes},
          {"bytes_out", r.bytes_out},
          {"frames", r.frames},
          {"text_records", r.text_records},
          {"binary_records", r.binary_records},
          {"seconds", r.seconds},
          {"phases", phases},
          {"warnings", r.warnings}};
}

PackResult pack(const PackOptions& options);

struct UnpackOptions {
  std::string archive;
  std::string dest;
  // The path the tree will be used at, when not dest: a container image's /opt/env, written at
  // IMAGE/opt/env on the host. Empty: dest.
  std::string relocate_to;
  unsigned jobs = 0;
  bool force = false;
  util::ProgressSink* progress = nullptr;  // told the archive's bytes as its frames are decoded
};

// The tree unpacked.
struct UnpackResult : format::TreeCounts {
  std::string archive, dest, format, kind, source_prefix;
  bool already_present = false;  // the same archive was already unpacked there: nothing done
  std::uint64_t frames = 0;
  std::uint64_t relocated_files = 0;
  double seconds = 0;
  std::vector<std::string> warnings;
};
FERRY_JSON_FIELDS(UnpackResult, dest, archive, format, kind, source_prefix, already_present, files,
                  directories, symlinks, hardlinks, bytes, frames, relocated_files, seconds,
                  warnings)

// Atomic: extracts into a temporary sibling of dest, relocates while writing, renames at the end.
UnpackResult unpack(const UnpackOptions& options);

// The identity ferry records for an archive (a hash of its manifest, or of the whole file for
// foreign archives), and whether dest holds an unpack of exactly that archive at that path.
std::uint64_t archive_identity(const std::string& archive);
bool holds_archive(const std::string& dest, std::uint64_t identity);

// unpack in three steps, for callers that must agree across nodes before anything appears at DEST
// (ferry stage). Opening takes DEST's lock and finds out whether DEST already holds this archive;
// extract writes the verified, relocated tree beside DEST; commit renames it into place. A session
// destroyed before commit removes its temporary tree: nothing appears at DEST.
class UnpackSession {
 public:
  // From an archive file (identified by reading it).
  explicit UnpackSession(const UnpackOptions& options);
  // From a ferry archive that streams in: its manifest comes first, from the sender;
  // options.archive only names it in messages.
  UnpackSession(const UnpackOptions& options, const std::string& manifest_json);
  ~UnpackSession();
  UnpackSession(const UnpackSession&) = delete;
  UnpackSession& operator=(const UnpackSession&) = delete;

  bool already_present() const;
  void extract();  // from options.archive
  void extract(const format::FrameSource& frames, const format::FrameIndex& index);
  void commit();
  const UnpackResult& result() const;

 private:
  struct State;
  std::unique_ptr<State> m;
};

// The tree an archive holds.
struct Inspection : format::TreeCounts {
  std::string archive, format, kind, source_prefix, python_version, tool;
  bool has_manifest = false;
  std::uint64_t archive_bytes = 0, frames = 0;
  std::uint64_t text_records = 0, binary_records = 0;
  std::vector<std::string> placeholders, warnings;
};
FERRY_JSON_FIELDS(Inspection, archive, format, archive_bytes, frames, has_manifest, kind,
                  source_prefix, python_version, tool, files, bytes, directories, symlinks,
                  hardlinks, text_records, binary_records, placeholders, warnings)

Inspection inspect(const std::string& archive);

// `vars` (an environment, NAME -> value) with the env at prefix activated as `ferry activate`
// would, for a process started without a shell: its bin/ first on PATH, PYTHONHOME dropped, and
// VIRTUAL_ENV (a venv) or CONDA_PREFIX and CONDA_DEFAULT_ENV (a conda env) set, the other dropped.
// tree: where the env lies now, when that is not prefix (an image's /opt/env, built on the host).
std::map<std::string, std::string> activated_environ(const std::string& prefix,
                                                     std::map<std::string, std::string> vars,
                                                     const std::string& tree = "");

enum class Shell { bash, zsh, fish };
// Lines that activate an unpacked environment without conda, for eval.
std::string activation_script(const std::string& dest, Shell shell);

// ---------------------------------------------------------------------------------------------
// ferry venv (venv.cpp): make, or reuse, a venv with --system-site-packages on top of a base
// Python (a conda env, an unpacked env, any prefix with bin/python3), as ezpz's setup does.
struct VenvOptions {
  std::string path;
  // Default: the active env: $CONDA_PREFIX, then $VIRTUAL_ENV's base (pyvenv.cfg home), then the
  // prefix of python3 on PATH.
  std::optional<std::string> base;
  bool force = false;  // replace a venv at path made on another base (never a non-venv)
};

enum class VenvAction { created, reused, replaced };
NLOHMANN_JSON_SERIALIZE_ENUM(VenvAction, {{VenvAction::created, "created"},
                                          {VenvAction::reused, "reused"},
                                          {VenvAction::replaced, "replaced"}})

struct VenvResult {
  std::string path, base;
  std::string base_from;       // "--base", "$CONDA_PREFIX", "$VIRTUAL_ENV", "python3 on PATH"
  std::string python_version;  // the base's, e.g. "3.11.7"
  VenvAction action = VenvAction::created;
  bool has_pip = false;  // the base has pip: bin/pip in the venv runs it for the venv
  // The shell line that activates it: Python's own bin/activate, which needs no ferry on the
  // compute nodes and gives deactivate.
  std::string activate;
  double seconds = 0;
  std::vector<std::string> warnings;
};
FERRY_JSON_FIELDS(VenvResult, path, base, base_from, python_version, action, has_pip, activate,
                  seconds, warnings)

// Atomic: builds in a temporary sibling of path, checks the new interpreter, renames into place.
VenvResult make_venv(const VenvOptions& options);

}  // namespace ferry::env
