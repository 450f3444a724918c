// `cellar status` against a real node with published volumes, as an operator runs it
// in the plugin container: the table, --json, and the errors when no node answers.
// Also --log-format=json, whose lines a log pipeline must be able to parse one by one.
#include <stdio.h>
#include <sys/wait.h>

#include <sstream>

#include "tests/support/node_fixture.h"

namespace cellar::testing {
namespace {

using namespace csi::v1;
constexpr int64_t kMiB = 1 << 20;

// Runs `cellar <args>`; returns its exit status and its stdout+stderr in `out`.
int RunCellar(const std::string& args, std::string* out) {
  std::string command = std::string(CELLAR_BINARY) + " " + args + " 2>&1";
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = ::fread(buf, 1, sizeof(buf), p)) > 0) out->append(buf, n);
  int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string IoModeOf(Mode mode) {
  switch (mode) {
    case Mode::kFallback: return "fuse";
    case Mode::kDirect: return "direct";
    default: return "passthrough";
  }
}

class StatusTest : public NodeTest {
 protected:
  void SetUp() override {
    CELLAR_SKIP_UNLESS_ROOT("a cellar node");
    NodeSettings settings;
    settings.extra_args = {"--log-format=json"};
    StartNode(settings);
  }
  std::string Endpoint() const { return "--endpoint unix://" + node_->socket().string(); }
};

TEST_P(StatusTest, ShowsVolumesUseAndPublicationsWithTheirPods) {
  Volume a = MustCreate("pvc-status-a", 32 * kMiB);
  Volume b = MustCreate("pvc-status-b", 16 * kMiB);
  auto target_rw = node_->TargetPath("s1-pod", "pvc-status-a");
  auto target_ro = node_->TargetPath("s2-pod", "pvc-status-a");
  ASSERT_TRUE(Publish(KubeletPublish(a, target_rw)).ok());
  ASSERT_TRUE(Publish(KubeletPublish(a, target_ro, /*readonly=*/true)).ok());
  std::string dd;
  ASSERT_EQ(
      RunInPod("dd if=/dev/zero of=" + (target_rw / "f").string() + " bs=1M count=4 status=none",
               &dd),
      0)
      << dd;

  std::string out;
  ASSERT_EQ(RunCellar("status " + Endpoint(), &out), 0) << out;
  EXPECT_NE(out.find("node node-a (csi.cellar.dev "), std::string::npos) << out;
  EXPECT_NE(out.find("io mode " + IoModeOf(GetParam()) + ", healthy"), std::string::npos) << out;
  EXPECT_NE(out.find("capacity 256.0 MiB, allocated 48.0 MiB, free 208.0 MiB"), std::string::npos)
      << out;
  EXPECT_NE(out.find("by 2 volumes"), std::string::npos) << out;
  EXPECT_NE(out.find(a.volume_id()), std::string::npos) << out;
  EXPECT_NE(out.find(b.volume_id()), std::string::npos) << out;
  EXPECT_NE(out.find("pipelines/data-pvc-status-a"), std::string::npos) << out;
  for (const auto& [how, target] : {std::pair{"rw", target_rw}, std::pair{"ro", target_ro}}) {
    EXPECT_NE(out.find(std::string("published ") + how + " at " + target.string() +
                       " for pod pipelines/step-1: healthy"),
              std::string::npos)
        << out;
  }

  std::string json;
  ASSERT_EQ(RunCellar("status --json " + Endpoint(), &json), 0) << json;
  EXPECT_NE(json.find("\"io_mode\": \"" + IoModeOf(GetParam()) + "\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"healthy\": true"), std::string::npos) << json;
  EXPECT_NE(json.find("\"pod_name\": \"step-1\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"target_path\": \"" + target_ro.string() + "\""), std::string::npos)
      << json;
  EXPECT_NE(json.find("\"pvc_name\": \"data-pvc-status-b\""), std::string::npos) << json;
  // 4 MiB written: used_bytes of volume a is at least that (a 64-bit field: a string).
  auto at = json.find("\"used_bytes\": \"", json.find("\"id\": \"" + a.volume_id()));
  ASSERT_NE(at, std::string::npos) << json;
  EXPECT_GE(std::stoll(json.substr(at + 15)), 4 * kMiB) << json;

  for (const auto& t : {target_rw, target_ro}) {
    ASSERT_TRUE(Unpublish(a.volume_id(), t.string()).ok());
  }
}

TEST_P(StatusTest, LogIsOneJsonObjectPerLineWithEveryCsiCall) {
  Volume v = MustCreate("pvc-json-log", 8 * kMiB);
  std::istringstream log(node_->Log());
  std::string line;
  int lines = 0;
  bool create_logged = false;
  while (std::getline(log, line)) {
    ++lines;
    EXPECT_EQ(line.rfind("{\"time\":\"", 0), 0u) << line;
    EXPECT_EQ(line.back(), '}') << line;
    if (line.find("\"msg\":\"CreateVolume pvc-json-log -> OK") != std::string::npos) {
      create_logged = true;
    }
  }
  EXPECT_GT(lines, 3);
  EXPECT_TRUE(create_logged) << node_->Log();
}

TEST_P(StatusTest, SaysWhyWhenNoNodeAnswers) {
  std::string out;
  EXPECT_EQ(RunCellar("status --endpoint unix://" + (node_->root() / "none.sock").string(), &out),
            1);
  EXPECT_NE(out.find("no socket at"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(RunCellar("status --endpoint tcp://127.0.0.1:1", &out), 2) << out;
  EXPECT_NE(out.find("--endpoint"), std::string::npos) << out;
}

CELLAR_INSTANTIATE_MODES(StatusTest);

// Bad observability flags stop `cellar node` before it touches anything, naming the
// flag and the value (exit 2, as every bad argument).
TEST(ObserveFlagsTest, BadLogFormatAndMetricsAddressAreRefusedByName) {
  const std::string node = "node --endpoint unix:///tmp/cellar-never/csi.sock --node-id n ";
  std::string out;
  EXPECT_EQ(RunCellar(node + "--log-format=yaml", &out), 2) << out;
  EXPECT_NE(out.find("--log-format: log format \"yaml\" is not one of text, json"),
            std::string::npos)
      << out;
  out.clear();
  EXPECT_EQ(RunCellar(node + "--metrics-address=localhost:http", &out), 2) << out;
  EXPECT_NE(out.find("--metrics-address: metrics address \"localhost:http\" has no valid port"),
            std::string::npos)
      << out;
  EXPECT_FALSE(std::filesystem::exists("/tmp/cellar-never"));
}

}  // namespace
}  // namespace cellar::testing
