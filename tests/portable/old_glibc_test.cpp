// packaging/portable/old_glibc.c, linked into this test program as into the portable ferry: its
// definitions replace the C library's here, so what they do is what the portable build does.
#include <gtest/gtest.h>
#include <pthread.h>
#include <time.h>

#include <array>
#include <cerrno>
#include <cstdint>

extern "C" {
int pthread_cond_clockwait(pthread_cond_t*, pthread_mutex_t*, clockid_t, const struct timespec*);
void arc4random_buf(void*, size_t);
std::uint32_t arc4random(void);
}

namespace {

timespec now(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return t;
}

timespec later(timespec t, long ms) {
  t.tv_nsec += ms * 1'000'000L;
  t.tv_sec += t.tv_nsec / 1'000'000'000L;
  t.tv_nsec %= 1'000'000'000L;
  return t;
}

bool before(const timespec& a, const timespec& b) {
  return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

// Waits on a condition nobody signals until the deadline on clock; the answer and when it came.
int wait_until(clockid_t clock, const timespec& deadline) {
  pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
  pthread_mutex_lock(&mutex);
  int rc = 0;
  do rc = pthread_cond_clockwait(&cond, &mutex, clock, &deadline);
  while (rc == 0);  // a spurious wake-up waits again, as callers do
  pthread_mutex_unlock(&mutex);
  return rc;
}

}  // namespace

TEST(OldGlibc, SteadyClockDeadlineIsKeptNotCutShort) {
  // std::condition_variable::wait_for's deadline is on the steady clock, whose epoch (boot) is
  // far from the system clock's: an unconverted deadline would return at once or wait for years.
  timespec deadline = later(now(CLOCK_MONOTONIC), 80);
  EXPECT_EQ(wait_until(CLOCK_MONOTONIC, deadline), ETIMEDOUT);
  EXPECT_FALSE(before(now(CLOCK_MONOTONIC), deadline));
  EXPECT_TRUE(before(now(CLOCK_MONOTONIC), later(deadline, 5000))) << "waited seconds too long";
}

TEST(OldGlibc, SteadyClockDeadlineInThePastReturnsAtOnce) {
  timespec past = now(CLOCK_MONOTONIC);
  past.tv_sec -= 2;
  timespec start = now(CLOCK_MONOTONIC);
  EXPECT_EQ(wait_until(CLOCK_MONOTONIC, past), ETIMEDOUT);
  EXPECT_TRUE(before(now(CLOCK_MONOTONIC), later(start, 2000)));
}

TEST(OldGlibc, SystemClockDeadlineAndOtherClocks) {
  timespec deadline = later(now(CLOCK_REALTIME), 50);
  EXPECT_EQ(wait_until(CLOCK_REALTIME, deadline), ETIMEDOUT);
  EXPECT_FALSE(before(now(CLOCK_REALTIME), deadline));
  EXPECT_EQ(wait_until(CLOCK_PROCESS_CPUTIME_ID, deadline), EINVAL);
}

TEST(OldGlibc, RandomBytesAreFilledAndDiffer) {
  std::array<unsigned char, 64> a{}, b{};
  arc4random_buf(a.data(), a.size());
  arc4random_buf(b.data(), b.size());
  EXPECT_NE(a, b);
  EXPECT_NE(a, (std::array<unsigned char, 64>{}));
  EXPECT_NE(arc4random() | (std::uint64_t{arc4random()} << 32), 0u);
}
