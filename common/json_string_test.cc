#include "common/json_string.h"

#include <gtest/gtest.h>

namespace cellar {
namespace {

TEST(JsonStringTest, QuotesBackslashesAndControlCharactersAreEscaped) {
  EXPECT_EQ(JsonString("a\"b\\c\nd\te\r\x01\x1f"), "\"a\\\"b\\\\c\\nd\\te\\r\\u0001\\u001f\"");
}

TEST(JsonStringTest, Utf8AndSlashesPassUnchanged) {
  EXPECT_EQ(JsonString("n\xc3\xb6"
                       "de/x"),
            "\"n\xc3\xb6"
            "de/x\"");
  EXPECT_EQ(JsonString(""), "\"\"");
  EXPECT_EQ(JsonString(std::string_view("a\0b", 3)), "\"a\\u0000b\"");
}

}  // namespace
}  // namespace cellar
