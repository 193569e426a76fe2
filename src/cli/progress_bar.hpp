// The CLI's progress sink: a bar on stderr while a long step runs (pack, unpack, stage), drawn only
// when stderr is a terminal so that logs stay clean.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "util/util.hpp"

namespace ferry::cli {

// "LABEL [#####     ]  42% 1.3s", redrawn in place at most every 100 ms (advance is thread-safe),
// and once more at 100% with a newline when the step finishes, or when the bar goes away with an
// unfinished step (the error that ends it then starts on a line of its own).
class ProgressBar final : public util::ProgressSink {
 public:
  ProgressBar() = default;
  ~ProgressBar() override;
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  void begin(std::string_view label, std::uint64_t total) override;
  void advance(std::uint64_t amount) override;
  void finish() override;

 private:
  void draw(bool final);
  std::string m_label;
  std::uint64_t m_total = 0;
  bool m_begun = false, m_finished = false;
  std::atomic<std::uint64_t> m_done{0};
  std::atomic<std::int64_t> m_last_draw_ms{0};
  std::mutex m_draw_mutex;
  util::Stopwatch m_clock;
};

// The bar for a verb that wants one (not --json) when stderr is a terminal; otherwise none.
std::unique_ptr<ProgressBar> progress_bar(bool wanted);

}  // namespace ferry::cli
