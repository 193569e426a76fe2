// SquashFS images, told apart from archives by their magic.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/format.hpp"

namespace ferry::format {

bool is_squashfs_file(const std::string& path) {
  util::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  char magic[4] = {};
  return ::pread(fd.get(), magic, sizeof magic, 0) == 4 && std::string_view(magic, 4) == "hsqs";
}

}  // namespace ferry::format
