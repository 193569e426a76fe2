// Slurm's hostlist grammar, reproduced from its rules (src/common/hostlist.c, dims == 1) rather
// than approximated: `scontrol show hostnames` is the oracle the tests compare against.
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "job/job.hpp"

namespace ferry::job {
namespace {

// Slurm refuses a single range wider than this (MAX_RANGE = MAX_SLURM_NODES) and caps the number
// of prefix expansions (MAX_PREFIX_CNT); the total cap keeps a hostile expression from exhausting
// memory through several groups multiplied together.
constexpr unsigned long k_max_range = 64 * 1024;
constexpr std::size_t k_max_hosts = 1 << 20;

struct Range {
  unsigned long lo = 0, hi = 0;
  int width = 0;  // digits to print: the length of the text of the low end
};

[[noreturn]] void bad(std::string_view expr, std::string_view why) {
  throw Error(fmt::format("hostlist '{}': {}", expr, why), Error::Kind::usage);
}

// One element of a bracket list: "N" or "N-M". strtoul as Slurm uses it, so leading blanks and
// '+' behave the same (util's parse_decimal refuses them); the width is the length of the low
// end's text.
Range parse_range(std::string element, std::string_view expr) {
  if (element.find('x') != std::string::npos)
    bad(expr, fmt::format("'{}' is not a number or range", element));
  std::string hi_text;
  bool has_hi = false;
  if (auto dash = element.find('-'); dash != std::string::npos) {
    hi_text = element.substr(dash + 1);
    element.resize(dash);
    has_hi = true;
    if (!hi_text.empty() && hi_text[0] == '-') bad(expr, "negative numbers are not allowed");
  }
  Range r;
  r.width = static_cast<int>(element.size());
  char* end = nullptr;
  errno = 0;
  r.lo = std::strtoul(element.c_str(), &end, 10);
  if (end == element.c_str() || *end != '\0' || errno == ERANGE)
    bad(expr, fmt::format("'{}' is not a number", element));
  r.hi = r.lo;
  if (has_hi && !hi_text.empty()) {
    errno = 0;
    r.hi = std::strtoul(hi_text.c_str(), &end, 10);
    if (end == hi_text.c_str() || *end != '\0' || errno == ERANGE)
      bad(expr, fmt::format("'{}' is not a number", hi_text));
  }
  if (r.lo > r.hi) bad(expr, fmt::format("range {}-{} goes backwards", r.lo, r.hi));
  if (r.hi - r.lo + 1 > k_max_range) bad(expr, fmt::format("range {}-{} is too large", r.lo, r.hi));
  return r;
}

std::vector<Range> parse_ranges(std::string_view inside, std::string_view expr) {
  std::vector<Range> ranges;
  for (std::string_view element : util::split(inside, ','))
    ranges.push_back(parse_range(std::string(element), expr));
  return ranges;
}

void push(std::vector<std::string>& out, std::string host, std::string_view expr) {
  if (out.size() >= k_max_hosts)
    bad(expr, fmt::format("expands to more than {} hosts", k_max_hosts));
  out.push_back(std::move(host));
}

// Slurm's _push_range_list: the last bracket group left in the prefix is the outer loop; for each
// of its values, recurse while the prefix still holds brackets, then emit the main ranges.
void expand_prefix(const std::string& prefix, const std::vector<Range>& main,
                   const std::string& suffix, std::vector<std::string>& out,
                   std::string_view expr) {
  std::size_t open = prefix.rfind('[');
  std::size_t close = open == std::string::npos ? std::string::npos : prefix.find(']', open);
  if (open == std::string::npos || close == std::string::npos) {
    if (prefix.find_first_of("[]") != std::string::npos) bad(expr, "unbalanced brackets");
    for (const Range& r : main)
      for (unsigned long n = r.lo; n <= r.hi; ++n)
        push(out, fmt::format("{}{:0{}}{}", prefix, n, r.width, suffix), expr);
    return;
  }
  std::string head = prefix.substr(0, open);
  std::string between = prefix.substr(close + 1);
  for (const Range& r :
       parse_ranges(std::string_view(prefix).substr(open + 1, close - open - 1), expr))
    for (unsigned long n = r.lo; n <= r.hi; ++n)
      expand_prefix(fmt::format("{}{:0{}}{}", head, n, r.width, between), main, suffix, out, expr);
}

void expand_token(std::string_view token, std::vector<std::string>& out, std::string_view expr) {
  std::size_t open = token.rfind('[');
  if (open == std::string_view::npos) {  // a literal name, even with a stray ']' (as Slurm)
    push(out, std::string(token), expr);
    return;
  }
  std::size_t close = token.find(']', open);
  if (close == std::string_view::npos) bad(expr, "'[' without a closing ']'");
  std::string suffix(token.substr(close + 1));
  if (suffix.find_first_of("[]") != std::string::npos) bad(expr, "unbalanced brackets");
  std::vector<Range> main = parse_ranges(token.substr(open + 1, close - open - 1), expr);
  expand_prefix(std::string(token.substr(0, open)), main, suffix, out, expr);
}

bool is_separator(char c) { return c == ',' || c == ' ' || c == '\t' || c == '\n'; }

// A host split for compression: prefix, trailing digits (kept as text for their width).
struct Split {
  std::string_view prefix, digits;
};

Split split_host(std::string_view host) {
  std::size_t i = host.size();
  while (i > 0 && host[i - 1] >= '0' && host[i - 1] <= '9') --i;
  // More digits than an unsigned long holds: keep the name whole.
  if (host.size() - i > 18) i = host.size();
  return {host.substr(0, i), host.substr(i)};
}

}  // namespace

std::vector<std::string> expand_hostlist(std::string_view expr) {
  if (expr.find('{') != std::string_view::npos)
    bad(expr, "'{' expressions are expanded by slurmctld: use `scontrol show hostnames`");
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < expr.size()) {
    while (i < expr.size() && is_separator(expr[i])) ++i;
    if (i == expr.size()) break;
    std::size_t start = i;
    int depth = 0;
    for (; i < expr.size(); ++i) {
      if (expr[i] == '[')
        ++depth;
      else if (expr[i] == ']' && depth > 0)
        --depth;
      else if (depth == 0 && is_separator(expr[i]))
        break;
    }
    expand_token(expr.substr(start, i - start), out, expr);
  }
  return out;
}

