// One-shot gRPC clients of local unix sockets, for the subcommands that talk to a
// running `cellar node` rather than serve: `cellar probe` (the exec liveness and
// readiness probes) and `cellar registrar` (which asks the driver its name). Also the
// parsing of the flags they share (socket addresses, durations).
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <grpcpp/grpcpp.h>

#include "cellar_admin.pb.h"
#include "common/status.h"

namespace cellar::csi {

// "4s", "500ms", "2m", or a bare number of seconds -> milliseconds. InvalidArgument for
// anything else, for zero and for more than a day.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

// A CSI socket as the kubernetes-csi sidecars accept it: "unix:///csi/csi.sock",
// "unix:/csi/csi.sock" or a plain absolute path. InvalidArgument otherwise (a TCP
// address, a relative path, a path too long for a unix socket).
Result<std::filesystem::path> ParseSocketAddress(const std::string& address);

// A channel to the unix socket `path` that connects afresh: its own subchannel pool,
// so no backoff left by an earlier failed connection (of this or another channel to
// the same socket) delays it.
std::shared_ptr<grpc::Channel> UnixChannel(const std::filesystem::path& path);

// Calls the CSI Identity service's Probe on `socket`, waiting at most `timeout`.
// OK when the driver answers ready (true, or absent: the spec lets a CO assume ready);
// Unavailable when nothing serves the socket (missing, stale, refused);
// DeadlineExceeded when no answer came in time; FailedPrecondition when it answered
// ready=false; the RPC's own code for any other error.
Status ProbeDriver(const std::filesystem::path& socket, std::chrono::milliseconds timeout);

// GetPluginInfo's manifest key naming the host (in Kubernetes: the pod) of the process
// that answered.
inline constexpr const char* kHostManifestKey = "cellar.dev/host";

// This process's host name (in Kubernetes: its pod's); "" if it cannot be read. What
// GetPluginInfo reports under kHostManifestKey, and what the registrar compares it with.
std::string HostName();

struct DriverInfo {
  std::string name;
  std::string host;  // kHostManifestKey; empty from a driver that does not say
};

// The driver's name and host from GetPluginInfo on `socket`, waiting at most `timeout`.
// Errors as ProbeDriver's; InvalidArgument when the name it gives is empty.
Result<DriverInfo> DriverInfoOf(const std::filesystem::path& socket,
                                std::chrono::milliseconds timeout);

// What the `cellar node` on `socket` holds (its Admin service, cellar_admin.proto),
// waiting at most `timeout`. Errors as ProbeDriver's; Unimplemented from a node too old
// to serve the Admin service.
Result<cellar::admin::v1::NodeStatus> NodeStatusOf(const std::filesystem::path& socket,
                                                   std::chrono::milliseconds timeout);

}  // namespace cellar::csi
