#include "mount/fuse_channel.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>

#include "mount/fuse_kernel.h"

namespace cellar::mount {
namespace {
constexpr int kMaxIov = 8;
}

Result<FuseChannel> FuseChannel::Clone() const {
  UniqueFd clone(::open("/dev/fuse", O_RDWR | O_CLOEXEC));
  if (!clone) return ErrnoError("open /dev/fuse for clone");
  uint32_t master = static_cast<uint32_t>(fd_.get());
  if (::ioctl(clone.get(), FUSE_DEV_IOC_CLONE, &master) != 0) {
    return ErrnoError("ioctl FUSE_DEV_IOC_CLONE");
  }
  return FuseChannel(std::move(clone));
}

ssize_t FuseChannel::Read(char* buf, size_t size) const {
  ssize_t n = ::read(fd_.get(), buf, size);
  if (n < 0) return -errno;
  if (static_cast<size_t>(n) < sizeof(fuse_in_header)) return -EIO;
  return n;
}

int FuseChannel::WriteV(iovec* iov, int count, size_t total) const {
  ssize_t n = ::writev(fd_.get(), iov, count);
  if (n < 0) return -errno;
  // The device takes a message whole or not at all.
  return static_cast<size_t>(n) == total ? 0 : -EIO;
}

int FuseChannel::Reply(uint64_t unique, int error, const iovec* payload, int count) const {
  std::array<iovec, kMaxIov> iov;
  fuse_out_header out{};
  out.unique = unique;
  out.error = -error;
  iov[0] = {&out, sizeof(out)};
  size_t total = sizeof(out);
  int n = 1;
  if (error == 0) {
    for (int i = 0; i < count && n < kMaxIov; ++i) {
      if (payload[i].iov_len == 0) continue;
      iov[n++] = payload[i];
      total += payload[i].iov_len;
    }
  }
  out.len = static_cast<uint32_t>(total);
  return WriteV(iov.data(), n, total);
}

int FuseChannel::Notify(int32_t code, const iovec* payload, int count) const {
  std::array<iovec, kMaxIov> iov;
  fuse_out_header out{};
  out.unique = 0;
  out.error = code;  // notifications carry their code in the error field
  iov[0] = {&out, sizeof(out)};
  size_t total = sizeof(out);
  int n = 1;
  for (int i = 0; i < count && n < kMaxIov; ++i) {
    iov[n++] = payload[i];
    total += payload[i].iov_len;
  }
  out.len = static_cast<uint32_t>(total);
  return WriteV(iov.data(), n, total);
}

Result<int32_t> FuseChannel::OpenBacking(int backing_fd) const {
  kernel::BackingMap map{};
  map.fd = backing_fd;
  int id = ::ioctl(fd_.get(), FUSE_DEV_IOC_BACKING_OPEN, &map);
  if (id < 0) return ErrnoError("ioctl FUSE_DEV_IOC_BACKING_OPEN");
  return static_cast<int32_t>(id);
}

Status FuseChannel::CloseBacking(int32_t backing_id) const {
  uint32_t id = static_cast<uint32_t>(backing_id);
  if (::ioctl(fd_.get(), FUSE_DEV_IOC_BACKING_CLOSE, &id) != 0) {
    return ErrnoError("ioctl FUSE_DEV_IOC_BACKING_CLOSE {}", backing_id);
  }
  return Status::Ok();
}

Status FuseChannel::ProbeBacking() const {
  UniqueFd probe(::memfd_create("cellar-passthrough-probe", MFD_CLOEXEC));
  if (!probe) return ErrnoError("memfd_create for the passthrough probe");
  ASSIGN_OR_RETURN(int32_t id, OpenBacking(probe.get()));
  return CloseBacking(id);
}

}  // namespace cellar::mount
