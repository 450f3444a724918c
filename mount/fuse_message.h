// Request and Reply: a FUSE request as a handler sees it (read from /dev/fuse by the
// session) and the answer the handler fills in for the session to write back.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "mount/fuse_kernel.h"

namespace cellar::mount {

// A request as read from the device.
struct Request {
  const fuse_in_header* in;
  const char* arg;  // the opcode's argument(s), arg_size bytes
  size_t arg_size;
  const char* ext = nullptr;  // request extensions (fuse_ext_header...), ext_size bytes
  size_t ext_size = 0;

  // The supplementary groups the kernel sent with a create-type request (at most a
  // few; see kernel::kCreateSuppGroup). Empty when none.
  std::vector<uint32_t> SuppGroups() const;

  // Sent again by the kernel after a takeover: a predecessor may have carried it out
  // and died before answering, so its handler answers the success the caller was owed.
  bool resent() const { return (in->unique & kernel::kUniqueResend) != 0; }

  template <typename T>
  const T* Arg() const {
    return arg_size >= sizeof(T) ? reinterpret_cast<const T*>(arg) : nullptr;
  }
  // The NUL-terminated string that starts `offset` bytes into arg, or nullptr.
  const char* String(size_t offset) const {
    if (offset >= arg_size || std::memchr(arg + offset, 0, arg_size - offset) == nullptr) {
      return nullptr;
    }
    return arg + offset;
  }
};

// What a handler answers: a small fixed part (copied) and optionally bulk data that
// lives in the serving thread's buffer (READ, READDIR, READLINK, xattrs).
class Reply {
 public:
  Reply(char* buffer, size_t capacity) : buffer_(buffer), capacity_(capacity) {}

  template <typename T>
  void Set(const T& value) {
    static_assert(sizeof(T) <= kSmall);
    std::memcpy(small_, &value, sizeof(T));
    small_size_ = sizeof(T);
  }
  void SetTwo(const void* a, size_t a_size, const void* b, size_t b_size) {
    std::memcpy(small_, a, a_size);
    std::memcpy(small_ + a_size, b, b_size);
    small_size_ = a_size + b_size;
  }
  char* buffer() { return buffer_; }
  size_t capacity() const { return capacity_; }
  void SetData(size_t size) { data_size_ = size; }

  int Iov(iovec* iov) const {
    iov[0] = {const_cast<char*>(small_), small_size_};
    iov[1] = {buffer_, data_size_};
    return 2;
  }

 private:
  static constexpr size_t kSmall = 256;
  char small_[kSmall];
  size_t small_size_ = 0;
  char* buffer_;
  size_t capacity_;
  size_t data_size_ = 0;
};

// Returned by handlers of requests the kernel expects no answer to (FORGET).
inline constexpr int kNoReply = -1;

}  // namespace cellar::mount
