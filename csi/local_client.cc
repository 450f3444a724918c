#include "csi/local_client.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>

#include "cellar_admin.grpc.pb.h"
#include "csi.grpc.pb.h"
#include "csi/endpoint.h"

namespace cellar::csi {

namespace fs = std::filesystem;

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) {
    return Error(Code::kInvalidArgument, "duration \"{}\" is not a number with a unit (4s, 500ms)",
                 text);
  }
  std::string_view unit(end, text.data() + text.size() - end);
  uint64_t ms_per_unit = 0;
  if (unit.empty() || unit == "s") {
    ms_per_unit = 1000;
  } else if (unit == "ms") {
    ms_per_unit = 1;
  } else if (unit == "m") {
    ms_per_unit = 60'000;
  } else {
    return Error(Code::kInvalidArgument, "duration \"{}\": unit \"{}\" is not ms, s or m", text,
                 unit);
  }
  constexpr uint64_t kDayMs = 24ull * 3600 * 1000;
  if (value == 0 || value > kDayMs / ms_per_unit) {
    return Error(Code::kInvalidArgument, "duration \"{}\" must be above 0 and at most a day", text);
  }
  return std::chrono::milliseconds(value * ms_per_unit);
}

Result<fs::path> ParseSocketAddress(const std::string& address) {
  if (address.rfind("unix:", 0) == 0) return SocketPathOf(address);
  fs::path path(address);
  if (address.empty() || !path.is_absolute() || path.filename().empty()) {
    return Error(Code::kInvalidArgument,
                 "socket address \"{}\" must be an absolute path or unix:///path", address);
  }
  if (address.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Error(Code::kInvalidArgument,
                 "socket path \"{}\" is longer than a unix socket path may be", address);
  }
  return path;
}

std::shared_ptr<grpc::Channel> UnixChannel(const fs::path& path) {
  grpc::ChannelArguments args;
  // gRPC shares subchannels, and their reconnect backoff (up to 2 minutes), between
  // channels to the same address; a probe or a retry loop wants a fresh attempt.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel("unix:" + path.string(), grpc::InsecureChannelCredentials(),
                                   args);
}

namespace {

// Unavailable with a plain message when nothing is at `socket`; gRPC's own message for
// that case ("failed to connect to all addresses") hides the path.
Status CheckSocketExists(const fs::path& socket) {
  struct stat st {};
  if (::stat(socket.c_str(), &st) != 0) {
    if (errno != ENOENT) return ErrnoError("stat {}", socket.string());
    return Status(Code::kUnavailable,
                  fmt::format("no socket at {} (is the driver running?)", socket.string()), ENOENT);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Error(Code::kUnavailable, "{} is not a unix socket", socket.string());
  }
  return Status::Ok();
}

// One call of the Identity service on `socket` within `timeout`; `call(stub, ctx)`
// makes it.
template <typename Call>
Status CallIdentity(const fs::path& socket, std::chrono::milliseconds timeout,
                    std::string_view method, Call call) {
  RETURN_IF_ERROR(CheckSocketExists(socket));
  auto stub = ::csi::v1::Identity::NewStub(UnixChannel(socket));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::Status st = call(*stub, ctx);
  if (!st.ok()) {
    return Status(static_cast<Code>(st.error_code()),
                  fmt::format("{} on {}: {}", method, socket.string(), st.error_message()));
  }
  return Status::Ok();
}

}  // namespace

Status ProbeDriver(const fs::path& socket, std::chrono::milliseconds timeout) {
  ::csi::v1::ProbeResponse resp;
  RETURN_IF_ERROR(CallIdentity(socket, timeout, "Probe", [&](auto& stub, auto& ctx) {
    return stub.Probe(&ctx, ::csi::v1::ProbeRequest(), &resp);
  }));
  if (resp.has_ready() && !resp.ready().value()) {
    return Error(Code::kFailedPrecondition,
                 "the driver on {} answers Probe with ready=false (its log says why)",
                 socket.string());
  }
  return Status::Ok();
}

std::string HostName() {
  char host[256] = {};
  return ::gethostname(host, sizeof(host) - 1) == 0 ? host : "";
}

Result<DriverInfo> DriverInfoOf(const fs::path& socket, std::chrono::milliseconds timeout) {
  ::csi::v1::GetPluginInfoResponse resp;
  RETURN_IF_ERROR(CallIdentity(socket, timeout, "GetPluginInfo", [&](auto& stub, auto& ctx) {
    return stub.GetPluginInfo(&ctx, ::csi::v1::GetPluginInfoRequest(), &resp);
  }));
  if (resp.name().empty()) {
    return Error(Code::kInvalidArgument, "GetPluginInfo on {} gave an empty driver name",
                 socket.string());
  }
  auto host = resp.manifest().find(kHostManifestKey);
  return DriverInfo{resp.name(), host == resp.manifest().end() ? "" : host->second};
}

Result<cellar::admin::v1::NodeStatus> NodeStatusOf(const fs::path& socket,
                                                   std::chrono::milliseconds timeout) {
  RETURN_IF_ERROR(CheckSocketExists(socket));
  auto stub = cellar::admin::v1::Admin::NewStub(UnixChannel(socket));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  cellar::admin::v1::NodeStatus resp;
  grpc::Status st = stub->GetStatus(&ctx, cellar::admin::v1::GetStatusRequest(), &resp);
  if (!st.ok()) {
    return Status(static_cast<Code>(st.error_code()),
                  fmt::format("GetStatus on {}: {}", socket.string(), st.error_message()));
  }
  return resp;
}

}  // namespace cellar::csi
