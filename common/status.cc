#include "common/status.h"

#include <cstring>

namespace cellar {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kCancelled: return "CANCELLED";
    case Code::kUnknown: return "UNKNOWN";
    case Code::kInvalidArgument: return "INVALID_ARGUMENT";
    case Code::kDeadlineExceeded: return "DEADLINE_EXCEEDED";
    case Code::kNotFound: return "NOT_FOUND";
    case Code::kAlreadyExists: return "ALREADY_EXISTS";
    case Code::kPermissionDenied: return "PERMISSION_DENIED";
    case Code::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case Code::kFailedPrecondition: return "FAILED_PRECONDITION";
    case Code::kAborted: return "ABORTED";
    case Code::kOutOfRange: return "OUT_OF_RANGE";
    case Code::kUnimplemented: return "UNIMPLEMENTED";
    case Code::kInternal: return "INTERNAL";
    case Code::kUnavailable: return "UNAVAILABLE";
    case Code::kDataLoss: return "DATA_LOSS";
    case Code::kUnauthenticated: return "UNAUTHENTICATED";
  }
  return "UNKNOWN";
}

namespace {

Code CodeForErrno(int err) {
  switch (err) {
    case 0: return Code::kOk;
    case ENOENT:
    case ESTALE: return Code::kNotFound;
    case EEXIST: return Code::kAlreadyExists;
    case EACCES:
    case EPERM: return Code::kPermissionDenied;
    case ENOSPC:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
    case EDQUOT: return Code::kResourceExhausted;
    case EINVAL:
    case ENAMETOOLONG:
    case ENOTDIR:
    case EISDIR: return Code::kInvalidArgument;
    case EBUSY:
    case ENOTEMPTY: return Code::kFailedPrecondition;
    case ERANGE:
    case EFBIG: return Code::kOutOfRange;
    case ENOSYS:
    case ENOTSUP: return Code::kUnimplemented;
    case EAGAIN:
    case EINTR: return Code::kUnavailable;
    case EIO: return Code::kDataLoss;
    default: return Code::kInternal;
  }
}

int ErrnoForCode(Code code) {
  switch (code) {
    case Code::kOk: return 0;
    case Code::kNotFound: return ENOENT;
    case Code::kAlreadyExists: return EEXIST;
    case Code::kPermissionDenied: return EACCES;
    case Code::kResourceExhausted: return ENOSPC;
    case Code::kInvalidArgument: return EINVAL;
    case Code::kFailedPrecondition: return EBUSY;
    case Code::kOutOfRange: return ERANGE;
    case Code::kUnimplemented: return ENOSYS;
    case Code::kUnavailable: return EAGAIN;
    case Code::kCancelled: return ECANCELED;
    case Code::kDeadlineExceeded: return ETIMEDOUT;
    default: return EIO;
  }
}

}  // namespace

Status::Status(Code code, std::string message, int err) {
  if (code == Code::kOk) return;
  state_ = std::make_shared<const State>(State{code, err, std::move(message)});
}

Status Status::FromErrno(int err, std::string_view context) {
  if (err == 0) return Status();
  return Status(CodeForErrno(err), fmt::format("{}: {}", context, std::strerror(err)), err);
}

int Status::err() const {
  if (!state_) return 0;
  return state_->err != 0 ? state_->err : ErrnoForCode(state_->code);
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return state_ ? state_->message : kEmpty;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return fmt::format("{}: {}", CodeName(code()), message());
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  return Status(state_->code, fmt::format("{}: {}", context, state_->message), state_->err);
}

}  // namespace cellar
