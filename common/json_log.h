// --log-format=json: one JSON object per line, for log pipelines (Loki, Fluent Bit,
// Elasticsearch) that would otherwise have to parse the text format with a regex:
//   {"time":"2026-12-04T05:33:12.123Z","level":"info","msg":"NodePublishVolume ..."}
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/formatter.h>

namespace cellar {

// One log line (with its trailing newline). Time in UTC to the millisecond; `msg` is
// escaped as JSON requires (quotes, backslashes, control characters).
std::string JsonLogLine(std::chrono::system_clock::time_point time, std::string_view level,
                        std::string_view msg);

// The spdlog formatter that writes JsonLogLine.
std::unique_ptr<spdlog::formatter> MakeJsonFormatter();

}  // namespace cellar
