// IoMode: how a node serves the bytes of its volumes to pods.
//
//   passthrough  a directory of the node's FUSE mount, files passed through to the arena
//                (Linux >= 6.9): tmpfs speed, mmap maps the arena's pages.
//   fuse         the same mount, the daemon serves READ/WRITE (--no-passthrough): every
//                byte is copied and mmap fills FUSE's own page cache.
//   direct       the volume's tmpfs arena bind-mounted as it is: tmpfs speed and pages on
//                any kernel; no FUSE layer (see README "What each kernel gets").
//   auto         passthrough if the kernel grants it when the FUSE mount starts, else direct.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace cellar::csi {

enum class IoMode { kAuto, kPassthrough, kFuse, kDirect };

// The volume context key under which CreateVolume reports the node's mode.
inline constexpr const char* kIoModeKey = "cellar.dev/io-mode";

std::string_view IoModeName(IoMode mode);
// "auto", "passthrough", "fuse" or "direct"; InvalidArgument otherwise.
Result<IoMode> ParseIoMode(std::string_view name);

}  // namespace cellar::csi
