// `cellar registrar`: registers the driver with the kubelet, as kubernetes-csi's
// node-driver-registrar does, so the plugin pod needs no third-party image for it.
//
// The kubelet's plugin watcher looks for sockets in /var/lib/kubelet/plugins_registry.
// On one it finds, it calls Registration.GetInfo (pluginregistration.proto) to learn
// the plugin's type, name and CSI endpoint (a path on the host), registers the driver
// (NodeGetInfo on that endpoint, then the CSINode object) and tells the plugin the
// outcome with NotifyRegistrationStatus. When the socket goes away, the kubelet
// unregisters the driver.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "common/status.h"

namespace cellar::csi {

inline constexpr const char* kCsiPluginType = "CSIPlugin";
inline constexpr const char* kCsiPluginVersion = "1.0.0";  // the only one the kubelet knows

struct RegistrarOptions {
  // The driver's CSI socket as this process sees it (--csi-address).
  std::filesystem::path csi_socket;
  // The same socket as the kubelet sees it on the host (--kubelet-registration-path):
  // what GetInfo tells the kubelet to call.
  std::string kubelet_registration_path;
  // Where the kubelet's plugins_registry directory is mounted (--plugin-registration-path).
  std::filesystem::path registration_dir = "/registration";
  // How long one GetPluginInfo call (or the whole --check) may take.
  std::chrono::milliseconds timeout{5000};
};

// <registration_dir>/<driver>-reg.sock. InvalidArgument for a driver name that cannot
// be part of a file name, or a path too long for a unix socket.
Result<std::filesystem::path> RegistrationSocketPath(const std::filesystem::path& registration_dir,
                                                     const std::string& driver_name);

// Waits for the driver on csi_socket and asks its name (GetPluginInfo, retried with a
// growing delay, each failure logged); while the answer comes from a daemon on another
// host (GetPluginInfo's cellar.dev/host: the old pod of a rollout, before the hand-over
// to this pod's daemon) it keeps waiting, so that the kubelet's NodeGetInfo at
// registration reaches this pod's daemon and its topology. Then it serves Registration on
// <registration_dir>/<driver>-reg.sock, replacing whatever socket is there (a stale
// one, or the one of the old pod of a rollout). Returns OK on SIGTERM/SIGINT, having
// removed the socket if it is still its own (a newer registrar's is left alone).
// Returns FailedPrecondition when the kubelet reports that it did not register the
// driver (the container restarts and tries again, as upstream's does); InvalidArgument
// for bad options, a registration directory that is missing, or a non-socket file at
// the socket's path; Unavailable when the socket cannot be served.
Status RunRegistrar(const RegistrarOptions& options);

// The liveness check (`cellar registrar --check`): OK when a socket in registration_dir
// answers GetInfo, within options.timeout, as a CSI plugin whose endpoint is
// options.kubelet_registration_path. It does not need the driver's name (so a probe
// needs no more than the registrar's own flags) and does not call the driver (a
// restarting `cellar node` must not restart the registrar). Unavailable, naming what
// was found, otherwise; InvalidArgument for bad options.
Status CheckRegistration(const RegistrarOptions& options);

}  // namespace cellar::csi
