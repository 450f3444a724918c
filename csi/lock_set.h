// LockSet: one mutex per key (volume id or name), created on demand and dropped when
// unused, so operations on one volume serialise while different volumes run in parallel.
#pragma once

#include <condition_variable>
#include <mutex>
#include <set>
#include <string>

namespace cellar::csi {

class LockSet {
 public:
  class Guard {
   public:
    Guard(LockSet& set, std::string key) : set_(set), key_(std::move(key)) { set_.Lock(key_); }
    ~Guard() { set_.Unlock(key_); }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    LockSet& set_;
    std::string key_;
  };

 private:
  void Lock(const std::string& key) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !held_.count(key); });
    held_.insert(key);
  }
  void Unlock(const std::string& key) {
    {
      std::lock_guard lock(mu_);
      held_.erase(key);
    }
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> held_;
};

}  // namespace cellar::csi
