// The JSON log format: one parseable object per line, whatever the message holds.
#include "common/json_log.h"

#include <gtest/gtest.h>

#include "common/logging.h"

namespace cellar {
namespace {

using std::chrono::milliseconds;
using std::chrono::system_clock;

TEST(JsonLogTest, OneObjectPerLineWithUtcMilliseconds) {
  auto t = system_clock::time_point(milliseconds(1'796'362'392'123));  // 2026-12-04T05:33:12.123Z
  EXPECT_EQ(JsonLogLine(t, "info", "NodePublishVolume vol-1 -> OK (1.0 ms)"),
            "{\"time\":\"2026-12-04T05:33:12.123Z\",\"level\":\"info\","
            "\"msg\":\"NodePublishVolume vol-1 -> OK (1.0 ms)\"}\n");
}

TEST(JsonLogTest, QuotesBackslashesAndControlCharactersAreEscaped) {
  auto t = system_clock::time_point(milliseconds(0));
  EXPECT_EQ(JsonLogLine(t, "warn", "code 5 \"gone\" at C:\\x\nnext\ttab\x01"),
            "{\"time\":\"1970-01-01T00:00:00.000Z\",\"level\":\"warn\","
            "\"msg\":\"code 5 \\\"gone\\\" at C:\\\\x\\nnext\\ttab\\u0001\"}\n");
}

TEST(JsonLogTest, UnknownFormatIsRefusedByName) {
  Status st = SetLogFormat("yaml");
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("\"yaml\""), std::string::npos) << st.message();
  EXPECT_TRUE(SetLogFormat("text").ok());
}

}  // namespace
}  // namespace cellar
