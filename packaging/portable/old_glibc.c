// Linked into the portable programs only (FERRY_PORTABLE): what GCC 12's static libstdc++ and its
// headers ask of glibc that RHEL 8's glibc 2.28 does not have. Defined here, they bind inside the
// program instead of to a versioned symbol of the C library; `objdump -T` shows the difference
// (tests/cli/portable.sh fails on any symbol newer than GLIBC_2.28).
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>

// glibc 2.32: libstdc++ skips atomic reference counts when it says the process has one thread.
// Zero ("maybe several") is always correct, and only costs those atomics.
char __libc_single_threaded = 0;

// glibc 2.36: std::random_device's default source, and libarchive's.
void arc4random_buf(void* buffer, size_t size) {
  unsigned char* p = buffer;
  size_t got = 0;
  while (got < size) {
    ssize_t n = getrandom(p + got, size - got, 0);
    if (n > 0)
      got += (size_t)n;
    else if (errno != EINTR)
      break;  // a kernel without getrandom (before 3.17) gets what was there, not a crash
  }
}

uint32_t arc4random(void) {
  uint32_t value = 0;
  arc4random_buf(&value, sizeof value);
  return value;
}

// glibc 2.30: std::condition_variable waits on the steady clock with it. Before 2.30 libstdc++
// itself waited on the system clock; this does the same, converting the deadline.
int pthread_cond_clockwait(pthread_cond_t* cond, pthread_mutex_t* mutex, clockid_t clock,
                           const struct timespec* abstime) {
  if (clock == CLOCK_REALTIME) return pthread_cond_timedwait(cond, mutex, abstime);
  if (clock != CLOCK_MONOTONIC) return EINVAL;
  struct timespec now_mono, now_real, deadline;
  clock_gettime(CLOCK_MONOTONIC, &now_mono);
  clock_gettime(CLOCK_REALTIME, &now_real);
  long long ns = (abstime->tv_sec - now_mono.tv_sec) * 1000000000LL +
                 (abstime->tv_nsec - now_mono.tv_nsec) + now_real.tv_nsec;
  deadline.tv_sec = now_real.tv_sec + ns / 1000000000LL;
  deadline.tv_nsec = ns % 1000000000LL;
  if (deadline.tv_nsec < 0) {
    deadline.tv_nsec += 1000000000LL;
    deadline.tv_sec -= 1;
  }
  return pthread_cond_timedwait(cond, mutex, &deadline);
}