std::string compress_hostlist(const std::vector<std::string>& hosts) {
  std::string out;
  std::size_t i = 0;
  while (i < hosts.size()) {
    const std::string& host = hosts[i];
    if (host.empty() || host.find_first_of("[]{},\t\n ") != std::string::npos)
      throw Error(fmt::format("host '{}' cannot be written in a hostlist", host),
                  Error::Kind::usage);
    if (!out.empty()) out += ',';
    Split first = split_host(host);
    if (first.digits.empty()) {
      out += host;
      ++i;
      continue;
    }
    // Take every following host with the same prefix into this group, merging runs n, n+1, ...
    // that print with the run's width exactly as the hosts are spelled.
    std::vector<std::string> ranges;
    std::size_t j = i;
    while (j < hosts.size()) {
      Split s = split_host(hosts[j]);
      if (s.digits.empty() || s.prefix != first.prefix) break;
      if (hosts[j].find_first_of("[]{},\t\n ") != std::string::npos) break;
      std::string lo(s.digits);
      unsigned long value = std::stoul(lo);  // digits only, at most 18 (split_host): in range
      int width = static_cast<int>(lo.size());
      std::size_t k = j + 1;
      while (k < hosts.size()) {
        Split next = split_host(hosts[k]);
        if (next.prefix != first.prefix || next.digits.empty() ||
            next.digits != fmt::format("{:0{}}", value + (k - j), width))
          break;
        ++k;
      }
      ranges.push_back(k - j == 1 ? lo : fmt::format("{}-{:0{}}", lo, value + (k - j - 1), width));
      j = k;
    }
    if (j - i == 1) {
      out += host;
    } else {
      out += first.prefix;
      out += '[';
      out += util::join(ranges, ",");
      out += ']';
    }
    i = j;
  }
  return out;
}

std::vector<unsigned> expand_count_list(std::string_view list, std::string_view what) {
  auto fail = [&] {
    throw Error(fmt::format("{}='{}': expected counts like '2(x3),1'", what, list),
                Error::Kind::usage);
  };
  std::vector<unsigned> out;
  if (list.empty()) fail();
  for (std::string_view item : util::split(list, ',')) {
    // COUNT or COUNT(xREPS), both decimal digits only.
    std::string_view count_text = item, reps_text = "1";
    if (std::size_t open = item.find('('); open != std::string_view::npos) {
      if (!item.substr(open).starts_with("(x") || !item.ends_with(')')) fail();
      count_text = item.substr(0, open);
      reps_text = item.substr(open + 2, item.size() - open - 3);
    }
    std::optional<unsigned> count = util::parse_decimal(count_text, 1u << 24);
    std::optional<unsigned> reps = util::parse_decimal(reps_text, k_max_range);
    if (!count || !reps || *reps == 0) fail();
    out.insert(out.end(), *reps, *count);
  }
  return out;
}

}  // namespace ferry::job
