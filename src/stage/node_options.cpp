// The command lines ferry stage starts on the nodes: `ferry stage-node` (sbcast path) and ferry-mpi
// (MPI path), each with its one encoder and decoder.
#include <climits>

#include <fmt/format.h>

#include "stage/stage.hpp"

namespace ferry::stage {

std::vector<std::string> encode_node_options(const NodeOptions& o) {
  std::vector<std::string> words;
  if (o.step == NodeOptions::Step::prepare) words.push_back("--prepare");
  if (o.step == NodeOptions::Step::sweep) words.push_back("--sweep");
  words.insert(words.end(), {"--archive", o.archive, "--to", o.dir});
  if (o.image) words.push_back("--image");
  if (o.step == NodeOptions::Step::prepare || o.image)
    words.insert(words.end(), {"--identity", util::hex64(o.identity)});
  if (o.remove_archive) words.push_back("--remove-archive");
  if (o.jobs) words.insert(words.end(), {"-j", std::to_string(o.jobs)});
  return words;
}

NodeOptions decode_node_options(const std::vector<std::string>& words) {
  NodeOptions o;
  bool archive = false, dir = false;
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string& name = words[i];
    if (name == "--prepare") {
      o.step = NodeOptions::Step::prepare;
    } else if (name == "--sweep") {
      o.step = NodeOptions::Step::sweep;
    } else if (name == "--remove-archive") {
      o.remove_archive = true;
    } else if (name == "--image") {
      o.image = true;
    } else if (name == "--archive" || name == "--to" || name == "--identity" || name == "-j" ||
               name == "--jobs") {
      if (++i == words.size())
        throw Error(fmt::format("{}: needs a value", name), Error::Kind::usage);
      const std::string& value = words[i];
      if (name == "--archive") {
        o.archive = value;
        archive = true;
      } else if (name == "--to") {
        o.dir = value;
        dir = true;
      } else if (name == "--identity") {
        auto id = util::parse_hex64(value);
        if (!id)
          throw Error(fmt::format("--identity {}: expected an archive identity (hex)", value),
                      Error::Kind::usage);
        o.identity = *id;
      } else {
        o.jobs = static_cast<unsigned>(util::parse_unsigned(value, 0, UINT_MAX, name));
      }
    } else {
      throw Error(fmt::format("{}: not an option of ferry stage-node", name), Error::Kind::usage);
    }
  }
  if (!archive) throw Error("--archive is required", Error::Kind::usage);
  if (!dir) throw Error("--to is required", Error::Kind::usage);
  return o;
}

std::vector<std::string> encode_mpi_options(const MpiOptions& o) {
  std::vector<std::string> words = {"stage", o.archive, o.dir};
  if (o.jobs) words.insert(words.end(), {"-j", std::to_string(o.jobs)});
  if (o.progress) words.push_back("--progress");
  return words;
}

std::optional<MpiOptions> decode_mpi_options(const std::vector<std::string>& words) {
  if (words.size() < 3 || words[0] != "stage") return std::nullopt;
  MpiOptions o;
  o.archive = words[1];
  o.dir = words[2];
  for (std::size_t i = 3; i < words.size(); ++i) {
    if (words[i] == "--progress") {
      o.progress = true;
    } else if (words[i] == "-j" && i + 1 < words.size() &&
               util::parse_decimal(words[i + 1], 4096)) {
      o.jobs = *util::parse_decimal(words[++i], 4096);
    } else {
      return std::nullopt;
    }
  }
  return o;
}

}  // namespace ferry::stage
