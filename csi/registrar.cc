#include "csi/registrar.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>
#include <vector>

#include <fmt/ranges.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "common/termination_signals.h"
#include "common/unique_fd.h"
#include "common/unix_socket.h"
#include "csi/local_client.h"
#include "pluginregistration.grpc.pb.h"

namespace cellar::csi {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

Result<fs::path> RegistrationSocketPath(const fs::path& registration_dir,
                                        const std::string& driver_name) {
  // CSI names are DNS-like (at most 63 characters, [a-z0-9.-]); anything else in a
  // file name would put the socket somewhere the kubelet does not look.
  if (driver_name.empty() || driver_name.size() > 63 || driver_name.starts_with(".") ||
      !std::all_of(driver_name.begin(), driver_name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '-' || c == '_';
      })) {
    return Error(Code::kInvalidArgument,
                 "driver name \"{}\" cannot name a registration socket (want at most 63 of "
                 "[a-zA-Z0-9.-_])",
                 driver_name);
  }
  fs::path path = registration_dir / (driver_name + "-reg.sock");
  if (path.string().size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Error(Code::kInvalidArgument,
                 "registration socket {} is longer than a unix socket path may be", path.string());
  }
  return path;
}

namespace {

Status CheckOptions(const RegistrarOptions& options) {
  if (options.kubelet_registration_path.empty()) {
    return InvalidArgument(
        "--kubelet-registration-path is empty: pass the driver's socket as the kubelet sees it "
        "on the host (/var/lib/kubelet/plugins/<driver>/csi.sock)");
  }
  if (!fs::path(options.kubelet_registration_path).is_absolute()) {
    return Error(Code::kInvalidArgument, "--kubelet-registration-path {} is not an absolute path",
                 options.kubelet_registration_path);
  }
  if (!options.registration_dir.is_absolute()) {
    return Error(Code::kInvalidArgument, "--plugin-registration-path {} is not an absolute path",
                 options.registration_dir.string());
  }
  std::error_code ec;
  if (!fs::is_directory(options.registration_dir, ec)) {
    return Error(Code::kInvalidArgument,
                 "--plugin-registration-path {} is not a directory (mount the kubelet's "
                 "/var/lib/kubelet/plugins_registry there)",
                 options.registration_dir.string());
  }
  return Status::Ok();
}

// Waits up to `ms` for a termination signal; true if one came (or the wait failed).
bool SignalWithin(const TerminationSignals& signals, std::chrono::milliseconds ms) {
  Result<int> got = signals.Wait(ms);
  if (got.ok() && *got == 0) return false;
  spdlog::info("{}: stopping", got.ok() ? fmt::format("signal {}", *got) : got.status().ToString());
  return true;
}

// The driver's name, asked until it answers; Cancelled if a signal came first.
Result<std::string> WaitForDriver(const RegistrarOptions& options,
                                  const TerminationSignals& signals) {
  const auto start = Clock::now();
  const std::string own_host = HostName();
  auto delay = std::chrono::milliseconds(500);
  for (int attempt = 1;; ++attempt) {
    auto info = DriverInfoOf(options.csi_socket, options.timeout);
    Status why = info.status();
    if (info.ok() && !info->host.empty() && info->host != own_host) {
      // A rollout: the old pod's daemon still serves the socket, and the kubelet would
      // take its NodeGetInfo (topology labels) from it. Register once ours answers.
      why = Error(Code::kUnavailable,
                  "the daemon answering runs on host {}, not on this one ({}): the old pod of "
                  "a rollout, before it hands over to this pod's",
                  info->host, own_host);
    } else if (info.ok()) {
      spdlog::info("the CSI driver on {} is {}", options.csi_socket.string(), info->name);
      return info->name;
    }
    // Expected for a few seconds while `cellar node` starts; worth a warning after that.
    auto waited = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start);
    auto level = waited < std::chrono::seconds(30) ? spdlog::level::info : spdlog::level::warn;
    spdlog::log(level, "waiting for the CSI driver ({} s, attempt {}): {}; next attempt in {} ms",
                waited.count(), attempt, why.message(), delay.count());
    if (SignalWithin(signals, delay)) return Status(Code::kCancelled, "stopped by a signal");
    delay = std::min(delay * 2, std::chrono::milliseconds(5'000));
  }
}

// Readies `path` to be replaced by a new socket: a stale socket goes (PrepareSocketPath),
// a live one of another registrar stays until the new one is renamed over it (the old
// pod of a rollout: the newest registrar is the one the kubelet should talk to, as with
// upstream's). Refuses a non-socket.
Status ClearSocketPath(const fs::path& path) {
  Status st = PrepareSocketPath(path);
  if (st.code() != Code::kFailedPrecondition) return st;
  spdlog::info(
      "replacing registration socket {}, served by another registrar (the old pod of "
      "a rollout?)",
      path.string());
  return Status::Ok();
}

// Where the server listens before its socket is renamed to `path`: a name in the same
// directory that starts with '.', which the kubelet's plugin watcher ignores, and is
// unique to this process (both registrars of a rollout may be PID 1).
fs::path HiddenTwin(const fs::path& path) {
  std::random_device random;
  return path.parent_path() /
         fmt::format(".{}.{:08x}", path.filename().string(), static_cast<uint32_t>(random()));
}

struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const FileId&) const = default;
};

