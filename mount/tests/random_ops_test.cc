// Randomized operations applied to a Cellar volume and to a plain tmpfs of the same size,
// with the outcomes (errno or data) and the whole tree (names, types, sizes, nlink, mode
// with setuid/setgid/sticky bits, owner, bytes) compared after every step. Each step runs
// as one of several users (fsuid/fsgid and groups, so without root's capabilities);
// sizes and offsets reach past the capacity (sparse files); on some steps, slowed past
// the clock's tick, whether each mtime and ctime changed is compared too. The seed is
// printed; CELLAR_RANDOM_SEED replays it.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <map>
#include <random>
#include <thread>

#include "mount/fs_creds.h"
#include "mount/fuse_fs.h"
#include "mount/tests/fuse_fixture.h"

namespace cellar::mount::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kOps = 3000;
constexpr uint64_t kCapacity = 128ULL << 20;  // of both sides
constexpr size_t kReadLimit = 2 << 20;        // what a step reads or maps of a file, at most
// Sizes and offsets at and beyond the capacity.
constexpr uint64_t kFar[] = {kCapacity - 4096, kCapacity,       kCapacity + 1,
                             5ULL << 30,       999999999999999, 0};

enum Kind {
  kCreateWrite,
  kOverwrite,
  kAppend,
  kTruncate,
  kRename,
  kUnlink,
  kMmapWrite,
  kReadRange,
  kReopen,
  kLink,
  kKeepOpen,
  kKeptWrite,
  kKeptClose,
  kMmapRead,
  kFallocate,
  kChmod,
  kChown,
  kTruncateFar,
  kWriteFar,
  kKeptShrink,
  kKinds
};
const char* kKindNames[] = {
    "create-write", "overwrite", "append", "truncate",     "rename",     "unlink",     "mmap-write",
    "read-range",   "reopen",    "link",   "keep-open",    "kept-write", "kept-close", "mmap-read",
    "fallocate",    "chmod",     "chown",  "truncate-far", "write-far",  "kept-shrink"};

// Who runs a step: root, two users sharing group 1000 (one through a supplementary
// group), and nobody.
struct User {
  uint32_t uid, gid;
  std::vector<uint32_t> groups;
};
const User kUsers[] = {
    {0, 0, {0}}, {1000, 1000, {1000}}, {1001, 1001, {1001, 1000}}, {65534, 65534, {65534}}};

struct Op {
  Kind kind;
  std::string name, name2;
  uint64_t off = 0;
  uint64_t len = 0;
  uint32_t flags = 0;
  size_t slot = 0;
  size_t user = 0;  // index into kUsers
  std::string data;

  std::string Describe() const {
    return fmt::format("{} {} {} off={} len={} flags={:#o} slot={} uid={}", kKindNames[kind], name,
                       name2, off, len, flags, slot, kUsers[user].uid);
  }
};

