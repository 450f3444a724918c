#include "mount/fuse_stats.h"

#include "mount/fuse_kernel.h"

namespace cellar::mount {

FuseStatsSnapshot FuseStats::Snapshot() const {
  FuseStatsSnapshot out;
  for (size_t op = 0; op < kOpcodeSlots; ++op) {
    const Slot& s = slots_[op];
    OpcodeSnapshot& o = out.opcodes[op];
    o.count = s.count.load(std::memory_order_relaxed);
    o.sum_ns = s.sum_ns.load(std::memory_order_relaxed);
    for (size_t b = 0; b < o.buckets.size(); ++b) {
      o.buckets[b] = s.buckets[b].load(std::memory_order_relaxed);
    }
  }
  out.passthrough_opens = passthrough_opens_.load(std::memory_order_relaxed);
  out.daemon_opens = daemon_opens_.load(std::memory_order_relaxed);
  return out;
}

std::string_view OpcodeName(uint32_t opcode) {
  switch (opcode) {
    case FUSE_LOOKUP: return "LOOKUP";
    case FUSE_FORGET: return "FORGET";
    case FUSE_GETATTR: return "GETATTR";
    case FUSE_SETATTR: return "SETATTR";
    case FUSE_READLINK: return "READLINK";
    case FUSE_SYMLINK: return "SYMLINK";
    case FUSE_MKNOD: return "MKNOD";
    case FUSE_MKDIR: return "MKDIR";
    case FUSE_UNLINK: return "UNLINK";
    case FUSE_RMDIR: return "RMDIR";
    case FUSE_RENAME: return "RENAME";
    case FUSE_LINK: return "LINK";
    case FUSE_OPEN: return "OPEN";
    case FUSE_READ: return "READ";
    case FUSE_WRITE: return "WRITE";
    case FUSE_STATFS: return "STATFS";
    case FUSE_RELEASE: return "RELEASE";
    case FUSE_FSYNC: return "FSYNC";
    case FUSE_SETXATTR: return "SETXATTR";
    case FUSE_GETXATTR: return "GETXATTR";
    case FUSE_LISTXATTR: return "LISTXATTR";
    case FUSE_REMOVEXATTR: return "REMOVEXATTR";
    case FUSE_FLUSH: return "FLUSH";
    case FUSE_INIT: return "INIT";
    case FUSE_OPENDIR: return "OPENDIR";
    case FUSE_READDIR: return "READDIR";
    case FUSE_RELEASEDIR: return "RELEASEDIR";
    case FUSE_FSYNCDIR: return "FSYNCDIR";
    case FUSE_GETLK: return "GETLK";
    case FUSE_SETLK: return "SETLK";
    case FUSE_SETLKW: return "SETLKW";
    case FUSE_ACCESS: return "ACCESS";
    case FUSE_CREATE: return "CREATE";
    case FUSE_INTERRUPT: return "INTERRUPT";
    case FUSE_BMAP: return "BMAP";
    case FUSE_DESTROY: return "DESTROY";
    case FUSE_IOCTL: return "IOCTL";
    case FUSE_POLL: return "POLL";
    case FUSE_BATCH_FORGET: return "BATCH_FORGET";
    case FUSE_FALLOCATE: return "FALLOCATE";
    case FUSE_READDIRPLUS: return "READDIRPLUS";
    case FUSE_RENAME2: return "RENAME2";
    case FUSE_LSEEK: return "LSEEK";
    case FUSE_COPY_FILE_RANGE: return "COPY_FILE_RANGE";
    case FUSE_SYNCFS: return "SYNCFS";
    case FUSE_TMPFILE: return "TMPFILE";
    case kernel::kOpStatx: return "STATX";
    case kernel::kOpCopyFileRange64: return "COPY_FILE_RANGE_64";
    default: return {};
  }
}

}  // namespace cellar::mount
