// Acting as the requester: the credentials a handler takes on for the arena call it
// makes, and the setuid/setgid clearing the kernel leaves to the filesystem.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mount/fuse_message.h"

namespace cellar::mount {

// Runs a block with the requester's fsuid/fsgid, so that new inodes get its ownership
// and the kernel applies setgid-directory rules exactly as on a local filesystem.
// Per thread: Linux credentials are per task, and setfsuid(2) is not broadcast.
class ScopedFsCreds {
 public:
  ScopedFsCreds(uint32_t uid, uint32_t gid, const std::vector<uint32_t>& groups = {});
  ~ScopedFsCreds();
  ScopedFsCreds(const ScopedFsCreds&) = delete;
  ScopedFsCreds& operator=(const ScopedFsCreds&) = delete;
};

// Clears the setuid/setgid bits of the arena file at `path` the way tmpfs does when
// the request's caller modifies it without CAP_FSETID (the kernel's
// setattr_should_drop_suidgid): S_ISUID always; S_ISGID when the file is
// group-executable, or when the caller is not in the file's group. The kernel asks for
// this with HANDLE_KILLPRIV_V2 flags after checking the caller lacks CAP_FSETID; where
// it did not check (chown), `root_is_capable` keeps a uid-0 caller's group exemption.
// Returns 0 or an errno.
int KillSuidGid(const std::string& path, const Request& req, bool root_is_capable);

}  // namespace cellar::mount
