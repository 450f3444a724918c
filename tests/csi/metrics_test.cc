// /metrics of a real `cellar node`, scraped over HTTP as Prometheus does, while the
// tests drive it as the provisioner and the kubelet do and write through a pod: the
// node's books follow the calls, a volume's used bytes grow by what was written, and
// the FUSE counters count the requests the mode sends to the daemon (none for
// passthrough reads and writes, every one for the fallback).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/metrics_scrape.h"
#include "tests/support/node_fixture.h"
#include "tests/support/temp_dir.h"

namespace cellar::testing {
namespace {

using namespace csi::v1;
constexpr int64_t kMiB = 1 << 20;

class MetricsTest : public NodeTest {
 protected:
  void SetUp() override {
    CELLAR_SKIP_UNLESS_ROOT("a cellar node");
    port_ = FreeTcpPort();
    ASSERT_GT(port_, 0);
    NodeSettings settings;
    settings.extra_args = {"--metrics-address=127.0.0.1:" + std::to_string(port_)};
    StartNode(settings);
  }

  std::string Scrape() {
    std::string body = HttpGet(port_);
    EXPECT_FALSE(body.empty()) << "no /metrics on port " << port_ << "\n" << node_->Log();
    return body;
  }

  // Counters of opcodes and calls never seen are absent, which means 0.
  static double Count(const std::string& text, const std::string& name,
                      const std::map<std::string, std::string>& labels = {}) {
    return SampleValue(text, name, labels).value_or(0);
  }