std::optional<FileId> FileIdOf(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  return FileId{st.st_dev, st.st_ino};
}

class RegistrationService final : public ::pluginregistration::Registration::Service {
 public:
  RegistrationService(std::string driver, std::string endpoint, int wake_fd)
      : driver_(std::move(driver)), endpoint_(std::move(endpoint)), wake_fd_(wake_fd) {}

  grpc::Status GetInfo(grpc::ServerContext*, const ::pluginregistration::InfoRequest*,
                       ::pluginregistration::PluginInfo* info) override {
    spdlog::debug("GetInfo: {} {} at {}", kCsiPluginType, driver_, endpoint_);
    info->set_type(kCsiPluginType);
    info->set_name(driver_);
    info->set_endpoint(endpoint_);
    info->add_supported_versions(kCsiPluginVersion);
    return grpc::Status::OK;
  }

  grpc::Status NotifyRegistrationStatus(
      grpc::ServerContext*, const ::pluginregistration::RegistrationStatus* status,
      ::pluginregistration::RegistrationStatusResponse*) override {
    if (status->plugin_registered()) {
      spdlog::info("the kubelet registered {} (endpoint {})", driver_, endpoint_);
      return grpc::Status::OK;
    }
    std::string why = status->error().empty() ? "no reason given" : status->error();
    spdlog::error("the kubelet did not register {}: {}", driver_, why);
    {
      std::lock_guard lock(mu_);
      if (!refusal_) refusal_ = why;
    }
    uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof(one));
    return grpc::Status::OK;
  }

  std::optional<std::string> refusal() {
    std::lock_guard lock(mu_);
    return refusal_;
  }

 private:
  const std::string driver_;
  const std::string endpoint_;
  const int wake_fd_;
  std::mutex mu_;
  std::optional<std::string> refusal_;  // GUARDED_BY(mu_)
};

}  // namespace