std::string Err(int e) {
  return fmt::format("errno {}", e);
}

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
    const User& u = kUsers[op.user];
    ScopedFsCreds creds(u.uid, u.gid, u.groups);
    return ApplyAsCaller(op);
  }

  std::string ApplyAsCaller(const Op& op) {
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
      case kTruncateFar: return ::truncate(p.c_str(), op.len) == 0 ? "ok" : Err(errno);
      case kWriteFar: {
        int fd = ::open(p.c_str(), O_WRONLY);
        if (fd < 0) return Err(errno);
        ssize_t n = ::pwrite(fd, op.data.data(), std::min<size_t>(op.data.size(), 3), op.off);
        std::string out = n < 0 ? Err(errno) : fmt::format("wrote {}", n);
        ::close(fd);
        return out;
      }
      case kChmod: return ::chmod(p.c_str(), op.flags) == 0 ? "ok" : Err(errno);
      case kChown: {
        // README: a no-op chown by another user of a setuid/setgid file succeeds on
        // Cellar (tmpfs: EPERM), as it cannot be told from a write dropping the bits.
        struct stat st;
        if (op.off == static_cast<uint32_t>(-1) && op.len == static_cast<uint32_t>(-1) &&
            kUsers[op.user].uid != 0 && ::stat(p.c_str(), &st) == 0 &&
            st.st_uid != kUsers[op.user].uid && (st.st_mode & (S_ISUID | S_ISGID))) {
          return "documented";
        }
        return ::chown(p.c_str(), static_cast<uid_t>(op.off), static_cast<gid_t>(op.len)) == 0
                   ? "ok"
                   : Err(errno);
      }
      case kKeptShrink: {
        int fd = kept_[op.slot];
        if (fd < 0) return "none";
        return ::ftruncate(fd, op.len) == 0 ? "ok" : Err(errno);
      }
      case kRename:
        return ::renameat2(AT_FDCWD, p.c_str(), AT_FDCWD, p2.c_str(), op.flags) == 0 ? "ok"
                                                                                     : Err(errno);
      case kUnlink: return ::unlink(p.c_str()) == 0 ? "ok" : Err(errno);
      case kLink: return ::link(p.c_str(), p2.c_str()) == 0 ? "ok" : Err(errno);
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
          // Only the start of a huge sparse file: a shared mapping's read fault
          // allocates tmpfs pages, so reading all of it would hit the capacity (SIGBUS).
          size_t size = std::min<size_t>(static_cast<size_t>(st.st_size), kReadLimit);
          char* m = static_cast<char*>(
              ::mmap(nullptr, size, write ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0));
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
      case kKinds: break;
    }
    return "bad op";
  }

  // name -> "type mode nlink size owner" + bytes, for the whole tree.
  std::map<std::string, std::string> Snapshot() const {
    std::map<std::string, std::string> out;
    for (auto it = fs::recursive_directory_iterator(root_);
         it != fs::recursive_directory_iterator(); ++it) {
      struct stat st;
      if (::lstat(it->path().c_str(), &st) != 0) {
        out[it->path().lexically_relative(root_)] = Err(errno);
        continue;
      }
      std::string desc = fmt::format("{:o} nlink={} size={} owner={}:{}", st.st_mode, st.st_nlink,
                                     S_ISDIR(st.st_mode) ? 0 : st.st_size, st.st_uid, st.st_gid);
      if (S_ISREG(st.st_mode)) desc += "\n" + Contents(it->path(), st);
      out[it->path().lexically_relative(root_)] = desc;
    }
    return out;
  }

  // name -> its mtime and ctime.
  std::map<std::string, std::string> Times() const {
    std::map<std::string, std::string> out;
    for (auto it = fs::recursive_directory_iterator(root_);
         it != fs::recursive_directory_iterator(); ++it) {
      struct stat st;
      if (::lstat(it->path().c_str(), &st) != 0) continue;
      out[it->path().lexically_relative(root_)] =
          fmt::format("{}.{} {}.{}", st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_ctim.tv_sec,
                      st.st_ctim.tv_nsec);
    }
    return out;
  }

 private:
  static std::string ReadAll(int fd) {
    struct stat st;
    ::fstat(fd, &st);
    std::string buf(std::min<size_t>(static_cast<size_t>(st.st_size), kReadLimit), '\0');
    ssize_t n = ::pread(fd, buf.data(), buf.size(), 0);
    if (n < 0) return Err(errno);
    buf.resize(n);
    return buf;
  }

  // The bytes of a small file; of a large (sparse) one the windows where steps write
  // (its start and around the far offsets). Not its data extents: which pages are
  // allocated is no file content (a fallback-mode mmap read fills the FUSE page cache,
  // not the arena, where tmpfs would allocate the page).
  static std::string Contents(const fs::path& path, const struct stat& st) {
    if (st.st_size <= static_cast<off_t>(kReadLimit)) return ReadFile(path);
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) return Err(errno);
    std::string out;
    auto window = [&](uint64_t from, uint64_t to) {
      to = std::min<uint64_t>(to, static_cast<uint64_t>(st.st_size));
      if (from >= to) return;
      std::string buf(to - from, '\0');
      ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(from));
      out += fmt::format("[{}+{}] ", from, n) + buf.substr(0, n < 0 ? 0 : n);
    };
    window(0, kReadLimit);
    for (uint64_t far : kFar) window(far > (8 << 10) ? far - (8 << 10) : 0, far + (8 << 10));
    ::close(fd);
    return out;
  }

  fs::path root_;
  std::array<int, 4> kept_ = {-1, -1, -1, -1};
};

// Which of mtime/ctime an operation changed, per name, from two Times().
std::map<std::string, std::string> Changes(const std::map<std::string, std::string>& before,
                                           const std::map<std::string, std::string>& after) {
  std::map<std::string, std::string> out;
  for (const auto& [name, times] : after) {
    auto it = before.find(name);
    if (it == before.end()) continue;
    const size_t a = times.find(' '), b = it->second.find(' ');
    out[name] = fmt::format("mtime {}, ctime {}",
                            times.substr(0, a) == it->second.substr(0, b) ? "kept" : "changed",
                            times.substr(a) == it->second.substr(b) ? "kept" : "changed");
  }
  return out;
}

