// Logging set-up: one process-wide spdlog logger on stderr (the container log).
#pragma once

#include <string_view>

#include <spdlog/spdlog.h>

#include "common/status.h"

namespace cellar {

// Accepts trace, debug, info, warn, error; InvalidArgument otherwise.
// Also resets the format to text.
Status SetLogLevel(std::string_view level);

// "text" (the default: time, level letter, message) or "json" (one object per line, see
// json_log.h). InvalidArgument otherwise. Call after SetLogLevel.
Status SetLogFormat(std::string_view format);

}  // namespace cellar
