// The super options of a mount (tmpfs size=, huge=, ...), as the kernel reports them:
// tests check what was really mounted, not what was asked for.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace cellar::testing {

// The last field of /proc/self/mountinfo's line for the mount at `path` (the top one
// when several are stacked); "" when nothing is mounted there.
inline std::string SuperOptions(const std::filesystem::path& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line, found;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point;
    fields >> id >> parent >> dev >> root >> mount_point;
    if (mount_point != path.string()) continue;
    found = line.substr(line.rfind(' ') + 1);
  }
  return found;
}

}  // namespace cellar::testing
