#include "common/status.h"

#include <gtest/gtest.h>

namespace cellar {
namespace {

TEST(StatusTest, OkIsDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Code::kOk);
  EXPECT_EQ(s.err(), 0);
}

TEST(StatusTest, ErrnoMapsToCodeAndKeepsErrno) {
  Status s = Status::FromErrno(ENOSPC, "write vol-1/a");
  EXPECT_EQ(s.code(), Code::kResourceExhausted);
  EXPECT_EQ(s.err(), ENOSPC);
  EXPECT_NE(s.message().find("write vol-1/a"), std::string::npos);
}

TEST(StatusTest, CodeWithoutErrnoGivesClosestErrno) {
  EXPECT_EQ(NotFound("x").err(), ENOENT);
  EXPECT_EQ(Status(Code::kAlreadyExists, "x").err(), EEXIST);
}

TEST(StatusTest, WithContextPrefixes) {
  Status s = NotFound("no such object").WithContext("volume vol-1");
  EXPECT_EQ(s.message(), "volume vol-1: no such object");
  EXPECT_EQ(s.code(), Code::kNotFound);
}

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int half, Half(x));
  ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

TEST(ResultTest, PropagatesErrors) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().code(), Code::kInvalidArgument);
}

TEST(ResultTest, OkStatusIsNotAValue) {
  Result<int> r{Status::Ok()};
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInternal);
}

}  // namespace
}  // namespace cellar
