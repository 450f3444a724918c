#include "common/host_port.h"

#include <gtest/gtest.h>

namespace cellar {
namespace {

constexpr HostPortRules kMetrics{true, true, ":9808"};

TEST(ParseHostPortTest, HostAndPort) {
  auto hp = ParseHostPort("--peer-listen", "10.0.0.5:7443");
  ASSERT_TRUE(hp.ok()) << hp.status().ToString();
  EXPECT_EQ(hp->host, "10.0.0.5");
  EXPECT_EQ(hp->port, 7443);
  EXPECT_EQ(ParseHostPort("f", ":7443")->host, "");
  EXPECT_EQ(ParseHostPort("f", "node-a.example:1")->host, "node-a.example");
  EXPECT_EQ(ParseHostPort("f", "h:65535")->port, 65535);
  // IPv6: the port follows the last colon; the brackets stay for the listener.
  EXPECT_EQ(ParseHostPort("f", "[::1]:9808")->host, "[::1]");
  EXPECT_EQ(ParseHostPort("f", "[::]:9808")->host, "[::]");
  EXPECT_EQ(ParseHostPort("f", "::1:9808")->host, "::1");
}

TEST(ParseHostPortTest, BarePortAndPortZeroOnlyWhereAllowed) {
  EXPECT_EQ(ParseHostPort("f", "9808").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseHostPort("f", "h:0").status().code(), Code::kInvalidArgument);
  auto bare = ParseHostPort("f", "9808", kMetrics);
  ASSERT_TRUE(bare.ok()) << bare.status().ToString();
  EXPECT_EQ(bare->host, "");
  EXPECT_EQ(bare->port, 9808);
  EXPECT_EQ(ParseHostPort("f", "127.0.0.1:0", kMetrics)->port, 0);
  EXPECT_EQ(ParseHostPort("f", "0", kMetrics)->port, 0);
}

TEST(ParseHostPortTest, ErrorsNameTheFlagTheValueAndTheForm) {
  for (const char* bad : {"", ":", "host:", "h:70000", "h:98x", "h:-1", "h: 1", "h:99999999999",
                          "http://h:1", "h:1/metrics", "a b:1"}) {
    for (const HostPortRules& rules : {HostPortRules{}, kMetrics}) {
      auto r = ParseHostPort("--peer-listen", bad, rules);
      ASSERT_FALSE(r.ok()) << bad;
      EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
      const std::string& msg = r.status().message();
      EXPECT_EQ(msg.rfind(std::string("--peer-listen \"") + bad + "\" ", 0), 0u) << msg;
      EXPECT_NE(msg.find(rules.bare_port ? "give HOST:PORT, :PORT or PORT (e.g. :9808)"
                                         : "give HOST:PORT (e.g. 10.0.0.5:7443)"),
                std::string::npos)
          << msg;
    }
  }
  EXPECT_EQ(ParseHostPort("--peer-listen", "10.0.0.5").status().message(),
            "--peer-listen \"10.0.0.5\" has no port: give HOST:PORT (e.g. 10.0.0.5:7443)");
  EXPECT_EQ(ParseHostPort("metrics address", "localhost:http", kMetrics).status().message(),
            "metrics address \"localhost:http\" has no valid port: give HOST:PORT, :PORT or PORT "
            "(e.g. :9808)");
  EXPECT_EQ(ParseHostPort("f", "http://h:1").status().message(),
            "f \"http://h:1\" is not a host and port: give HOST:PORT (e.g. 10.0.0.5:7443)");
}

}  // namespace
}  // namespace cellar
