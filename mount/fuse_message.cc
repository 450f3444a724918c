#include "mount/fuse_message.h"

namespace cellar::mount {

std::vector<uint32_t> Request::SuppGroups() const {
  std::vector<uint32_t> groups;
  size_t pos = 0;
  while (pos + sizeof(fuse_ext_header) <= ext_size) {
    fuse_ext_header h;
    std::memcpy(&h, ext + pos, sizeof(h));
    if (h.size < sizeof(h) || pos + h.size > ext_size) break;  // malformed: ignore the rest
    if (h.type == kernel::kExtGroups && h.size >= sizeof(h) + sizeof(kernel::SuppGroups)) {
      kernel::SuppGroups sg;
      std::memcpy(&sg, ext + pos + sizeof(h), sizeof(sg));
      size_t room = (h.size - sizeof(h) - sizeof(sg)) / sizeof(uint32_t);
      for (uint32_t i = 0; i < sg.nr_groups && i < room; ++i) {
        uint32_t g;
        std::memcpy(&g, ext + pos + sizeof(h) + sizeof(sg) + i * sizeof(g), sizeof(g));
        groups.push_back(g);
      }
    }
    pos += h.size;
  }
  return groups;
}

}  // namespace cellar::mount
