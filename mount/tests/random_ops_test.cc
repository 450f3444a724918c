// Randomized operations applied to a Cellar volume and to a plain tmpfs directory, with
// the outcomes (errno or data) and the whole tree (names, types, sizes, nlink, mode,
// bytes) compared after every step. The seed is printed; CELLAR_RANDOM_SEED replays it.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <map>
#include <random>
#include <thread>

#include "mount/tests/fuse_fixture.h"

namespace cellar::mount::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kOps = 3000;

enum Kind {
  kCreateWrite, kOverwrite, kAppend, kTruncate, kRename, kUnlink, kMmapWrite, kReadRange,
  kReopen, kLink, kKeepOpen, kKeptWrite, kKeptClose, kMmapRead, kFallocate, kKinds
};
const char* kKindNames[] = {"create-write", "overwrite", "append",   "truncate", "rename",
                            "unlink",       "mmap-write", "read-range", "reopen", "link",
                            "keep-open",    "kept-write", "kept-close", "mmap-read",
                            "fallocate"};

struct Op {
  Kind kind;
  std::string name, name2;
  uint64_t off = 0;
  uint64_t len = 0;
  uint32_t flags = 0;
  size_t slot = 0;
  std::string data;

  std::string Describe() const {
    return fmt::format("{} {} {} off={} len={} flags={:#x} slot={}", kKindNames[kind], name,
                       name2, off, len, flags, slot);
  }
};

std::string Err(int e) { return fmt::format("errno {}", e); }

// One side of the comparison: a directory plus the fds it keeps open across steps.
class Side {
 public:
  explicit Side(fs::path root) : root_(std::move(root)) {}
  ~Side() {
    for (int fd : kept_) {
      if (fd >= 0) ::close(fd);
    }
  }

  std::string Apply(const Op& op) {
    const std::string p = (root_ / op.name).string();
    const std::string p2 = (root_ / op.name2).string();
    switch (op.kind) {
      case kCreateWrite:
      case kOverwrite:
      case kAppend: {
        int flags = op.kind == kCreateWrite ? O_CREAT | O_WRONLY | (op.flags & O_TRUNC)
                    : op.kind == kOverwrite ? O_WRONLY
                                            : O_WRONLY | O_APPEND;
        int fd = ::open(p.c_str(), flags, 0644);
        if (fd < 0) return Err(errno);
        ssize_t n = op.kind == kAppend ? ::write(fd, op.data.data(), op.data.size())
                                       : ::pwrite(fd, op.data.data(), op.data.size(), op.off);
        std::string out = n < 0 ? Err(errno) : fmt::format("wrote {}", n);
        ::close(fd);
        return out;
      }
      case kTruncate:
        return ::truncate(p.c_str(), op.len) == 0 ? "ok" : Err(errno);
      case kRename:
        return ::renameat2(AT_FDCWD, p.c_str(), AT_FDCWD, p2.c_str(), op.flags) == 0 ? "ok"
                                                                                     : Err(errno);
      case kUnlink:
        return ::unlink(p.c_str()) == 0 ? "ok" : Err(errno);
      case kLink:
        return ::link(p.c_str(), p2.c_str()) == 0 ? "ok" : Err(errno);
      case kFallocate: {
        int fd = ::open(p.c_str(), O_RDWR);
        if (fd < 0) return Err(errno);
        std::string out =
            ::fallocate(fd, static_cast<int>(op.flags), op.off, op.len) == 0 ? "ok" : Err(errno);
        ::close(fd);
        return out;
      }
      case kReadRange: {
        int fd = ::open(p.c_str(), O_RDONLY);
        if (fd < 0) return Err(errno);
        std::string buf(op.len, '\0');
        ssize_t n = ::pread(fd, buf.data(), buf.size(), op.off);
        ::close(fd);
        if (n < 0) return Err(errno);
        buf.resize(n);
        return buf;
      }
      case kReopen: {
        int fd = ::open(p.c_str(), O_RDONLY);
        if (fd < 0) return Err(errno);
        std::string out = ReadAll(fd);
        ::close(fd);
        return out;
      }
      case kMmapWrite:
      case kMmapRead: {
        bool write = op.kind == kMmapWrite;
        int fd = ::open(p.c_str(), write ? O_RDWR : O_RDONLY);
        if (fd < 0) return Err(errno);
        struct stat st;
        ::fstat(fd, &st);
        std::string out;
        if (st.st_size == 0) {
          out = "empty";
        } else {
          size_t size = static_cast<size_t>(st.st_size);
          char* m = static_cast<char*>(::mmap(nullptr, size, write ? PROT_READ | PROT_WRITE : PROT_READ,
                                              MAP_SHARED, fd, 0));
          if (m == MAP_FAILED) {
            out = Err(errno);
          } else {
            if (write) {
              size_t at = op.off % size;
              size_t n = std::min(op.data.size(), size - at);
              std::memcpy(m + at, op.data.data(), n);
              out = ::msync(m, size, MS_SYNC) == 0 ? fmt::format("mapped {}", n) : Err(errno);
            } else {
              out.assign(m, size);
            }
            ::munmap(m, size);
          }
        }
        ::close(fd);
        return out;
      }
      case kKeepOpen: {
        if (kept_[op.slot] >= 0) ::close(kept_[op.slot]);
        kept_[op.slot] = ::open(p.c_str(), O_RDWR);
        return kept_[op.slot] >= 0 ? "ok" : Err(errno);
      }
      case kKeptWrite: {
        int fd = kept_[op.slot];
        if (fd < 0) return "none";
        ssize_t n = ::pwrite(fd, op.data.data(), op.data.size(), op.off);
        if (n < 0) return Err(errno);
        return ReadAll(fd);
      }
      case kKeptClose: {
        if (kept_[op.slot] < 0) return "none";
        int rc = ::close(kept_[op.slot]);
        kept_[op.slot] = -1;
        return rc == 0 ? "ok" : Err(errno);
      }
      case kKinds:
        break;
    }
    return "bad op";
  }

