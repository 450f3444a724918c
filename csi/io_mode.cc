#include "csi/io_mode.h"

namespace cellar::csi {

namespace {

constexpr std::pair<IoMode, std::string_view> kNames[] = {{IoMode::kAuto, "auto"},
                                                          {IoMode::kPassthrough, "passthrough"},
                                                          {IoMode::kFuse, "fuse"},
                                                          {IoMode::kDirect, "direct"}};

}  // namespace

std::string_view IoModeName(IoMode mode) {
  for (const auto& [m, name] : kNames) {
    if (m == mode) return name;
  }
  return "unknown";
}

Result<IoMode> ParseIoMode(std::string_view name) {
  for (const auto& [m, n] : kNames) {
    if (n == name) return m;
  }
  return Error(Code::kInvalidArgument, "io mode \"{}\" is none of auto, passthrough, fuse, direct",
               name);
}

}  // namespace cellar::csi
