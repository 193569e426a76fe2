#include "util/util.hpp"

#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <xxhash.h>
#if defined(__x86_64__) && __has_include(<xxh_x86dispatch.h>)
#include <xxh_x86dispatch.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <new>
#include <thread>

#include <fmt/format.h>

namespace ferry::util {

void throw_errno(std::string_view subject, std::string_view what, int err) {
  throw Error(fmt::format("{}: {}: {}", subject, what, std::strerror(err)));
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (m_fd >= 0) ::close(m_fd);
    m_fd = other.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (m_fd >= 0) ::close(m_fd);
}

PageBuffer::PageBuffer(std::size_t size) : m_size(size) {
  if (size == 0) return;
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  m_data = static_cast<char*>(p);
  if (size >= (2u << 20)) ::madvise(p, size, MADV_HUGEPAGE);  // a hint: ignored where THP is off
}

PageBuffer::~PageBuffer() {
  if (m_data) ::munmap(m_data, m_size);
}

namespace {

// The portable walk of open_beneath: every directory part is opened without following symlinks,
// so a symlink anywhere on the way fails (ELOOP/ENOTDIR) exactly as RESOLVE_NO_SYMLINKS does.
int open_beneath_walk(int dir_fd, std::string_view rel, int flags, mode_t mode) {
  UniqueFd held;
  int at = dir_fd;
  while (true) {
    std::size_t slash = rel.find('/');
    std::string part(rel.substr(0, slash));
    if (part.empty() || part == "." || part == "..") {
      errno = EXDEV;
      return -1;
    }
    if (slash == std::string_view::npos) return ::openat(at, part.c_str(), flags, mode);
    int next = ::openat(at, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) return -1;
    held = UniqueFd(next);
    at = next;
    rel.remove_prefix(slash + 1);
  }
}

std::atomic<bool> g_openat2_missing{false};

// A C library older than the kernel (glibc 2.31, which the portable build targets) has no name
// for it; the number is the same on every architecture.
#ifndef SYS_openat2
constexpr long SYS_openat2 = 437;
#endif

}  // namespace

int open_beneath(int dir_fd, const std::string& rel, int flags, mode_t mode) {
  flags |= O_NOFOLLOW | O_CLOEXEC;
  if (!g_openat2_missing.load(std::memory_order_relaxed)) {
    open_how how{};
    how.flags = static_cast<std::uint64_t>(flags);
    how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
    int fd = static_cast<int>(::syscall(SYS_openat2, dir_fd, rel.c_str(), &how, sizeof how));
    if (fd >= 0 || (errno != ENOSYS && errno != EPERM)) return fd;
    // EPERM is also a real answer (O_NOATIME on another's file): the walk then gives it again.
    if (errno == ENOSYS) g_openat2_missing.store(true, std::memory_order_relaxed);
  }
  return open_beneath_walk(dir_fd, rel, flags, mode);
}

std::string openat2_answer() {
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof how));
  if (fd >= 0) {
    ::close(fd);
    return "";
  }
  return errno == ENOSYS ? "ENOSYS" : errno == EPERM ? "EPERM" : std::strerror(errno);
}

