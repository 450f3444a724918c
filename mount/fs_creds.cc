#include "mount/fs_creds.h"

#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace cellar::mount {

namespace {

// Whether the caller of `req` is in group `gid`: its fsgid, else its supplementary
// groups as /proc shows them. The kernel sends no groups with a WRITE or SETATTR; the
// pid is 0 when the caller lives outside our pid namespace, and then only the fsgid
// counts (the cost: a member by supplementary group loses a setgid bit that only marks
// mandatory locking, since the file is not group-executable).
bool CallerInGroup(const Request& req, gid_t gid) {
  if (req.in->gid == gid) return true;
  if (req.in->pid == 0) return false;
  std::ifstream status("/proc/" + std::to_string(req.in->pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Groups:", 0) != 0) continue;
    std::istringstream groups(line.substr(7));
    for (gid_t g; groups >> g;) {
      if (g == gid) return true;
    }
    return false;
  }
  return false;
}

}  // namespace

int KillSuidGid(const std::string& path, const Request& req, bool root_is_capable) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return errno;
  if (!S_ISREG(st.st_mode)) return 0;
  const mode_t mode = st.st_mode & 07777;
  mode_t kept = mode & ~S_ISUID;
  const bool exempt = (root_is_capable && req.in->uid == 0) || CallerInGroup(req, st.st_gid);
  if ((mode & S_ISGID) && ((mode & S_IXGRP) || !exempt)) kept &= ~S_ISGID;
  if (kept == mode) return 0;
  return ::chmod(path.c_str(), kept) == 0 ? 0 : errno;
}

ScopedFsCreds::ScopedFsCreds(uint32_t uid, uint32_t gid, const std::vector<uint32_t>& groups) {
  // The raw syscall sets this thread's groups only (glibc's setgroups would change every
  // thread of the process).
  if (!groups.empty()) {
    std::vector<gid_t> g(groups.begin(), groups.end());
    ::syscall(SYS_setgroups, g.size(), g.data());
  }
  ::setfsgid(gid);
  ::setfsuid(uid);
}

ScopedFsCreds::~ScopedFsCreds() {
  // Back to root: the kernel raises the filesystem capabilities again.
  ::setfsuid(0);
  ::setfsgid(0);
  ::syscall(SYS_setgroups, 0, nullptr);
}

}  // namespace cellar::mount
