// fsbench: the parts of the FUSE benchmark fio does not cover.
//   fsbench mmapread FILE          map the whole file, read every byte; prints MB/s
//   fsbench create DIR N SIZE SECS create+write+close N files (stops after SECS); ops/s
//   fsbench stat DIR N SECS        stat the files create made; ops/s
//   fsbench hold DIR N             create and keep N files open until stdin closes
// Built by run.sh with g++; no dependencies.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

int MmapRead(const char* path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return perror(path), 1;
  struct stat st;
  fstat(fd, &st);
  auto start = std::chrono::steady_clock::now();
  auto* p = static_cast<const uint64_t*>(mmap(nullptr, st.st_size, PROT_READ, MAP_SHARED, fd, 0));
  if (p == MAP_FAILED) return perror("mmap"), 1;
  uint64_t sum = 0;
  for (size_t i = 0; i < static_cast<size_t>(st.st_size) / 8; ++i) sum += p[i];
  double s = Seconds(start);
  munmap(const_cast<uint64_t*>(p), st.st_size);
  close(fd);
  std::printf("%.0f\n", st.st_size / s / 1e6);
  std::fprintf(stderr, "checksum %llu\n", static_cast<unsigned long long>(sum));
  return 0;
}

int Create(const std::string& dir, long n, size_t size, double secs) {
  std::string data(size, 'x');
  auto start = std::chrono::steady_clock::now();
  long i = 0;
  for (; i < n; ++i) {
    std::string path = dir + "/f" + std::to_string(i);
    int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) return perror(path.c_str()), 1;
    if (write(fd, data.data(), size) != static_cast<ssize_t>(size)) return perror("write"), 1;
    close(fd);
    if ((i & 255) == 0 && Seconds(start) > secs) break;
  }
  std::printf("%.0f %ld\n", i / Seconds(start), i);
  return 0;
}

int Stat(const std::string& dir, long n, double secs) {
  auto start = std::chrono::steady_clock::now();
  long i = 0;
  struct stat st;
  for (; i < n; ++i) {
    std::string path = dir + "/f" + std::to_string(i);
    if (stat(path.c_str(), &st) != 0) break;  // create stopped early
    if ((i & 255) == 0 && Seconds(start) > secs) break;
  }
  std::printf("%.0f %ld\n", i / Seconds(start), i);
  return 0;
}

int Hold(const std::string& dir, long n) {
  std::vector<int> fds;
  for (long i = 0; i < n; ++i) {
    std::string path = dir + "/h" + std::to_string(i);
    int fd = open(path.c_str(), O_CREAT | O_RDWR, 0644);
    if (fd < 0) return perror(path.c_str()), 1;
    fds.push_back(fd);
  }
  std::printf("held %ld\n", n);
  std::fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  for (int fd : fds) close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "mmapread" && argc == 3) return MmapRead(argv[2]);
  if (cmd == "create" && argc == 6) {
    return Create(argv[2], std::atol(argv[3]), std::atol(argv[4]), std::atof(argv[5]));
  }
  if (cmd == "stat" && argc == 5) return Stat(argv[2], std::atol(argv[3]), std::atof(argv[4]));
  if (cmd == "hold" && argc == 4) return Hold(argv[2], std::atol(argv[3]));
  std::fprintf(stderr, "usage: see the header of fsbench.cc\n");
  return 2;
}