std::string read_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno(path, "cannot open", errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno(path, "cannot stat", errno);
  std::string data;
  // One byte more than the size, so that the read that finds the end needs no second buffer: a
  // file read whole is allocated and cleared once (pack reads every file of an env this way).
  data.resize(static_cast<std::size_t>(st.st_size) + 1);
  std::size_t done = 0;
  while (true) {
    if (done == data.size()) data.resize(data.size() * 2 + 4096);  // it grew since the fstat
    ssize_t n = ::read(fd.get(), data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(path, "cannot read", errno);
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  data.resize(done);
  return data;
}

int write_all_or_errno(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

void write_all(int fd, std::string_view data, std::string_view subject) {
  if (int err = write_all_or_errno(fd, data)) throw_errno(subject, "cannot write", err);
}

mode_t current_umask() {
  std::string status;
  try {
    status = read_file("/proc/self/status");
  } catch (const Error&) {
  }
  std::size_t at = status.find("\nUmask:");
  if (at != std::string::npos) {
    mode_t mask = 0;
    for (std::size_t i = at + 7; i < status.size() && status[i] != '\n'; ++i)
      if (status[i] >= '0' && status[i] <= '7')
        mask = static_cast<mode_t>(mask * 8 + static_cast<mode_t>(status[i] - '0'));
    return mask & 0777;
  }
  mode_t mask = ::umask(022);  // kernels before 4.7 have no Umask line
  ::umask(mask);
  return mask;
}

// On x86-64, libxxhash's dispatching entry point picks AVX2 or AVX-512 at run time (the same hash;
// the plain one is built for SSE2): half the cost of verifying every file on unpack.
std::uint64_t xxh3(std::string_view data) {
#if defined(__x86_64__) && __has_include(<xxh_x86dispatch.h>)
  return XXH3_64bits_dispatch(data.data(), data.size());
#else
  return XXH3_64bits(data.data(), data.size());
#endif
}

std::string hex64(std::uint64_t value) { return fmt::format("{:016x}", value); }

std::string absolute_path(const std::string& path) {
  std::string given =
      path.empty() || path[0] != '/' ? std::filesystem::current_path().string() + "/" + path : path;
  std::string out;  // "" stands for "/"
  std::size_t at = 0;
  while (at <= given.size()) {
    std::size_t slash = std::min(given.find('/', at), given.size());
    std::string_view part(given.data() + at, slash - at);
    at = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part != "..") {
      out += '/';
      out += part;
      continue;
    }
    if (out.empty()) continue;  // "/.." is "/"
    // The kernel steps up from where it is: through any symlink named so far.
    if (char* real = ::realpath(out.c_str(), nullptr)) {
      out = real;
      std::free(real);
    } else {
      int err = errno;
      struct stat st {};
      // What does not exist yet holds no symlink: a directory made there is just that.
      if (err != ENOENT || ::lstat(out.c_str(), &st) == 0)
        throw_errno(path, fmt::format("cannot resolve {}", out), err);
    }
    out.resize(out.rfind('/'));
  }
  return out.empty() ? "/" : out;
}

bool glob_match(const std::string& pattern, const std::string& path) {
  return ::fnmatch(pattern.c_str(), path.c_str(), 0) == 0;
}

bool is_valid_utf8(std::string_view data) {
  const auto* s = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t n = data.size();
  std::size_t i = 0;
  while (i < n) {
    // Skip ASCII eight bytes at a time: most text is ASCII.
    while (i + 8 <= n) {
      std::uint64_t word;
      std::memcpy(&word, s + i, 8);
      if (word & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= n) break;
    unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    // Reject overlong forms, surrogates and values past U+10FFFF, as Python's decoder does.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

std::string shell_quote(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  out += "'";
  return out;
}

std::string shell_word(std::string_view value) {
  bool plain = !value.empty() && value.find_first_not_of(
                                     "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789/._+-:@%,=") == std::string_view::npos;
  return plain ? std::string(value) : shell_quote(value);
}

void append_json_string(std::string& out, std::string_view value) {
  out += '"';
  std::size_t plain = 0;  // the run of bytes that need no escape, appended at once
  for (std::size_t i = 0; i < value.size(); ++i) {
    auto c = static_cast<unsigned char>(value[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(value.substr(plain, i - plain));
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default: fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
    }
    plain = i + 1;
  }
  out.append(value.substr(plain));
  out += '"';
}

void remove_tree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) throw Error(fmt::format("{}: cannot remove: {}", path, ec.message()));
}

unsigned default_jobs() {
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) {
    int count = CPU_COUNT(&set);
    if (count > 0) return static_cast<unsigned>(count);
  }
  unsigned n = std::thread::hardware_concurrency();
  return n ? n : 1;
}

std::string host_name() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return host;
}

std::string user_name() {
  if (const passwd* pw = ::getpwuid(::geteuid()); pw && pw->pw_name) return pw->pw_name;
  return std::to_string(::geteuid());
}

std::string short_host_name(std::string_view host) {
  return std::string(host.substr(0, host.find('.')));
}

std::uint64_t peak_resident_bytes() {
  struct rusage usage {};
  if (::getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<std::uint64_t>(usage.ru_maxrss) * 1024;  // Linux counts it in KiB
}

std::string self_executable() {
  std::error_code ec;
  auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("ferry") : path.string();
}

}  // namespace ferry::util