Status RunRegistrar(const RegistrarOptions& options) {
  RETURN_IF_ERROR(CheckOptions(options));
  // Before gRPC starts any thread.
  ASSIGN_OR_RETURN(TerminationSignals signals, TerminationSignals::Open());
  UniqueFd wake_fd(::eventfd(0, EFD_CLOEXEC));
  if (!wake_fd) return ErrnoError("eventfd");

  spdlog::info("cellar registrar: asking the CSI driver on {} for its name",
               options.csi_socket.string());
  auto driver = WaitForDriver(options, signals);
  if (!driver.ok()) {
    return driver.status().code() == Code::kCancelled ? Status::Ok() : driver.status();
  }
  ASSIGN_OR_RETURN(fs::path socket, RegistrationSocketPath(options.registration_dir, *driver));
  RETURN_IF_ERROR(ClearSocketPath(socket));

  // gRPC removes the path it listened on when it shuts down, whatever file is there by
  // then: in a rollout, the newer registrar's socket. So it listens on a hidden name
  // and the socket is renamed into place, which also replaces an older registrar's
  // socket without a moment in which the kubelet finds none. The path is then ours to
  // manage: removed on the way out only while it is still our socket.
  const fs::path listening = HiddenTwin(socket);
  if (listening.string().size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Error(Code::kInvalidArgument, "{} is longer than a unix socket path may be",
                 listening.string());
  }
  RegistrationService service(*driver, options.kubelet_registration_path, wake_fd.get());
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + listening.string(), grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) return Error(Code::kUnavailable, "cannot listen on {}", listening.string());
  if (::rename(listening.c_str(), socket.c_str()) != 0) {
    Status st = ErrnoError("rename {} to {}", listening.string(), socket.string());
    server->Shutdown();
    return st;
  }
  std::optional<FileId> ours = FileIdOf(socket);
  spdlog::info("serving registration of {} on {}: the kubelet is to call {}", *driver,
               socket.string(), options.kubelet_registration_path);

  Status result;
  for (;;) {
    pollfd fds[2] = {{signals.fd(), POLLIN, 0}, {wake_fd.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      result = ErrnoError("poll");
      break;
    }
    if (fds[0].revents & POLLIN) {
      Result<int> got = signals.Take();
      spdlog::info("signal {}: removing the registration socket and stopping", got.ok() ? *got : 0);
      break;
    }
    if (fds[1].revents & POLLIN) {
      if (auto why = service.refusal()) {
        result = Error(Code::kFailedPrecondition,
                       "the kubelet did not register {}: {}; exiting so that the container "
                       "restarts and registers again",
                       *driver, *why);
        break;
      }
    }
  }

  // The kubelet unregisters the driver when the socket goes; a socket some newer
  // registrar put there since is not ours to remove.
  std::optional<FileId> now = FileIdOf(socket);
  if (!now) {
    spdlog::warn("{} is already gone", socket.string());
  } else if (now == ours) {
    if (::unlink(socket.c_str()) != 0 && errno != ENOENT) {
      spdlog::warn("cannot remove {}: {}", socket.string(), std::strerror(errno));
    }
  } else {
    spdlog::info("{} is now another registrar's socket; leaving it", socket.string());
  }
  // The reply to NotifyRegistrationStatus may still be on its way.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server->Wait();
  return result;
}

Status CheckRegistration(const RegistrarOptions& options) {
  RETURN_IF_ERROR(CheckOptions(options));
  const auto deadline = std::chrono::system_clock::now() + options.timeout;
  // The socket this deployment's registrar most likely serves is tried first: by the
  // manifests' convention the driver's directory, /var/lib/kubelet/plugins/<driver>/,
  // names it. Others (other drivers' or device plugins') are asked only if it fails.
  const fs::path driver_dir = fs::path(options.kubelet_registration_path).parent_path();
  const std::string likely = driver_dir.filename().string() + "-reg.sock";
  std::vector<fs::path> candidates;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(options.registration_dir, ec)) {
    std::string name = entry.path().filename().string();
    if (!name.ends_with("-reg.sock") || !entry.is_socket(ec)) continue;
    candidates.push_back(entry.path());
  }
  if (ec) {
    return Status::FromErrno(ec.value(), fmt::format("list {}", options.registration_dir.string()));
  }
  std::stable_partition(candidates.begin(), candidates.end(),
                        [&](const fs::path& p) { return p.filename() == likely; });

  std::vector<std::string> seen;
  for (const auto& path : candidates) {
    auto stub = ::pluginregistration::Registration::NewStub(UnixChannel(path));
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    ::pluginregistration::InfoRequest req;
    ::pluginregistration::PluginInfo info;
    grpc::Status st = stub->GetInfo(&ctx, req, &info);
    if (!st.ok()) {
      seen.push_back(fmt::format("{}: {}", path.filename().string(), st.error_message()));
      continue;
    }
    if (info.type() == kCsiPluginType && info.endpoint() == options.kubelet_registration_path) {
      fmt::print("{} answers GetInfo: {} {} at {}\n", path.string(), info.type(), info.name(),
                 info.endpoint());
      return Status::Ok();
    }
    seen.push_back(fmt::format("{}: {} {} at {}", path.filename().string(), info.type(),
                               info.name(), info.endpoint()));
  }
  return Error(Code::kUnavailable,
               "no registration socket in {} answers GetInfo for a CSI plugin at {} ({})",
               options.registration_dir.string(), options.kubelet_registration_path,
               seen.empty() ? "no *-reg.sock there" : fmt::format("{}", fmt::join(seen, "; ")));
}

}  // namespace cellar::csi
