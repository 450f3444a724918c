// Parsing and printing of byte sizes as Kubernetes writes them ("8Gi", "512Mi", "1G", "4096").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cellar {

// Accepts a plain byte count or a number with a binary (Ki Mi Gi Ti Pi) or decimal
// (k K M G T P) suffix. InvalidArgument for anything else, OutOfRange on overflow.
Result<uint64_t> ParseSize(std::string_view text);

// "1.5 GiB"-style, for logs and messages.
std::string FormatSize(uint64_t bytes);

}  // namespace cellar
