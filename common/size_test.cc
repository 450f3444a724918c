#include "common/size.h"

#include <gtest/gtest.h>

namespace cellar {
namespace {

TEST(ParseSizeTest, AcceptsKubernetesQuantities) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("512Mi"), 512ull << 20);
  EXPECT_EQ(*ParseSize("8Gi"), 8ull << 30);
  EXPECT_EQ(*ParseSize("1G"), 1000000000ull);
  EXPECT_EQ(*ParseSize("2Ti"), 2ull << 40);
}

TEST(ParseSizeTest, RejectsGarbage) {
  EXPECT_EQ(ParseSize("").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseSize("Gi").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseSize("8GB").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseSize("-1").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseSize("1.5Gi").status().code(), Code::kInvalidArgument);
}

TEST(ParseSizeTest, RejectsOverflow) {
  EXPECT_EQ(ParseSize("99999999999999999999").status().code(), Code::kOutOfRange);
  EXPECT_EQ(ParseSize("99999999Pi").status().code(), Code::kOutOfRange);
}

TEST(FormatSizeTest, Readable) {
  EXPECT_EQ(FormatSize(512), "512 B");
  EXPECT_EQ(FormatSize(3ull << 30), "3.0 GiB");
}

}  // namespace
}  // namespace cellar
