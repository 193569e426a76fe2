// ferry-test-seccomp --openat2=enosys|eperm -- CMD ARGS...: runs CMD (and everything it starts)
// with openat2(2) answered by that error, as a kernel before 5.6 (RHEL 8's 4.18) answers ENOSYS
// and some container runtimes' seccomp profiles answer EPERM. The test suites run ferry under it
// to take util::open_beneath's fallback for real.
#include <fcntl.h>
#include <linux/openat2.h>
#include <seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

int main(int argc, char** argv) {
  int err = 0;
  int first = 1;
  for (; first < argc; ++first) {
    std::string_view arg = argv[first];
    if (arg == "--") {
      ++first;
      break;
    }
    if (arg == "--openat2=enosys")
      err = ENOSYS;
    else if (arg == "--openat2=eperm")
      err = EPERM;
    else
      first = argc;
  }
  if (!err || first >= argc) {
    std::fprintf(stderr, "usage: ferry-test-seccomp --openat2=enosys|eperm -- CMD ARGS...\n");
    return 2;
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);  // also sets no_new_privs, as it must
  if (!ctx || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(err), SCMP_SYS(openat2), 0) != 0 ||
      seccomp_load(ctx) != 0) {
    std::fprintf(stderr, "ferry-test-seccomp: cannot install the seccomp filter\n");
    return 125;
  }
  seccomp_release(ctx);
  // The filter must answer as asked, or every test under it would prove nothing.
  open_how how{};
  how.flags = O_RDONLY | O_DIRECTORY;
  long fd = ::syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how);
  if (fd >= 0 || errno != err) {
    std::fprintf(stderr, "ferry-test-seccomp: openat2 still answers (%s)\n",
                 fd >= 0 ? "a descriptor" : std::strerror(errno));
    return 125;
  }
  ::execvp(argv[first], argv + first);
  std::fprintf(stderr, "ferry-test-seccomp: %s: %s\n", argv[first], std::strerror(errno));
  return 127;
}