  // name -> "type mode nlink size" + bytes, for the whole tree.
  std::map<std::string, std::string> Snapshot() const {
    std::map<std::string, std::string> out;
    for (auto it = fs::recursive_directory_iterator(root_); it != fs::recursive_directory_iterator();
         ++it) {
      struct stat st;
      if (::lstat(it->path().c_str(), &st) != 0) {
        out[it->path().lexically_relative(root_)] = Err(errno);
        continue;
      }
      std::string desc = fmt::format("{:o} nlink={} size={}", st.st_mode, st.st_nlink,
                                     S_ISDIR(st.st_mode) ? 0 : st.st_size);
      if (S_ISREG(st.st_mode)) desc += "\n" + ReadFile(it->path());
      out[it->path().lexically_relative(root_)] = desc;
    }
    return out;
  }

 private:
  static std::string ReadAll(int fd) {
    struct stat st;
    ::fstat(fd, &st);
    std::string buf(st.st_size, '\0');
    ssize_t n = ::pread(fd, buf.data(), buf.size(), 0);
    if (n < 0) return Err(errno);
    buf.resize(n);
    return buf;
  }

  fs::path root_;
  std::array<int, 4> kept_ = {-1, -1, -1, -1};
};

class RandomOpsTest : public FuseFixture {
 protected:
  uint64_t ArenaSize() const override { return 128ULL << 20; }
  // Only a few inodes keep an fd: most operations reopen their inode by file handle.
  size_t MaxInodeFds() const override { return 3; }
};

Op RandomOp(std::mt19937_64& rng) {
  static const char* kNames[] = {"f0", "f1", "f2", "f3", "d/f4", "d/f5", "d/e/f6", "d/e"};
  auto pick = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
  Op op;
  op.kind = static_cast<Kind>(pick(kKinds));
  op.name = kNames[pick(7)];  // d/e only as a rename/link target, to meet EISDIR & co
  op.name2 = kNames[pick(8)];
  op.off = pick(256 << 10);
  op.len = pick(96 << 10);
  op.slot = pick(4);
  size_t data_len = pick(4) == 0 ? pick(1 << 20) : pick(64 << 10);
  op.data.resize(data_len);
  char seed = static_cast<char>(pick(256));
  for (size_t i = 0; i < data_len; ++i) op.data[i] = static_cast<char>(seed + i * 31 + (i >> 12));
  if (op.kind == kCreateWrite) op.flags = pick(3) == 0 ? O_TRUNC : 0;
  if (op.kind == kRename) {
    static const uint32_t kFlags[] = {0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE};
    op.flags = kFlags[pick(4)];
  }
  if (op.kind == kTruncate) op.len = pick(384 << 10);
  if (op.kind == kFallocate) {
    static const uint32_t kModes[] = {0, FALLOC_FL_KEEP_SIZE,
                                      FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE};
    op.flags = kModes[pick(3)];
  }
  return op;
}

TEST_P(RandomOpsTest, MatchesTmpfsAfterEveryStep) {
  uint64_t seed = std::random_device{}();
  if (const char* env = std::getenv("CELLAR_RANDOM_SEED")) seed = std::strtoull(env, nullptr, 10);
  std::printf("random ops seed %llu (CELLAR_RANDOM_SEED=%llu to replay)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);

  Arena reference(root_ / "reference", ArenaSize());
  for (const fs::path& root : {vol_a_, reference.dir()}) {
    fs::create_directories(root / "d" / "e");
  }
  {
    Side cellar(vol_a_);
    Side ref(reference.dir());
    std::map<int, int> counts;
    for (int step = 0; step < kOps; ++step) {
      Op op = RandomOp(rng);
      ++counts[op.kind];
      std::string got = cellar.Apply(op);
      std::string want = ref.Apply(op);
      ASSERT_EQ(got.size(), want.size()) << "step " << step << ": " << op.Describe() << "\n"
                                         << got.substr(0, 80) << " vs " << want.substr(0, 80);
      ASSERT_TRUE(got == want) << "step " << step << ": " << op.Describe();
      auto got_tree = cellar.Snapshot();
      auto want_tree = ref.Snapshot();
      ASSERT_EQ(got_tree.size(), want_tree.size()) << "step " << step << ": " << op.Describe();
      for (const auto& [name, desc] : want_tree) {
        auto it = got_tree.find(name);
        ASSERT_NE(it, got_tree.end()) << "step " << step << ": missing " << name;
        ASSERT_TRUE(it->second == desc)
            << "step " << step << ": " << op.Describe() << ": " << name << " differs: "
            << it->second.substr(0, it->second.find('\n')) << " vs "
            << desc.substr(0, desc.find('\n'));
      }
    }
    for (auto [kind, n] : counts) std::printf("  %-12s %d\n", kKindNames[kind], n);
  }
  // Every kept file was closed: the daemon saw every RELEASE.
  while (server_->Usage("vol-a")->open_files != 0) std::this_thread::yield();
}

INSTANTIATE_TEST_SUITE_P(Modes, RandomOpsTest, ::testing::Bool(), ModeName);

}  // namespace
}  // namespace cellar::mount::testing
