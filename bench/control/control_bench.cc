// The control path at scale: N volumes created, published, unpublished and deleted
// through a real `cellar node` socket, as the provisioner and kubelet would.
// Prints p50/p99/max latency per RPC and the daemon's RSS with all volumes present.
//
//   build/bench/control_bench [--volumes 1000] [--fallback]
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "tests/support/csi_requests.h"
#include "tests/support/node_process.h"

using namespace cellar::testing;
using Clock = std::chrono::steady_clock;

namespace {

uint64_t RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      uint64_t kib;
      in >> kib;
      return kib;
    }
    std::getline(in, key);
  }
  return 0;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

template <typename F>
bool Timed(std::vector<double>& out, F&& call) {
  auto start = Clock::now();
  grpc::Status st = call();
  out.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  if (!st.ok()) std::fprintf(stderr, "rpc failed: %s\n", st.error_message().c_str());
  return st.ok();
}

}  // namespace

int main(int argc, char** argv) {
  int volumes = 1000;
  NodeSettings settings;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--volumes" && i + 1 < argc) volumes = std::stoi(argv[++i]);
    if (a == "--fallback") settings.mode = Mode::kFallback;
  }
  settings.capacity = std::to_string(volumes + 64) + "Mi";
  settings.max_volumes = volumes + 16;
  NodeProcess node(settings);
  std::string log;
  if (!node.Start(&log)) {
    std::fprintf(stderr, "cellar node did not start:\n%s\n", log.c_str());
    return 1;
  }
  uint64_t rss_empty = RssKiB(node.pid());
  std::map<std::string, std::vector<double>> lat;
  std::vector<csi::v1::Volume> created;
  std::vector<std::string> targets;
  auto t0 = Clock::now();
  for (int i = 0; i < volumes; ++i) {
    csi::v1::CreateVolumeResponse resp;
    std::string name = "pvc-bench-" + std::to_string(i);
    if (!Timed(lat["CreateVolume"], [&] {
          grpc::ClientContext ctx;
          return node.controller().CreateVolume(&ctx, ProvisionerCreate(name, 1 << 20, "node-a"),
                                                &resp);
        }))
      return 1;
    created.push_back(resp.volume());
  }
  for (int i = 0; i < volumes; ++i) {
    targets.push_back(node.TargetPath("pod-" + std::to_string(i), "pv").string());
    if (!Timed(lat["NodePublishVolume"], [&] {
          grpc::ClientContext ctx;
          csi::v1::NodePublishVolumeResponse resp;
          return node.node().NodePublishVolume(&ctx, KubeletPublish(created[i], targets[i]), &resp);
        }))
      return 1;
  }
  for (int i = 0; i < volumes; ++i) {
    Timed(lat["NodeGetVolumeStats"], [&] {
      grpc::ClientContext ctx;
      csi::v1::NodeGetVolumeStatsRequest req;
      req.set_volume_id(created[i].volume_id());
      req.set_volume_path(targets[i]);
      csi::v1::NodeGetVolumeStatsResponse resp;
      return node.node().NodeGetVolumeStats(&ctx, req, &resp);
    });
  }
  Timed(lat["ListVolumes (all)"], [&] {
    grpc::ClientContext ctx;
    csi::v1::ListVolumesResponse resp;
    return node.controller().ListVolumes(&ctx, {}, &resp);
  });
  uint64_t rss_full = RssKiB(node.pid());
  for (int i = 0; i < volumes; ++i) {
    if (!Timed(lat["NodeUnpublishVolume"], [&] {
          grpc::ClientContext ctx;
          csi::v1::NodeUnpublishVolumeRequest req;
          req.set_volume_id(created[i].volume_id());
          req.set_target_path(targets[i]);
          csi::v1::NodeUnpublishVolumeResponse resp;
          return node.node().NodeUnpublishVolume(&ctx, req, &resp);
        }))
      return 1;
  }
  for (int i = 0; i < volumes; ++i) {
    if (!Timed(lat["DeleteVolume"], [&] {
          grpc::ClientContext ctx;
          csi::v1::DeleteVolumeRequest req;
          req.set_volume_id(created[i].volume_id());
          csi::v1::DeleteVolumeResponse resp;
          return node.controller().DeleteVolume(&ctx, req, &resp);
        }))
      return 1;
  }
  double total_s = std::chrono::duration<double>(Clock::now() - t0).count();

  std::printf("control path, %d volumes, %s mode, %.1f s in all\n\n", volumes,
              ModeName(settings.mode).c_str(), total_s);
  std::printf("| RPC | calls | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n");
  for (const char* name : {"CreateVolume", "NodePublishVolume", "NodeGetVolumeStats",
                           "ListVolumes (all)", "NodeUnpublishVolume", "DeleteVolume"}) {
    const auto& v = lat[name];
    std::printf("| %s | %zu | %.2f | %.2f | %.2f |\n", name, v.size(), Percentile(v, 0.5),
                Percentile(v, 0.99), *std::max_element(v.begin(), v.end()));
  }
  std::printf("\ndaemon RSS: %.1f MiB empty, %.1f MiB with %d volumes published\n",
              rss_empty / 1024.0, rss_full / 1024.0, volumes);
  return 0;
}
