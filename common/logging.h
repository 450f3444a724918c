// Logging set-up: one process-wide spdlog logger on stderr (the container log).
#pragma once

#include <string_view>

#include <spdlog/spdlog.h>

#include "common/status.h"

namespace cellar {

// Accepts trace, debug, info, warn, error; InvalidArgument otherwise.
Status SetLogLevel(std::string_view level);

}  // namespace cellar
