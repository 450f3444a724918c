// cellar_fuse_mount: serves given arenas as volumes of one Cellar FUSE mount until
// SIGTERM/SIGINT. For tests and benchmarks; `cellar node` embeds FuseServer itself.
//
//   cellar_fuse_mount --mountpoint DIR [--no-passthrough] [--threads N]
//                     [--attr-timeout S] [--entry-timeout S] ID:SLOT:ARENA...
#include <signal.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <iostream>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <CLI/CLI.hpp>

#include "common/logging.h"
#include "common/termination_signals.h"
#include "mount/fuse_server.h"

int main(int argc, char** argv) {
  CLI::App app{"Serve Cellar arenas over FUSE"};
  cellar::mount::FuseConfig config;
  bool no_passthrough = false;
  std::vector<std::string> volumes;
  std::string log_level = "info";
  app.add_option("--mountpoint", config.mountpoint, "where to mount")->required();
  app.add_flag("--no-passthrough", no_passthrough, "serve READ/WRITE in the daemon");
  app.add_option("--threads", config.threads, "serving threads");
  app.add_option("--attr-timeout", config.attr_timeout, "attribute cache seconds");
  app.add_option("--entry-timeout", config.entry_timeout, "entry cache seconds");
  app.add_option("--log-level", log_level, "trace..error");
  // As `cellar node` always does (its /metrics reads them); off here so that benchmarks
  // can measure what counting costs.
  bool count_requests = false;
  app.add_flag("--count-requests", count_requests, "count requests and opens (FuseStats)");
  app.add_option("volumes", volumes, "ID:SLOT:ARENA_DIR");
  CLI11_PARSE(app, argc, argv);
  config.passthrough = !no_passthrough;
  cellar::mount::FuseStats stats;
  if (count_requests) config.stats = &stats;
  spdlog::set_default_logger(spdlog::stderr_color_mt("cellar"));  // stdout: the READY line
  ::signal(SIGPIPE, SIG_IGN);
  if (auto st = cellar::SetLogLevel(log_level); !st.ok()) {
    std::cerr << st.ToString() << "\n";
    return 2;
  }

  // Before any thread starts, as every Cellar process does.
  auto signals = cellar::TerminationSignals::Open();
  if (!signals.ok()) {
    std::cerr << "signals: " << signals.status().ToString() << "\n";
    return 1;
  }

  auto server = cellar::mount::FuseServer::Start(config);
  if (!server.ok()) {
    std::cerr << "start: " << server.status().ToString() << "\n";
    return 1;
  }
  for (const auto& spec : volumes) {
    auto a = spec.find(':');
    auto b = spec.find(':', a == std::string::npos ? a : a + 1);
    if (a == std::string::npos || b == std::string::npos) {
      std::cerr << "bad volume spec " << spec << " (want ID:SLOT:ARENA)\n";
      return 2;
    }
    uint32_t slot = 0;
    const char* first = spec.data() + a + 1;
    const char* last = spec.data() + b;
    if (auto [end, ec] = std::from_chars(first, last, slot); ec != std::errc() || end != last) {
      std::cerr << "bad slot in volume spec " << spec << " (want ID:SLOT:ARENA)\n";
      return 2;
    }
    auto st = (*server)->AttachVolume(spec.substr(0, a), slot, spec.substr(b + 1));
    if (!st.ok()) {
      std::cerr << "attach " << spec << ": " << st.ToString() << "\n";
      return 1;
    }
  }
  std::printf("READY passthrough=%d\n", (*server)->passthrough_active() ? 1 : 0);
  std::fflush(stdout);
  if (auto sig = signals->Wait(std::chrono::milliseconds(-1)); !sig.ok()) {
    std::cerr << "signals: " << sig.status().ToString() << "\n";
  }
  auto st = (*server)->Stop();
  if (!st.ok()) {
    std::cerr << "stop: " << st.ToString() << "\n";
    return 1;
  }
  return 0;
}
