// Tests that mount (tmpfs arenas, FUSE, bind mounts), enter namespaces or run a node
// plugin need root, as the node plugin does. Without it they skip and say why, instead
// of failing on the first EPERM.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#define CELLAR_SKIP_UNLESS_ROOT(what)                                         \
  if (::geteuid() != 0)                                                       \
  GTEST_SKIP() << (what)                                                      \
               << " needs root (mounts and namespaces, as the node plugin); " \
                  "run the tests as root: bash tests/run-all.sh"
