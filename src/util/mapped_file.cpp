// Read-only maps of whole files that survive the file being truncated under them.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <mutex>

#include <fmt/format.h>

#include "util/util.hpp"

namespace ferry::util {
namespace {

// The live maps, for the SIGBUS handler: a fixed table of atomics, since a handler may neither
// lock nor allocate. A process holds a handful of maps at a time.
struct MapSlot {
  std::atomic<std::uintptr_t> begin{0}, end{0};
  std::atomic<bool> faulted{false};
};
constexpr int k_slots = 64;
MapSlot g_slots[k_slots];
std::mutex g_slots_mutex;  // taking and giving back slots (not in the handler)
struct sigaction g_previous {};
std::once_flag g_installed;

void on_sigbus(int sig, siginfo_t* info, void* context) {
  auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
  for (MapSlot& slot : g_slots) {
    std::uintptr_t begin = slot.begin.load(std::memory_order_acquire);
    if (begin == 0 || addr < begin || addr >= slot.end.load(std::memory_order_acquire)) continue;
    // A page past the file's new end: put a zero page there and let the read go on. mmap is a
    // plain system call on Linux, safe here.
    long page = ::sysconf(_SC_PAGESIZE);
    auto at = reinterpret_cast<void*>(addr & ~static_cast<std::uintptr_t>(page - 1));
    if (::mmap(at, static_cast<std::size_t>(page), PROT_READ,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
      slot.faulted.store(true, std::memory_order_release);
      return;
    }
  }
  // Not one of ours: what would have happened without this handler.
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction) return g_previous.sa_sigaction(sig, info, context);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    return g_previous.sa_handler(sig);
  }
  ::signal(SIGBUS, SIG_DFL);  // the faulting access runs again and ends the process as before
}

void install_handler() {
  struct sigaction sa {};
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGBUS, &sa, &g_previous);
}

int take_slot(const void* data, std::size_t size) {
  std::call_once(g_installed, install_handler);
  std::lock_guard lock(g_slots_mutex);
  for (int i = 0; i < k_slots; ++i) {
    if (g_slots[i].begin.load() != 0) continue;
    g_slots[i].faulted.store(false);
    g_slots[i].end.store(reinterpret_cast<std::uintptr_t>(data) + size);
    g_slots[i].begin.store(reinterpret_cast<std::uintptr_t>(data), std::memory_order_release);
    return i;
  }
  return -1;  // unprotected: a truncation then ends the process as it would without the table
}

void give_back(int slot) {
  if (slot < 0) return;
  std::lock_guard lock(g_slots_mutex);
  g_slots[slot].begin.store(0, std::memory_order_release);
  g_slots[slot].end.store(0);
}

}  // namespace

MappedFile::MappedFile(const std::string& path) : m_path(path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno(path, "cannot open", errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno(path, "cannot stat", errno);
  if (!S_ISREG(st.st_mode)) throw Error(fmt::format("{}: not a regular file", path));
  m_size = static_cast<std::size_t>(st.st_size);
  if (m_size == 0) return;
  m_data = ::mmap(nullptr, m_size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (m_data == MAP_FAILED) {
    m_data = nullptr;
    throw_errno(path, "cannot map", errno);
  }
  ::madvise(m_data, m_size, MADV_SEQUENTIAL);
  m_slot = take_slot(m_data, m_size);
}

MappedFile::~MappedFile() {
  give_back(m_slot);
  if (m_data) ::munmap(m_data, m_size);
}

bool MappedFile::shrank() const {
  return m_slot >= 0 && g_slots[m_slot].faulted.load(std::memory_order_acquire);
}

void MappedFile::check_intact() const {
  if (shrank())
    throw Error(
        fmt::format("{}: the file shrank while ferry was reading it (truncated or rewritten "
                    "by another process)",
                    m_path));
}

}  // namespace ferry::util
