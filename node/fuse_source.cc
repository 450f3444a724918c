#include "node/fuse_source.h"

#include <sys/vfs.h>

#include "mount/fuse_server.h"

namespace cellar::node {

namespace {

class FuseSource final : public csi::VolumeSource {
 public:
  FuseSource(const store::Store& store, std::unique_ptr<mount::FuseServer> server)
      : store_(store), server_(std::move(server)) {}

  Status Attach(const store::Volume& v) override {
    return server_->AttachVolume(v.id, v.slot, store_.ArenaPath(v.id));
  }
  Status Detach(const std::string& volume_id) override { return server_->DetachVolume(volume_id); }
  std::filesystem::path Dir(const std::string& volume_id) const override {
    return server_->VolumePath(volume_id);
  }
  // The session answers when the kernel can reach it: a statfs of the mount goes
  // through the whole FUSE round trip.
  Status Healthy() const override {
    struct statfs sfs {};
    if (::statfs(server_->mountpoint().c_str(), &sfs) != 0) {
      return ErrnoError("FUSE mount {} does not answer", server_->mountpoint().string());
    }
    return Status::Ok();
  }
  csi::IoMode mode() const override {
    return server_->passthrough_active() ? csi::IoMode::kPassthrough : csi::IoMode::kFuse;
  }
  bool resumed() const override { return server_->resumed(); }
  void AttachedAll() override { server_->FinishRecovery(); }
  void Pause() override { server_->Pause(); }
  std::vector<int> HandoverFds() const override { return server_->ExportFds(); }
  Status Shutdown(bool keep_connection) override { return server_->Stop(keep_connection); }

 private:
  const store::Store& store_;
  std::unique_ptr<mount::FuseServer> server_;
};

}  // namespace

Result<std::unique_ptr<csi::VolumeSource>> MakeFuseSource(const store::Store& store,
                                                          FuseSourceOptions options) {
  mount::FuseConfig config;
  config.mountpoint = options.mountpoint;
  config.passthrough = options.passthrough;
  config.fd_holder = options.fd_holder;
  config.stats = options.stats;
  ASSIGN_OR_RETURN(auto server, mount::FuseServer::Start(config, std::move(options.inherited)));
  return std::unique_ptr<csi::VolumeSource>(new FuseSource(store, std::move(server)));
}

}  // namespace cellar::node
