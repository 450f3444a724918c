#include "node/arena_source.h"

namespace cellar::node {

namespace {

class ArenaSource final : public csi::VolumeSource {
 public:
  explicit ArenaSource(const store::Store& store) : store_(store) {}
  Status Attach(const store::Volume&) override { return Status::Ok(); }
  Status Detach(const std::string&) override { return Status::Ok(); }
  std::filesystem::path Dir(const std::string& volume_id) const override {
    return store_.ArenaPath(volume_id);
  }
  // A bind mount of a tmpfs needs no process to answer for it.
  Status Healthy() const override { return Status::Ok(); }
  csi::IoMode mode() const override { return csi::IoMode::kDirect; }

 private:
  const store::Store& store_;
};

}  // namespace

std::unique_ptr<csi::VolumeSource> MakeArenaSource(const store::Store& store) {
  return std::make_unique<ArenaSource>(store);
}

}  // namespace cellar::node
