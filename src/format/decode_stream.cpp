// ISA-L's inflate or libzstd's decode on a thread of its own, into a ring of blocks the reader
// takes in order.
#include "format/decode_stream.hpp"

#include <isa-l/igzip_lib.h>
#include <zstd.h>

#include <algorithm>
#include <climits>

#include <fmt/format.h>

namespace ferry::format {
namespace {

const char* inflate_error(int rc) {
  switch (rc) {
    case ISAL_INVALID_BLOCK: return "invalid deflate block";
    case ISAL_INVALID_SYMBOL: return "invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK: return "invalid deflate distance";
    case ISAL_INVALID_WRAPPER: return "invalid gzip header";
    case ISAL_UNSUPPORTED_METHOD: return "unsupported gzip compression method";
    case ISAL_INCORRECT_CHECKSUM: return "gzip checksum mismatch";
    case ISAL_NEED_DICT: return "deflate data needs a dictionary";
    default: return "inflate failed";
  }
}

}  // namespace

DecodeStream::DecodeStream(const std::string& path, Codec codec)
    : m_codec(codec), m_map(path), m_blocks(k_blocks), m_sizes(k_blocks, 0) {
  for (std::string& b : m_blocks) b.resize(k_block);
  m_thread = std::thread([this] { m_codec == Codec::gzip ? inflate_gzip() : decode_zstd(); });
}

const char* DecodeStream::description() const {
  return m_codec == Codec::gzip ? "gzip, ISA-L" : "zstd";
}

DecodeStream::~DecodeStream() {
  {
    std::lock_guard lock(m_mutex);
    m_stop = true;
  }
  m_cv.notify_all();
  m_thread.join();
}

std::uint64_t DecodeStream::consumed() const {
  std::lock_guard lock(m_mutex);
  return m_input_used;
}

std::string_view DecodeStream::next() {
  std::unique_lock lock(m_mutex);
  m_cv.wait(lock, [&] { return m_produced > m_consumed_blocks || m_done || m_stop; });
  if (m_produced > m_consumed_blocks) {
    std::size_t slot = m_consumed_blocks++ % k_blocks;
    m_cv.notify_all();  // the block handed out before this one is free again
    return {m_blocks[slot].data(), m_sizes[slot]};
  }
  if (!m_error.empty()) throw Error(m_error);
  return {};
}

bool DecodeStream::wait_for_slot(std::size_t block) {
  // The slot of this block is free once the reader took the block k_blocks before it and asked
  // for the next one.
  std::unique_lock lock(m_mutex);
  m_cv.wait(lock, [&] { return m_stop || block < m_consumed_blocks + k_blocks - 1; });
  return !m_stop;
}

bool DecodeStream::publish(std::size_t& block, std::size_t produced, std::uint64_t input_used,
                           const std::string& error, bool end) {
  {
    std::lock_guard lock(m_mutex);
    m_input_used = input_used;
    if (produced > 0) {
      m_sizes[block % k_blocks] = produced;
      ++m_produced;
      ++block;
    }
    if (!error.empty()) m_error = error;
    if (end || !error.empty()) m_done = true;
  }
  m_cv.notify_all();
  return end;
}

void DecodeStream::inflate_gzip() {
  std::string_view in = m_map.bytes();
  auto state = std::make_unique<inflate_state>();
  isal_inflate_init(state.get());
  state->crc_flag = ISAL_GZIP;
  std::size_t at = 0;  // input offset
  std::string error;
  bool member_open = true;
  for (std::size_t block = 0; error.empty();) {
    if (!wait_for_slot(block)) return;
    std::string& out = m_blocks[block % k_blocks];
    state->next_out = reinterpret_cast<std::uint8_t*>(out.data());
    state->avail_out = static_cast<std::uint32_t>(out.size());
    while (state->avail_out > 0) {
      if (!member_open) {
        // Another member follows (pigz -i, bgzip, cat a.gz b.gz); anything else after the last
        // one is ignored, as gzip -d does.
        if (compression_of(in.substr(at)) != Codec::gzip) break;
        isal_inflate_reset(state.get());
        state->crc_flag = ISAL_GZIP;
        member_open = true;
      }
      if (state->avail_in == 0) {
        std::size_t piece = std::min<std::size_t>(in.size() - at, 1u << 30);
        state->next_in = reinterpret_cast<std::uint8_t*>(const_cast<char*>(in.data() + at));
        state->avail_in = static_cast<std::uint32_t>(piece);
        at += piece;
      }
      std::uint32_t before_in = state->avail_in;
      std::uint32_t before_out = state->avail_out;
      int rc = isal_inflate(state.get());
      if (rc < 0 || rc == ISAL_NEED_DICT) {
        error = inflate_error(rc);
        break;
      }
      if (state->block_state == ISAL_BLOCK_FINISH) {
        member_open = false;
        at -= state->avail_in;  // what follows the member is looked at afresh
        state->avail_in = 0;
        continue;
      }
      bool stuck = state->avail_in == before_in && state->avail_out == before_out;
      if (stuck && at >= in.size()) {
        error = "truncated gzip data (the archive ends inside a member)";
        break;
      }
    }
    if (m_map.shrank()) error = "the file shrank while ferry was reading it";
    std::size_t produced = out.size() - state->avail_out;
    bool end = error.empty() && !member_open && (state->avail_out > 0);
    if (publish(block, produced, at - state->avail_in, error, end)) return;
  }
}

// One frame after another (zstd itself passes over skippable frames); anything after the last
// frame that is not a frame is an error, as with zstd -d. The window is held to libzstd's
// default limit (128 MiB), which zstd -d applies too.
void DecodeStream::decode_zstd() {
  std::string_view in = m_map.bytes();
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> context(ZSTD_createDCtx(), ZSTD_freeDCtx);
  std::string error;
  if (!context) error = "zstd: cannot allocate a decoder";
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  for (std::size_t block = 0; error.empty();) {
    if (!wait_for_slot(block)) return;
    std::string& out = m_blocks[block % k_blocks];
    ZSTD_outBuffer output{out.data(), out.size(), 0};
    bool end = false;
    while (output.pos < output.size) {
      std::size_t before_in = input.pos, before_out = output.pos;
      std::size_t rc = ZSTD_decompressStream(context.get(), &output, &input);
      if (ZSTD_isError(rc)) {
        error = fmt::format("zstd: {}", ZSTD_getErrorName(rc));
        break;
      }
      if (rc == 0 && input.pos == input.size) {  // the last frame whole and flushed
        end = true;
        break;
      }
      if (input.pos == before_in && output.pos == before_out) {
        error = input.pos == input.size ? "truncated zstd data (the archive ends inside a frame)"
                                        : "zstd: the decoder makes no progress";
        break;
      }
    }
    if (m_map.shrank()) error = "the file shrank while ferry was reading it";
    if (publish(block, output.pos, input.pos, error, end && error.empty())) return;
  }
}

}  // namespace ferry::format
