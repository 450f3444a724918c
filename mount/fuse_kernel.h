// The FUSE kernel ABI as Cellar speaks it: Debian 12's <linux/fuse.h> (protocol 7.38)
// plus what the kernel added up to 7.45 that we use, written from the kernel's
// include/uapi/linux/fuse.h. This is the ONLY place that knows about the gap; every
// other file includes this header, never <linux/fuse.h> directly.
#pragma once

#include <linux/fuse.h>
#include <sys/ioctl.h>

#include <cstddef>
#include <cstdint>

static_assert(FUSE_KERNEL_VERSION == 7, "FUSE major protocol must be 7");
static_assert(FUSE_KERNEL_MINOR_VERSION >= 38, "needs <linux/fuse.h> from protocol 7.38+");

namespace cellar::mount::kernel {

// The minor we answer with. The kernel then speaks min(its minor, ours): 7.40 is the
// first minor with passthrough and FUSE_NOTIFY_RESEND (a daemon that takes over a live
// connection after a restart asks the kernel to resend the requests in flight).
inline constexpr uint32_t kMinorVersion = 40;

// 64-bit INIT flags (the upper 32 bits travel in flags2, only with FUSE_INIT_EXT).
inline constexpr uint64_t kInitExt = 1ULL << 30;               // 7.36
inline constexpr uint64_t kCreateSuppGroup = 1ULL << 34;       // 7.38 FUSE_CREATE_SUPP_GROUP
inline constexpr uint64_t kDirectIoAllowMmap = 1ULL << 36;     // 7.39
inline constexpr uint64_t kPassthrough = 1ULL << 37;           // 7.40
inline constexpr uint64_t kNoExportSupport = 1ULL << 38;       // 7.40
inline constexpr uint64_t kHasResend = 1ULL << 39;             // 7.40

// Request extension carrying the caller's supplementary group that matches the parent
// directory's gid (with kCreateSuppGroup; on CREATE, MKDIR, MKNOD, SYMLINK).
inline constexpr uint32_t kExtGroups = 32;                     // FUSE_EXT_GROUPS
struct SuppGroups {
  uint32_t nr_groups;
  // uint32_t groups[nr_groups] follow
};

// fuse_open_out.open_flags.
inline constexpr uint32_t kOpenPassthrough = 1U << 7;          // 7.40 FOPEN_PASSTHROUGH

// Opcodes newer than 7.38 (we answer ENOSYS; the kernel then stops sending them).
inline constexpr uint32_t kOpStatx = 52;                       // 7.39 FUSE_STATX
inline constexpr uint32_t kOpCopyFileRange64 = 53;             // 7.45

// Notification codes newer than 7.38.
inline constexpr int32_t kNotifyResend = 7;                    // 7.40 FUSE_NOTIFY_RESEND

// Set in fuse_in_header.unique on a request the kernel resent (7.40).
inline constexpr uint64_t kUniqueResend = 1ULL << 63;

// struct fuse_init_out as of 7.45 (7.38 has `unused[7]` where max_stack_depth and
// request_timeout now live).
struct InitOut {
  uint32_t major;
  uint32_t minor;
  uint32_t max_readahead;
  uint32_t flags;
  uint16_t max_background;
  uint16_t congestion_threshold;
  uint32_t max_write;
  uint32_t time_gran;
  uint16_t max_pages;
  uint16_t map_alignment;
  uint32_t flags2;
  uint32_t max_stack_depth;  // 7.40: how deep the backing file's fs may itself be stacked
  uint16_t request_timeout;  // 7.43
  uint16_t unused[11];
};
static_assert(sizeof(InitOut) == sizeof(fuse_init_out));
static_assert(offsetof(InitOut, flags2) == offsetof(fuse_init_out, flags2));

// struct fuse_open_out as of 7.40 (`padding` became `backing_id`).
struct OpenOut {
  uint64_t fh;
  uint32_t open_flags;
  int32_t backing_id;
};
static_assert(sizeof(OpenOut) == sizeof(fuse_open_out));

// FUSE_DEV_IOC_BACKING_OPEN's argument (7.40).
struct BackingMap {
  int32_t fd;
  uint32_t flags;
  uint64_t padding;
};

}  // namespace cellar::mount::kernel

#ifndef FUSE_DEV_IOC_BACKING_OPEN
#define FUSE_DEV_IOC_BACKING_OPEN _IOW(FUSE_DEV_IOC_MAGIC, 1, struct cellar::mount::kernel::BackingMap)
#endif
#ifndef FUSE_DEV_IOC_BACKING_CLOSE
#define FUSE_DEV_IOC_BACKING_CLOSE _IOW(FUSE_DEV_IOC_MAGIC, 2, uint32_t)
#endif
