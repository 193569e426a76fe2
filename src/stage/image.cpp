// Images staged whole: a SquashFS file is not extracted but copied to its place on every node,
// written beside it, checked against the source's hash, and renamed in on the word to commit.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "stage/stage.hpp"

namespace ferry::stage {

std::uint64_t image_identity(const std::string& path) {
  util::MappedFile map(path);
  std::uint64_t hash = util::xxh3(map.bytes());
  map.check_intact();
  return hash;
}

bool holds_image(const std::string& target, std::uint64_t identity) {
  struct stat st {};
  if (::stat(target.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  try {
    return image_identity(target) == identity;
  } catch (const Error&) {
    return false;
  }
}

std::string image_target(const std::string& to, const std::string& image) {
  if (to.ends_with(".sqfs")) return to;
  std::string name = std::filesystem::path(image).filename().string();
  return (to.ends_with('/') ? to : to + "/") + name;
}

namespace {

// What is at the target now must be replaceable by a file: nothing, a file or a link. Found before
// any byte moves, so that one node cannot fail at the rename after the others committed.
const std::string& replaceable(const std::string& target) {
  struct stat st {};
  if (::lstat(target.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
    throw Error(
        fmt::format("{}: is there and is not a file (an image is staged to a file name)", target));
  return target;
}

}  // namespace

ImageReceiver::ImageReceiver(const std::string& target, std::uint64_t identity)
    : m_target(util::absolute_path(target)),
      m_identity(identity),
      m_tree(util::sibling_path(replaceable(m_target))),
      m_present(holds_image(m_target, identity)) {}

void ImageReceiver::write(std::string_view bytes) {
  if (!m_fd) {
    const std::string& temp = m_tree.stage(util::TempSibling::Kind::file);
    m_fd = util::UniqueFd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!m_fd) util::throw_errno(m_target, "cannot create its temporary copy", errno);
  }
  util::write_all(m_fd.get(), bytes, m_target);
  m_hash.update(bytes);
  m_bytes += bytes.size();
}

void ImageReceiver::adopt(const std::string& copy) {
  const std::string& temp = m_tree.stage(util::TempSibling::Kind::file);
  if (::rename(copy.c_str(), temp.c_str()) != 0)
    util::throw_errno(copy, "cannot move the node's copy beside " + m_target, errno);
  util::MappedFile map(temp);
  m_hash.update(map.bytes());
  map.check_intact();
  m_bytes = map.bytes().size();
}

void ImageReceiver::finish() {
  if (!m_tree.staged()) write({});  // an empty image is still a file
  if (m_hash.digest() != m_identity)
    throw Error(fmt::format(
        "{}: the copy on this node differs from the image (xxh3 {} after {} bytes, want {})",
        m_target, util::hex64(m_hash.digest()), m_bytes, util::hex64(m_identity)));
  if (m_fd && ::close(m_fd.release()) != 0)
    util::throw_errno(m_target, "cannot write its temporary copy", errno);
}

void ImageReceiver::commit() { m_tree.commit(); }

}  // namespace ferry::stage
