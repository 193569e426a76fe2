#include "cli/progress_bar.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace ferry::cli {

std::unique_ptr<ProgressBar> progress_bar(bool wanted) {
  if (!wanted || ::isatty(STDERR_FILENO) != 1) return nullptr;
  return std::make_unique<ProgressBar>();
}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::begin(std::string_view label, std::uint64_t total) {
  m_label = label;
  m_total = total;
  m_done = 0;
  m_last_draw_ms = 0;
  m_clock = {};
  m_begun = true;
  m_finished = false;
}

void ProgressBar::advance(std::uint64_t amount) {
  m_done.fetch_add(amount, std::memory_order_relaxed);
  auto now = static_cast<std::int64_t>(m_clock.seconds() * 1000);
  auto last = m_last_draw_ms.load(std::memory_order_relaxed);
  if (now - last < 100) return;
  if (!m_last_draw_ms.compare_exchange_strong(last, now)) return;
  draw(false);
}

void ProgressBar::finish() {
  if (!m_begun || m_finished) return;
  m_finished = true;
  draw(true);
}

void ProgressBar::draw(bool final) {
  std::lock_guard lock(m_draw_mutex);
  std::uint64_t done = std::min(m_done.load(), m_total);
  double fraction = m_total ? static_cast<double>(done) / static_cast<double>(m_total) : 1.0;
  if (final) fraction = 1.0;
  constexpr int width = 30;
  int filled = static_cast<int>(fraction * width);
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.resize(width, ' ');
  std::fprintf(stderr, "\r%s [%s] %3d%% %.1fs%s", m_label.c_str(), bar.c_str(),
               static_cast<int>(fraction * 100), m_clock.seconds(), final ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace ferry::cli
