#include "common/size.h"

#include <charconv>
#include <limits>
#include <utility>

namespace cellar {

namespace {

struct Suffix {
  std::string_view text;
  uint64_t factor;
};

constexpr Suffix kSuffixes[] = {
    {"Ki", 1ULL << 10},      {"Mi", 1ULL << 20},         {"Gi", 1ULL << 30},
    {"Ti", 1ULL << 40},      {"Pi", 1ULL << 50},         {"k", 1000ULL},
    {"K", 1000ULL},          {"M", 1000000ULL},          {"G", 1000000000ULL},
    {"T", 1000000000000ULL}, {"P", 1000000000000000ULL},
};

}  // namespace

Result<uint64_t> ParseSize(std::string_view text) {
  uint64_t number = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, number);
  if (ec == std::errc::result_out_of_range) {
    return Error(Code::kOutOfRange, "size \"{}\" is too large", text);
  }
  if (ec != std::errc() || ptr == begin) {
    return Error(Code::kInvalidArgument,
                 "size \"{}\" is not a number of bytes (examples: 8Gi, 512Mi, 1048576)", text);
  }
  std::string_view suffix(ptr, end - ptr);
  uint64_t factor = 1;
  if (!suffix.empty()) {
    bool known = false;
    for (const auto& s : kSuffixes) {
      if (s.text == suffix) {
        factor = s.factor;
        known = true;
        break;
      }
    }
    if (!known) {
      return Error(Code::kInvalidArgument,
                   "size \"{}\" has an unknown unit \"{}\" (use Ki, Mi, Gi, Ti, k, M, G, T)", text,
                   suffix);
    }
  }
  if (number > std::numeric_limits<uint64_t>::max() / factor) {
    return Error(Code::kOutOfRange, "size \"{}\" is too large", text);
  }
  return number * factor;
}

std::string FormatSize(uint64_t bytes) {
  constexpr std::pair<uint64_t, std::string_view> kUnits[] = {
      {1ULL << 40, "TiB"}, {1ULL << 30, "GiB"}, {1ULL << 20, "MiB"}, {1ULL << 10, "KiB"}};
  for (const auto& [factor, name] : kUnits) {
    if (bytes >= factor) {
      return fmt::format("{:.1f} {}", static_cast<double>(bytes) / factor, name);
    }
  }
  return fmt::format("{} B", bytes);
}

}  // namespace cellar
