#include "csi/io_mode.h"

#include <gtest/gtest.h>

namespace cellar::csi {
namespace {

TEST(IoModeTest, NamesRoundTrip) {
  for (IoMode mode : {IoMode::kAuto, IoMode::kPassthrough, IoMode::kFuse, IoMode::kDirect}) {
    auto parsed = ParseIoMode(IoModeName(mode));
    ASSERT_TRUE(parsed.ok()) << IoModeName(mode);
    EXPECT_EQ(*parsed, mode);
  }
}

TEST(IoModeTest, UnknownNameIsInvalidArgumentNamingIt) {
  auto parsed = ParseIoMode("zero-copy");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), Code::kInvalidArgument);
  EXPECT_NE(parsed.status().message().find("zero-copy"), std::string::npos);
}

}  // namespace
}  // namespace cellar::csi
