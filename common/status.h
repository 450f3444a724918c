// Status and Result: errors travel as values across every layer of Cellar.
//
// A Status carries a code (numerically identical to the gRPC status codes, so the
// CSI layer converts without a table), the errno it came from (0 if none) and a
// message that names the object and the cause. Conversion happens only at the
// edges: to a grpc::Status in csi/, to an errno in mount/.
#pragma once

#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace cellar {

// Values match grpc::StatusCode one to one.
enum class Code : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK; costs one null pointer.
  Status(Code code, std::string message, int err = 0);

  static Status Ok() { return Status(); }
  // Maps the errno to the closest code (ENOENT -> NotFound, ENOSPC -> ResourceExhausted...).
  static Status FromErrno(int err, std::string_view context);

  bool ok() const { return state_ == nullptr; }
  Code code() const { return state_ ? state_->code : Code::kOk; }
  // The errno this status came from, or the errno that best describes its code.
  int err() const;
  const std::string& message() const;
  std::string ToString() const;

  // Prefixes the message with more context ("volume vol-1: " + message).
  Status WithContext(std::string_view context) const;

 private:
  struct State {
    Code code;
    int err;
    std::string message;
  };
  std::shared_ptr<const State> state_;
};

template <typename... Args>
Status Error(Code code, fmt::format_string<Args...> format, Args&&... args) {
  return Status(code, fmt::format(format, std::forward<Args>(args)...));
}

// Reads errno at the call site and names the failing operation.
template <typename... Args>
Status ErrnoError(fmt::format_string<Args...> format, Args&&... args) {
  int err = errno;
  return Status::FromErrno(err, fmt::format(format, std::forward<Args>(args)...));
}

inline Status InvalidArgument(std::string message) {
  return Status(Code::kInvalidArgument, std::move(message));
}
inline Status NotFound(std::string message) {
  return Status(Code::kNotFound, std::move(message));
}
inline Status Internal(std::string message) {
  return Status(Code::kInternal, std::move(message));
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(v_).ok()) v_ = Status(Code::kInternal, "Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace cellar

#define CELLAR_CONCAT_INNER(a, b) a##b
#define CELLAR_CONCAT(a, b) CELLAR_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)      \
  do {                             \
    ::cellar::Status _st = (expr); \
    if (!_st.ok()) return _st;     \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(CELLAR_CONCAT(_result_, __LINE__), lhs, expr)
