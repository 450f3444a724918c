#include "csi/local_client.h"

#include <gtest/gtest.h>

#include "csi/registrar.h"

namespace cellar::csi {
namespace {

using std::chrono::milliseconds;

TEST(DurationTest, UnitsAndBareSeconds) {
  EXPECT_EQ(*ParseDuration("4s"), milliseconds(4000));
  EXPECT_EQ(*ParseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(*ParseDuration("2m"), milliseconds(120'000));
  EXPECT_EQ(*ParseDuration("3"), milliseconds(3000));
}

TEST(DurationTest, MalformedZeroAndHugeAreInvalid) {
  for (const char* bad : {"", "s", "4h", "-1s", "1.5s", "0s", "0", "4 s", "90000000s"}) {
    auto d = ParseDuration(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().code(), Code::kInvalidArgument) << bad;
  }
}

TEST(SocketAddressTest, PathsAndUnixUrls) {
  EXPECT_EQ(*ParseSocketAddress("/csi/csi.sock"), "/csi/csi.sock");
  EXPECT_EQ(*ParseSocketAddress("unix:///csi/csi.sock"), "/csi/csi.sock");
  EXPECT_EQ(*ParseSocketAddress("unix:/csi/csi.sock"), "/csi/csi.sock");
  for (const char* bad : {"", "csi.sock", "tcp://1.2.3.4:10000", "unix://csi.sock", "/csi/"}) {
    EXPECT_FALSE(ParseSocketAddress(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseSocketAddress("/" + std::string(200, 'a')).ok());
}

TEST(RegistrationSocketTest, NamedAfterTheDriver) {
  EXPECT_EQ(*RegistrationSocketPath("/registration", "csi.cellar.dev"),
            "/registration/csi.cellar.dev-reg.sock");
  EXPECT_EQ(
      *RegistrationSocketPath("/registration", "vineyardd-sample.vineyard-system.csi.cellar.dev"),
      "/registration/vineyardd-sample.vineyard-system.csi.cellar.dev-reg.sock");
  for (const char* bad : {"", "../x", "a/b", ".hidden", "white space"}) {
    EXPECT_FALSE(RegistrationSocketPath("/registration", bad).ok()) << bad;
  }
  EXPECT_FALSE(RegistrationSocketPath("/registration", std::string(64, 'a')).ok());
}

}  // namespace
}  // namespace cellar::csi