// Where two descriptions part, with a little of each from there.
std::string FirstDifference(const std::string& got, const std::string& want) {
  size_t at = std::mismatch(got.begin(), got.end(), want.begin(), want.end()).first - got.begin();
  auto show = [&](const std::string& s) {
    std::string part = s.substr(std::min(at, s.size()), 40);
    for (char& c : part) c = std::isprint(static_cast<unsigned char>(c)) ? c : '.';
    return part;
  };
  return fmt::format("\n  from byte {} of {} / {}: '{}' vs '{}'", at, got.size(), want.size(),
                     show(got), show(want));
}

class RandomOpsTest : public FuseFixture {
 protected:
  uint64_t ArenaSize() const override { return kCapacity; }
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
  op.user = pick(4) == 0 ? 0 : pick(std::size(kUsers));  // root more often: it sets modes up
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
  if (op.kind == kKeptShrink) op.len = pick(64 << 10);
  if (op.kind == kTruncateFar) op.len = kFar[pick(std::size(kFar))];
  if (op.kind == kWriteFar) op.off = kFar[pick(std::size(kFar) - 1)] - 1;
  if (op.kind == kChmod || op.kind == kChown) {
    static const char* kTargets[] = {"f0", "f1", "f2", "d/f4", "d/e/f6", "d", "d/e"};
    op.name = kTargets[pick(std::size(kTargets))];
  }
  if (op.kind == kChmod) {
    static const uint32_t kModes[] = {0644,  0600,  0666,  0755,  0777,  04755, 02755,
                                      06777, 02767, 04777, 02777, 01777, 0400,  03777};
    op.flags = kModes[pick(std::size(kModes))];
  }
  if (op.kind == kChown) {
    static const uint32_t kIds[] = {static_cast<uint32_t>(-1), 0, 1000, 1001, 65534};
    op.off = kIds[pick(std::size(kIds))];
    op.len = kIds[pick(std::size(kIds))];
  }
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
    // Every user may create at first; chmod/chown steps change that as they go.
    ASSERT_EQ(::chmod(root.c_str(), 01777), 0);
    ASSERT_EQ(::chmod((root / "d").c_str(), 0777), 0);
    ASSERT_EQ(::chmod((root / "d" / "e").c_str(), 02777), 0);
  }
  {
    Side cellar(vol_a_);
    Side ref(reference.dir());
    std::map<int, int> counts;
    std::map<int, double> seconds;  // per kind, both sides and the comparison
    int timed_steps = 0;
    for (int step = 0; step < kOps; ++step) {
      Op op = RandomOp(rng);
      ++counts[op.kind];
      // One step in eight also compares which timestamps changed: it starts a tick
      // (4 ms at HZ=250) after the last change, so a change always shows.
      const bool timed = std::uniform_int_distribution<int>(0, 7)(rng) == 0;
      std::map<std::string, std::string> got_before, want_before;
      if (timed) {
        ++timed_steps;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        got_before = cellar.Times();
        want_before = ref.Times();
      }
      const auto started = std::chrono::steady_clock::now();
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
            << "step " << step << ": " << op.Describe() << ": " << name
            << " differs: " << it->second.substr(0, it->second.find('\n')) << " vs "
            << desc.substr(0, desc.find('\n')) << FirstDifference(it->second, desc);
      }
      seconds[op.kind] +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      if (timed) {
        auto got_changes = Changes(got_before, cellar.Times());
        for (const auto& [name, change] : Changes(want_before, ref.Times())) {
          ASSERT_EQ(got_changes[name], change)
              << "step " << step << ": " << op.Describe() << ": timestamps of " << name;
        }
      }
    }
    for (auto [kind, n] : counts) {
      std::printf("  %-12s %4d steps %6.2f s\n", kKindNames[kind], n, seconds[kind]);
    }
    std::printf("  timestamps compared on %d steps\n", timed_steps);
  }
  // Every kept file was closed: the daemon saw every RELEASE.
  while (server_->OpenFiles("vol-a")->open_files != 0) std::this_thread::yield();
}

INSTANTIATE_TEST_SUITE_P(Modes, RandomOpsTest, ::testing::Bool(), ModeName);

}  // namespace
}  // namespace cellar::mount::testing
