#include "common/logging.h"

#include <string>

#include "common/json_log.h"

namespace cellar {

Status SetLogLevel(std::string_view level) {
  auto parsed = spdlog::level::from_str(std::string(level));
  // from_str maps unknown names to "off"; only an explicit "off" may mean off.
  if (parsed == spdlog::level::off && level != "off") {
    return Error(Code::kInvalidArgument,
                 "log level \"{}\" is not one of trace, debug, info, warn, error, off", level);
  }
  spdlog::set_level(parsed);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ %v");
  return Status::Ok();
}

Status SetLogFormat(std::string_view format) {
  if (format == "text") return Status::Ok();
  if (format != "json") {
    return Error(Code::kInvalidArgument, "log format \"{}\" is not one of text, json", format);
  }
  spdlog::set_formatter(MakeJsonFormatter());
  return Status::Ok();
}

}  // namespace cellar