  int port_ = 0;
};

TEST_P(MetricsTest, NodeBooksAndCsiCallsFollowTheCalls) {
  std::string before = Scrape();
  EXPECT_EQ(SampleValue(before, "cellar_node_capacity_bytes"), 256 * kMiB);
  EXPECT_EQ(SampleValue(before, "cellar_node_free_bytes"), 256 * kMiB);
  EXPECT_EQ(SampleValue(before, "cellar_node_volumes"), 0);
  EXPECT_EQ(SampleValue(before, "cellar_node_healthy"), 1);
  EXPECT_EQ(SampleValue(before, "cellar_node_info", {{"start_kind", "fresh"}}), 1);
  EXPECT_GE(Count(before, "cellar_csi_calls_total", {{"method", "Probe"}, {"code", "OK"}}), 1)
      << before;

  Volume v = MustCreate("pvc-books", 64 * kMiB);
  NodeGetVolumeStatsResponse stats;
  EXPECT_EQ(Stats("vol-00000000000000000000000000000000", "/nowhere", &stats).error_code(),
            grpc::StatusCode::NOT_FOUND);

  std::string after = Scrape();
  EXPECT_EQ(Count(after, "cellar_csi_calls_total", {{"method", "CreateVolume"}, {"code", "OK"}}),
            1);
  EXPECT_EQ(Count(after, "cellar_csi_calls_total",
                  {{"method", "NodeGetVolumeStats"}, {"code", "NOT_FOUND"}}),
            1);
  EXPECT_EQ(Count(after, "cellar_csi_call_duration_seconds_count", {{"method", "CreateVolume"}}),
            1);
  EXPECT_EQ(SampleValue(after, "cellar_node_volumes"), 1);
  EXPECT_EQ(SampleValue(after, "cellar_node_allocated_bytes"), 64 * kMiB);
  EXPECT_EQ(SampleValue(after, "cellar_node_free_bytes"), 192 * kMiB);
  EXPECT_EQ(SampleValue(after, "cellar_volume_capacity_bytes",
                        {{"volume_id", v.volume_id()},
                         {"pvc_namespace", "pipelines"},
                         {"pvc_name", "data-pvc-books"}}),
            64 * kMiB)
      << after;
  EXPECT_EQ(SampleValue(after, "cellar_volume_publications", {{"volume_id", v.volume_id()}}), 0);
}

TEST_P(MetricsTest, UsedBytesGrowByWhatIsWrittenAndFuseCountsTheRequests) {
  Volume v = MustCreate("pvc-io", 64 * kMiB);
  auto target = node_->TargetPath("m1-pod", "pvc-io");
  ASSERT_TRUE(Publish(KubeletPublish(v, target)).ok());
  const std::map<std::string, std::string> vol = {{"volume_id", v.volume_id()}};

  std::string before = Scrape();
  std::string out;
  ASSERT_EQ(
      RunInPod("dd if=/dev/zero of=" + (target / "blob").string() + " bs=1M count=16 status=none",
               &out),
      0)
      << out;
  std::string written = Scrape();
  ASSERT_EQ(
      RunInPod("dd if=" + (target / "blob").string() + " of=/dev/null bs=1M status=none", &out), 0)
      << out;
  std::string read = Scrape();

  const double used_growth = *SampleValue(written, "cellar_volume_used_bytes", vol) -
                             *SampleValue(before, "cellar_volume_used_bytes", vol);
  EXPECT_GE(used_growth, 16 * kMiB);
  EXPECT_LE(used_growth, 16 * kMiB + 64 * 1024);  // a page or so of metadata
  EXPECT_EQ(*SampleValue(written, "cellar_node_used_bytes") -
                *SampleValue(before, "cellar_node_used_bytes"),
            used_growth);
  EXPECT_EQ(*SampleValue(written, "cellar_volume_files", vol) -
                *SampleValue(before, "cellar_volume_files", vol),
            1);
  EXPECT_EQ(SampleValue(written, "cellar_volume_publications", vol), 1);

  auto delta = [&](const std::string& a, const std::string& b, const std::string& name,
                   const std::map<std::string, std::string>& labels) {
    return Count(b, name, labels) - Count(a, name, labels);
  };
  const auto fuse = std::string("cellar_fuse_requests_total");
  const double writes = delta(before, written, fuse, {{"opcode", "WRITE"}});
  const double reads = delta(written, read, fuse, {{"opcode", "READ"}});
  const double daemon_opens =
      delta(before, read, "cellar_fuse_opens_total", {{"served", "daemon"}});
  const double passthrough_opens =
      delta(before, read, "cellar_fuse_opens_total", {{"served", "passthrough"}});
  switch (GetParam()) {
    case Mode::kFallback:
      // dd's 1 MiB writes are direct I/O here: one WRITE request each.
      EXPECT_EQ(writes, 16) << written;
      EXPECT_GE(reads, 16) << read;
      EXPECT_EQ(delta(before, written, fuse, {{"opcode", "CREATE"}}), 1);
      EXPECT_EQ(daemon_opens, 2);  // the writer's create and the reader's open
      EXPECT_EQ(passthrough_opens, 0);
      break;
    case Mode::kPassthrough:
      EXPECT_EQ(writes, 0) << written;
      EXPECT_EQ(reads, 0) << read;
      EXPECT_EQ(delta(before, written, fuse, {{"opcode", "CREATE"}}), 1);
      EXPECT_EQ(passthrough_opens, 2);
      EXPECT_EQ(daemon_opens, 0);
      break;
    default:  // direct: the pod's I/O never reaches the FUSE layer
      EXPECT_EQ(delta(before, read, fuse, {{"opcode", "CREATE"}}), 0);
      EXPECT_EQ(passthrough_opens + daemon_opens, 0);
      break;
  }
  // The histogram counts what the counter counts.
  for (const char* op : {"CREATE", "WRITE", "READ", "LOOKUP"}) {
    EXPECT_EQ(Count(read, "cellar_fuse_request_duration_seconds_count", {{"opcode", op}}),
              Count(read, fuse, {{"opcode", op}}))
        << op;
  }
  ASSERT_TRUE(Unpublish(v.volume_id(), target.string()).ok());
}

TEST_P(MetricsTest, MountsWhoseConnectionDiedWithTheDaemonAreCountedAfterItsRestart) {
  Volume v = MustCreate("pvc-lost", 16 * kMiB);
  auto target = node_->TargetPath("l1-pod", "pvc-lost");
  ASSERT_TRUE(Publish(KubeletPublish(v, target)).ok());
  // No fd holder: the FUSE connection dies with the daemon (the pod's running
  // containers would see ENOTCONN). In direct mode there is no connection to lose.
  node_->Kill(SIGKILL);
  std::string log;
  ASSERT_TRUE(node_->Start(&log)) << log;
  const double lost = GetParam() == Mode::kDirect ? 0 : 1;

  std::string text = Scrape();
  EXPECT_EQ(SampleValue(text, "cellar_publications_connection_lost"), lost) << text;
  EXPECT_EQ(SampleValue(text, "cellar_publications_abnormal"), lost) << text;
  EXPECT_EQ(SampleValue(text, "cellar_node_info", {{"start_kind", "fresh"}}), 1) << text;
  ASSERT_TRUE(Unpublish(v.volume_id(), target.string()).ok());
  EXPECT_EQ(SampleValue(Scrape(), "cellar_publications_connection_lost"), 0);
}

TEST_P(MetricsTest, AnAddressThatCannotBeServedStopsTheNodeWithAClearError) {
  // Our own node holds port_: a second one must say so and exit, not run without metrics.
  NodeSettings settings;
  settings.mode = GetParam();
  settings.extra_args = {"--metrics-address=127.0.0.1:" + std::to_string(port_)};
  NodeProcess second(settings);
  std::string log;
  EXPECT_FALSE(second.Start(&log));
  EXPECT_NE(second.Log().find("cannot serve metrics on 127.0.0.1:" + std::to_string(port_)),
            std::string::npos)
      << second.Log();
}

CELLAR_INSTANTIATE_MODES(MetricsTest);

// With a `cellar fd-holder` beside it, as deploy/ runs the node: a restarted daemon
// takes the live FUSE connection back, and /metrics says it did.
class TakeoverMetricsTest : public MetricsTest {
 protected:
  void SetUp() override {
    CELLAR_SKIP_UNLESS_ROOT("a cellar node and an fd holder");
    holder_dir_ = std::make_unique<TempDir>("cellar-holder");
    const std::string socket = (*holder_dir_ / "holder.sock").string();
    const std::string log = (*holder_dir_ / "holder.log").string();
    holder_pid_ = ::fork();
    if (holder_pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execl(CELLAR_BINARY, CELLAR_BINARY, "fd-holder", "--socket", socket.c_str(), nullptr);
      _exit(127);
    }
    for (int i = 0; i < 500 && !std::filesystem::exists(socket); ++i) ::usleep(10'000);
    ASSERT_TRUE(std::filesystem::exists(socket)) << "cellar fd-holder did not start";
    port_ = FreeTcpPort();
    NodeSettings settings;
    settings.extra_args = {"--metrics-address=127.0.0.1:" + std::to_string(port_),
                           "--fd-holder=" + socket};
    StartNode(settings);
  }
  void TearDown() override {
    node_.reset();  // leaves the connection to the holder, then unmounts what is left
    if (holder_pid_ > 0) {
      ::kill(holder_pid_, SIGTERM);
      ::waitpid(holder_pid_, nullptr, 0);
    }
    holder_dir_.reset();
  }

  std::unique_ptr<TempDir> holder_dir_;
  pid_t holder_pid_ = -1;
};

TEST_P(TakeoverMetricsTest, ARestartedDaemonTakesTheConnectionBackAndSaysSo) {
  Volume v = MustCreate("pvc-takeover", 16 * kMiB);
  auto target = node_->TargetPath("t1-pod", "pvc-takeover");
  ASSERT_TRUE(Publish(KubeletPublish(v, target)).ok());
  std::string out;
  ASSERT_EQ(RunInPod("dd if=/dev/zero of=" + (target / "f").string() + " bs=1M count=2 status=none",
                     &out),
            0)
      << out;
  EXPECT_EQ(SampleValue(Scrape(), "cellar_node_info", {{"start_kind", "fresh"}}), 1);

  node_->Kill(SIGKILL);
  std::string log;
  ASSERT_TRUE(node_->Start(&log)) << log;
  std::string text = Scrape();
  EXPECT_EQ(SampleValue(text, "cellar_node_info", {{"start_kind", "takeover"}}), 1) << text;
  EXPECT_EQ(SampleValue(text, "cellar_publications_connection_lost"), 0) << text;
  EXPECT_EQ(SampleValue(text, "cellar_publications_abnormal"), 0) << text;
  // The pod's mount is the same connection: it still reads the file.
  EXPECT_EQ(RunInPod("cmp -n 2097152 " + (target / "f").string() + " /dev/zero", &out), 0) << out;
  ASSERT_TRUE(Unpublish(v.volume_id(), target.string()).ok());
}

INSTANTIATE_TEST_SUITE_P(Modes, TakeoverMetricsTest,
                         ::testing::Values(Mode::kPassthrough, Mode::kFallback),
                         [](const auto& info) { return ModeName(info.param); });

}  // namespace
}  // namespace cellar::testing
