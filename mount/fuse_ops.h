// The request handlers, one per opcode, implemented by the ops_*.cc files by area; the
// session's dispatch table (fuse_session.cc) maps opcodes to them.
#pragma once

#include "mount/fuse_message.h"

namespace cellar::mount {

class FuseFs;

// Request handlers, by area. Each returns 0 (reply with what it set), an errno, or
// kNoReply. ops_entries.cc:
int OnLookup(FuseFs& fs, const Request& req, Reply& reply);
int OnForget(FuseFs& fs, const Request& req, Reply& reply);
int OnBatchForget(FuseFs& fs, const Request& req, Reply& reply);
int OnMknod(FuseFs& fs, const Request& req, Reply& reply);
int OnMkdir(FuseFs& fs, const Request& req, Reply& reply);
int OnSymlink(FuseFs& fs, const Request& req, Reply& reply);
int OnLink(FuseFs& fs, const Request& req, Reply& reply);
int OnUnlink(FuseFs& fs, const Request& req, Reply& reply);
int OnRmdir(FuseFs& fs, const Request& req, Reply& reply);
int OnRename(FuseFs& fs, const Request& req, Reply& reply);
int OnRename2(FuseFs& fs, const Request& req, Reply& reply);
int OnReadlink(FuseFs& fs, const Request& req, Reply& reply);
// ops_dirs.cc:
int OnOpendir(FuseFs& fs, const Request& req, Reply& reply);
int OnReaddir(FuseFs& fs, const Request& req, Reply& reply);
int OnReaddirplus(FuseFs& fs, const Request& req, Reply& reply);
int OnReleasedir(FuseFs& fs, const Request& req, Reply& reply);
int OnFsyncdir(FuseFs& fs, const Request& req, Reply& reply);
// ops_files.cc:
int OnCreate(FuseFs& fs, const Request& req, Reply& reply);
int OnOpen(FuseFs& fs, const Request& req, Reply& reply);
int OnRead(FuseFs& fs, const Request& req, Reply& reply);
int OnWrite(FuseFs& fs, const Request& req, Reply& reply);
int OnFsync(FuseFs& fs, const Request& req, Reply& reply);
int OnRelease(FuseFs& fs, const Request& req, Reply& reply);
int OnFallocate(FuseFs& fs, const Request& req, Reply& reply);
int OnLseek(FuseFs& fs, const Request& req, Reply& reply);
// ops_attrs.cc:
int OnGetattr(FuseFs& fs, const Request& req, Reply& reply);
int OnSetattr(FuseFs& fs, const Request& req, Reply& reply);
int OnStatfs(FuseFs& fs, const Request& req, Reply& reply);
int OnSetxattr(FuseFs& fs, const Request& req, Reply& reply);
int OnGetxattr(FuseFs& fs, const Request& req, Reply& reply);
int OnListxattr(FuseFs& fs, const Request& req, Reply& reply);
int OnRemovexattr(FuseFs& fs, const Request& req, Reply& reply);

}  // namespace cellar::mount
