// PeerClient: the reader's side of cross-node reads. Implements csi::RemoteVolumes over
// the Peer protocol (proto/peer.proto), with mutual TLS, one channel per owner address.
//
// Sync makes a directory a copy of the owner's volume as Describe listed it (no second
// listing): files unchanged since the last sync (same size and mtime) stay, the rest are
// fetched, up to four at once, each into a temporary name beside it and renamed over the
// old one once whole, so a reader of the directory sees an old or a new file, never part
// of one. A file its owner is writing is retried for up to ten seconds, then the sync fails
// naming it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <grpcpp/grpcpp.h>

#include "csi/remote_volumes.h"
#include "node/peer_credentials.h"
#include "peer.grpc.pb.h"

namespace cellar::node {

// Temporary files of fetches in flight start with this; a sync removes leftovers.
inline constexpr const char* kFetchPrefix = ".cellar-fetch.";

class PeerClient final : public csi::RemoteVolumes {
 public:
  explicit PeerClient(PeerCredentials credentials) : credentials_(std::move(credentials)) {}

  Result<csi::RemoteVolumeInfo> Describe(const csi::RemoteOwner& owner,
                                         const std::string& volume_id) override;
  Result<csi::SyncReport> Sync(const csi::RemoteOwner& owner, const std::string& volume_id,
                               const csi::RemoteVolumeInfo& described,
                               const std::filesystem::path& dir) override;

 private:
  std::shared_ptr<grpc::Channel> ChannelTo(const std::string& address);
  Result<cellar::peer::v1::DescribeResponse> Ask(const csi::RemoteOwner& owner,
                                                 const std::string& volume_id);

  const PeerCredentials credentials_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;  // by address
};

}  // namespace cellar::node
