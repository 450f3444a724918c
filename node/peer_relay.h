// PeerRelay: carries TCP connections from other nodes to this node's peer socket, a
// unix socket in the state directory, byte for byte (TLS stays end to end: the relay
// never sees plaintext). Why: in Kubernetes the plugin pod has no host network (a
// rollout runs the old and the new pod side by side, which host ports forbid), so its
// own address changes with every rollout, while volume contexts keep the address their
// owner had when it created them. The relay runs in its own pod on the host network
// (`cellar peer-relay`, deploy/kubernetes/components/peering), at the node's stable
// address; whichever `cellar node` serves the unix socket now answers.
#pragma once

#include <filesystem>

#include "common/status.h"
#include "common/unique_fd.h"

namespace cellar::node {

// A listening TCP socket on HOST:PORT (brackets around an IPv6 host; an empty host is
// every address). InvalidArgument naming --listen for a bad address, the errno of
// bind (EADDRINUSE: another relay or program has the port) otherwise.
Result<UniqueFd> ListenForPeers(const std::string& listen);

// Serves connections accepted on `listener` (a listening TCP socket) until `stop_fd`
// turns readable, then closes every relayed connection. A connection that finds no one
// at `target` is closed at once (the peer client reports the owner unreachable).
Status RunPeerRelay(int listener, const std::filesystem::path& target, int stop_fd);

// `cellar peer-relay`: listens on `listen`, relays to `target` until SIGTERM or SIGINT.
Status RunPeerRelayCommand(const std::string& listen, const std::filesystem::path& target);

}  // namespace cellar::node
