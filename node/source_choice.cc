#include "node/source_choice.h"

#include <spdlog/spdlog.h>

#include "node/arena_source.h"
#include "node/fuse_source.h"

namespace cellar::node {

using csi::IoMode;
using csi::VolumeSource;

Result<std::unique_ptr<VolumeSource>> OpenVolumeSource(const store::Store& store,
                                                       SourceRequest request) {
  const bool resumed = !request.inherited.empty();
  if (request.mode == IoMode::kDirect && !resumed) {
    spdlog::info("io mode direct (forced): volumes are their tmpfs arenas, bind-mounted");
    return MakeArenaSource(store);
  }
  // A predecessor's FUSE connection carries pods' mounts: keep serving it whatever the
  // flag says, or those pods would see ENOTCONN.
  if (request.mode == IoMode::kDirect) {
    spdlog::warn(
        "io mode direct asked, but the predecessor handed over a FUSE connection "
        "with live mounts; serving it (restart without hand-over to switch)");
  }
  FuseSourceOptions fuse;
  fuse.mountpoint = request.mountpoint;
  fuse.passthrough = request.mode != IoMode::kFuse;
  fuse.fd_holder = request.fd_holder;
  fuse.inherited = std::move(request.inherited);
  fuse.stats = request.fuse_stats;
  ASSIGN_OR_RETURN(auto source, MakeFuseSource(store, std::move(fuse)));
  const IoMode got = source->mode();
  if (request.mode == IoMode::kPassthrough && got != IoMode::kPassthrough) {
    (void)source->Shutdown(/*keep_connection=*/resumed);
    return Error(Code::kFailedPrecondition,
                 "io mode passthrough forced, but FUSE passthrough is not usable here: the "
                 "kernel did not grant it at FUSE_INIT (needs Linux >= 6.9 with "
                 "CONFIG_FUSE_PASSTHROUGH) or refused backing files (needs CAP_SYS_ADMIN in "
                 "the initial user namespace); use --io-mode=auto or direct");
  }
  if (request.mode == IoMode::kAuto && got == IoMode::kFuse && !resumed) {
    spdlog::info(
        "io mode direct (auto): FUSE passthrough is not usable (see the FUSE_INIT "
        "line above), so the FUSE layer would copy every byte; volumes are their "
        "tmpfs arenas, bind-mounted");
    RETURN_IF_ERROR(source->Shutdown(/*keep_connection=*/false));
    return MakeArenaSource(store);
  }
  const char* why = request.mode != IoMode::kAuto ? "forced"
                    : got == IoMode::kPassthrough ? "auto: the kernel granted FUSE_PASSTHROUGH"
                                                  : "auto: kept the connection taken over";
  spdlog::info("io mode {} ({}{})", IoModeName(got), why, resumed ? ", connection taken over" : "");
  return source;
}

}  // namespace cellar::node
