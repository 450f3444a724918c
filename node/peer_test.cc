// The node-to-node protocol over a real TLS socket on loopback: a replica is the owner's
// tree byte for byte, only holders of the cluster's certificate get anything, paths never
// leave the volume, and a file being written is never sent torn.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "node/peer_client.h"
#include "node/peer_server.h"
#include "tests/support/needs_root.h"
#include "tests/support/temp_dir.h"

namespace cellar::node {
namespace {

namespace fs = std::filesystem;
using cellar::testing::TempDir;
using namespace cellar::peer::v1;

const std::string kVolume = "vol-0123456789abcdef0123456789abcdef";

// deploy/peer-certs.sh, the script operators run, makes the credentials.
PeerCredentials MakeCredentials(const fs::path& dir) {
  std::string cmd = "bash " CELLAR_SOURCE_DIR "/deploy/peer-certs.sh " + dir.string();
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto c = LoadPeerCredentials(dir);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : PeerCredentials{};
}

void WriteFile(const fs::path& p, size_t bytes, uint64_t seed = 1) {
  std::mt19937_64 rng(seed);
  std::string data(bytes, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  std::ofstream(p, std::ios::binary) << data;
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool HasTempFiles(const fs::path& dir) {
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().filename().string().rfind(kFetchPrefix, 0) == 0) return true;
  }
  return false;
}

class PeerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CELLAR_SKIP_UNLESS_ROOT("read leases on other users' files and chown of fetched files");
    owned_ = tmp_.path() / "owned";
    replica_ = tmp_.path() / "replica";
    fs::create_directories(owned_);
    fs::create_directories(replica_);
    creds_ = MakeCredentials(tmp_.path() / "certs");
    service_ =
        std::make_unique<PeerServer>("node-a", [this](const std::string& id) -> Result<fs::path> {
          if (id == kVolume) return owned_;
          return Error(Code::kNotFound, "volume {} is not held by node \"node-a\"", id);
        });
    auto server = StartPeerServer("127.0.0.1:0", creds_, service_.get(), &port_);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    owner_ = {"node-a", "127.0.0.1:" + std::to_string(port_)};
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }

  // What a publish does: one Describe, and Sync from its answer.
  Result<csi::SyncReport> DescribeAndSync(PeerClient& client, const csi::RemoteOwner& owner) {
    ASSIGN_OR_RETURN(csi::RemoteVolumeInfo info, client.Describe(owner, kVolume));
    return client.Sync(owner, kVolume, info, replica_);
  }

  // A raw client of the service, to ask what PeerClient never would.
  std::unique_ptr<Peer::Stub> Stub(std::shared_ptr<grpc::ChannelCredentials> creds) {
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride(kPeerTlsName);
    return Peer::NewStub(grpc::CreateCustomChannel(owner_.address, creds, args));
  }

  TempDir tmp_{"cellar-peer"};
  fs::path owned_, replica_;
  PeerCredentials creds_;
  std::unique_ptr<PeerServer> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  csi::RemoteOwner owner_;
};

TEST_F(PeerTest, SyncCopiesTheTreeAndThenOnlyWhatChanged) {
  fs::create_directories(owned_ / "a/b");
  WriteFile(owned_ / "empty", 0);
  WriteFile(owned_ / "one", 1);
  WriteFile(owned_ / "a/b/big", 3 * (1 << 20) + 17);
  WriteFile(owned_ / "a/doomed", 10);
  WriteFile(owned_ / "caf\xe9 \xff", 3);  // Latin-1, not UTF-8: names are bytes
  fs::create_symlink("b/big", owned_ / "a/link");
  ::chmod((owned_ / "one").c_str(), 0640);
  ::chown((owned_ / "one").c_str(), 1234, 5678);
  struct timespec old_times[2] = {{1000, 5}, {1000, 5}};
  ::utimensat(AT_FDCWD, (owned_ / "one").c_str(), old_times, 0);

  PeerClient client(creds_);
  auto info = client.Describe(owner_, kVolume);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->files, 5u);
  EXPECT_EQ(info->used_bytes, 3u * (1 << 20) + 17 + 1 + 10 + 3);

  auto first = client.Sync(owner_, kVolume, *info, replica_);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->files_fetched, 5u);
  for (const char* f : {"empty", "one", "a/b/big", "a/doomed", "caf\xe9 \xff"}) {
    EXPECT_EQ(ReadAll(replica_ / f), ReadAll(owned_ / f)) << f;
  }
  EXPECT_EQ(fs::read_symlink(replica_ / "a/link"), "b/big");
  struct stat st {};
  ASSERT_EQ(::stat((replica_ / "one").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 5);

  fs::remove(owned_ / "a/doomed");
  WriteFile(owned_ / "one", 2, 7);
  WriteFile(owned_ / "new", 5);
  auto second = DescribeAndSync(client, owner_);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->files_fetched, 2u);  // one, new
  EXPECT_EQ(second->files_kept, 3u);     // empty, big, café
  EXPECT_EQ(second->files_removed, 1u);  // doomed
  EXPECT_FALSE(fs::exists(replica_ / "a/doomed"));
  EXPECT_EQ(ReadAll(replica_ / "one"), ReadAll(owned_ / "one"));
  EXPECT_FALSE(HasTempFiles(replica_));
}

// Sync fetches what the Describe handed to it listed and asks for no listing of its own.
TEST_F(PeerTest, SyncFetchesWhatItsDescribeListed) {
  WriteFile(owned_ / "listed", 10);
  PeerClient client(creds_);
  auto info = client.Describe(owner_, kVolume);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  WriteFile(owned_ / "later", 10);
  auto st = client.Sync(owner_, kVolume, *info, replica_);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->files_fetched, 1u);
  EXPECT_TRUE(fs::exists(replica_ / "listed"));
  EXPECT_FALSE(fs::exists(replica_ / "later"));
  // The next publish describes again and gets it.
  ASSERT_TRUE(DescribeAndSync(client, owner_).ok());
  EXPECT_EQ(ReadAll(replica_ / "later"), ReadAll(owned_ / "later"));

  auto none = client.Sync(owner_, kVolume, csi::RemoteVolumeInfo{}, replica_);
  EXPECT_EQ(none.status().code(), Code::kInternal) << none.status().ToString();
  auto other = client.Sync(owner_, "vol-ffffffffffffffffffffffffffffffff", *info, replica_);
  EXPECT_EQ(other.status().code(), Code::kInternal) << other.status().ToString();
}

// Holes are neither sent nor filled: a sparse file larger than the replica's memory fits.
TEST_F(PeerTest, HolesStayHoles) {
  {
    int fd = ::open((owned_ / "sparse").c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, "head", 4, 0), 4);
    ASSERT_EQ(::pwrite(fd, "mid", 3, 512ll << 20), 3);
    ASSERT_EQ(::ftruncate(fd, 1ll << 30), 0);  // ends in a hole
    ::close(fd);
  }
  WriteFile(owned_ / "holes-only", 0);
  ASSERT_EQ(::truncate((owned_ / "holes-only").c_str(), 8 << 20), 0);
  PeerClient client(creds_);
  auto st = DescribeAndSync(client, owner_);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_LT(st->bytes, 1u << 20);
  struct stat s {};
  ASSERT_EQ(::stat((replica_ / "sparse").c_str(), &s), 0);
  EXPECT_EQ(s.st_size, 1ll << 30);
  EXPECT_LT(s.st_blocks * 512, 4ll << 20);
  int fd = ::open((replica_ / "sparse").c_str(), O_RDONLY);
  char buf[4] = {};
  EXPECT_EQ(::pread(fd, buf, 4, 0), 4);
  EXPECT_EQ(std::string(buf, 4), "head");
  EXPECT_EQ(::pread(fd, buf, 3, 512ll << 20), 3);
  EXPECT_EQ(std::string(buf, 3), "mid");
  EXPECT_EQ(::pread(fd, buf, 4, 100), 4);
  EXPECT_EQ(std::string(buf, 4), std::string(4, '\0'));
  ::close(fd);
  EXPECT_EQ(fs::file_size(replica_ / "holes-only"), 8u << 20);
}

TEST_F(PeerTest, OnlyHoldersOfTheClusterCertificateAreServed) {
  WriteFile(owned_ / "secret", 100);
  DescribeRequest req;
  req.set_volume_id(kVolume);
  DescribeResponse resp;

  grpc::SslCredentialsOptions no_cert;  // trusts the CA, presents nothing
  no_cert.pem_root_certs = creds_.ca_pem;
  grpc::ClientContext c1;
  c1.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  EXPECT_FALSE(Stub(grpc::SslCredentials(no_cert))->Describe(&c1, req, &resp).ok());

  PeerCredentials other = MakeCredentials(tmp_.path() / "other-ca");
  grpc::SslCredentialsOptions foreign;  // a certificate of another CA
  foreign.pem_root_certs = creds_.ca_pem;
  foreign.pem_private_key = other.key_pem;
  foreign.pem_cert_chain = other.cert_pem;
  grpc::ClientContext c2;
  c2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  EXPECT_FALSE(Stub(grpc::SslCredentials(foreign))->Describe(&c2, req, &resp).ok());
  EXPECT_EQ(resp.entries_size(), 0);

  // And a reader with the cluster's certificate does not trust a server of another CA.
  PeerClient fooled(PeerCredentials{other.dir, other.ca_pem, other.cert_pem, other.key_pem});
  auto st = fooled.Describe(owner_, kVolume);
  EXPECT_EQ(st.status().code(), Code::kUnavailable) << st.status().ToString();
}

TEST_F(PeerTest, UnknownVolumesAndEscapingPathsAreRefused) {
  PeerClient client(creds_);
  auto unknown = client.Describe(owner_, "vol-ffffffffffffffffffffffffffffffff");
  EXPECT_EQ(unknown.status().code(), Code::kNotFound);
  EXPECT_NE(unknown.status().message().find("not held by node \"node-a\""), std::string::npos)
      << unknown.status().message();

  WriteFile(tmp_.path() / "outside", 10);
  fs::create_symlink(tmp_.path() / "outside", owned_ / "abs-link");
  fs::create_symlink("../outside", owned_ / "rel-link");
  fs::create_directories(owned_ / "d");
  fs::create_directory_symlink("..", owned_ / "d/up");
  auto stub = Stub(PeerChannelCredentials(creds_));
  for (std::string path : {"../outside", "/etc/passwd", "abs-link", "rel-link", "d/up/outside",
                           "d/../../outside", "", "d//x", "d"}) {
    grpc::ClientContext ctx;
    ReadFileRequest req;
    req.set_volume_id(kVolume);
    req.set_path(path);
    auto reader = stub->ReadFile(&ctx, req);
    FileChunk chunk;
    EXPECT_FALSE(reader->Read(&chunk)) << path;
    grpc::Status st = reader->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << path << ": " << st.error_message();
  }
  // The replica holds the links as links, never what they point at.
  ASSERT_TRUE(DescribeAndSync(client, owner_).ok());
  EXPECT_TRUE(fs::is_symlink(replica_ / "abs-link"));
  EXPECT_FALSE(fs::exists(replica_ / "outside"));
}

TEST_F(PeerTest, AFileOpenForWritingIsNotSentAndTheSyncSaysWhich) {
  WriteFile(owned_ / "done", 10);
  WriteFile(owned_ / "busy", 1000);
  int writer = ::open((owned_ / "busy").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(writer, 0);
  PeerClient client(creds_);
  auto start = std::chrono::steady_clock::now();
  auto st = DescribeAndSync(client, owner_);
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::close(writer);
  EXPECT_EQ(st.status().code(), Code::kUnavailable) << st.status().ToString();
  EXPECT_NE(st.status().message().find("\"busy\""), std::string::npos) << st.status().message();
  EXPECT_NE(st.status().message().find("open for writing"), std::string::npos);
  EXPECT_GE(waited, 9.0);  // the writer had ten seconds to close
  EXPECT_FALSE(fs::exists(replica_ / "busy"));
  EXPECT_FALSE(HasTempFiles(replica_));
  // Closed now: the next sync gets it whole.
  ASSERT_TRUE(DescribeAndSync(client, owner_).ok());
  EXPECT_EQ(ReadAll(replica_ / "busy"), ReadAll(owned_ / "busy"));
}

TEST_F(PeerTest, AWriterArrivingMidTransferAbortsItAndBarelyWaits) {
  WriteFile(owned_ / "big", 64 << 20);
  auto stub = Stub(PeerChannelCredentials(creds_));
  grpc::ClientContext ctx;
  ReadFileRequest req;
  req.set_volume_id(kVolume);
  req.set_path("big");
  auto reader = stub->ReadFile(&ctx, req);
  FileChunk chunk;
  ASSERT_TRUE(reader->Read(&chunk));  // the transfer runs; the reader then stalls
  auto start = std::chrono::steady_clock::now();
  int writer = ::open((owned_ / "big").c_str(), O_WRONLY);
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_GE(writer, 0);
  EXPECT_LT(waited, 1.0) << "the writer waited for the lease";
  ASSERT_EQ(::pwrite(writer, "X", 1, 0), 1);
  ::close(writer);
  while (reader->Read(&chunk)) {
  }
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ABORTED) << st.error_message();
  EXPECT_NE(st.error_message().find("opened for writing during the transfer"), std::string::npos);
}

TEST_F(PeerTest, AnOwnerGoneMidTransferLeavesOnlyWholeFiles) {
  WriteFile(owned_ / "small", 100);
  for (int i = 0; i < 8; ++i) WriteFile(owned_ / ("big" + std::to_string(i)), 32 << 20, i);
  PeerClient client(creds_);
  std::thread killer([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server_->Shutdown(std::chrono::system_clock::now());  // cancels the calls in flight
  });
  auto start = std::chrono::steady_clock::now();
  auto st = DescribeAndSync(client, owner_);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  killer.join();
  ASSERT_FALSE(st.ok()) << "the whole volume came before the shutdown; make it larger";
  EXPECT_LT(took, 15.0);
  EXPECT_FALSE(HasTempFiles(replica_));
  for (const auto& e : fs::directory_iterator(replica_)) {
    EXPECT_EQ(ReadAll(e.path()), ReadAll(owned_ / e.path().filename())) << e.path();
  }
}

// A compromised owner: its answers must not make the reader write outside the replica.
class HostileOwner final : public Peer::Service {
 public:
  explicit HostileOwner(std::vector<Entry> entries) : entries_(std::move(entries)) {}
  grpc::Status Describe(grpc::ServerContext*, const DescribeRequest* req,
                        DescribeResponse* resp) override {
    resp->set_volume_id(req->volume_id());
    resp->set_capacity_bytes(1 << 20);
    for (const auto& e : entries_) *resp->add_entries() = e;
    return grpc::Status::OK;
  }
  grpc::Status ReadFile(grpc::ServerContext*, const ReadFileRequest*,
                        grpc::ServerWriter<FileChunk>* writer) override {
    FileChunk chunk;
    chunk.set_size(5);
    chunk.set_data("owned");
    writer->Write(chunk);
    return grpc::Status::OK;
  }

 private:
  std::vector<Entry> entries_;
};

Entry MakeEntry(const std::string& path, Entry::Type type, const std::string& target = "") {
  Entry e;
  e.set_path(path);
  e.set_type(type);
  e.set_mode(0755);
  e.set_symlink_target(target);
  return e;
}

TEST_F(PeerTest, AHostileOwnerCannotMakeTheReaderWriteOutsideTheReplica) {
  fs::path outside = tmp_.path() / "outside";
  fs::create_directories(outside);
  const std::vector<std::vector<Entry>> answers = {
      {MakeEntry("a", Entry::SYMLINK, outside.string()), MakeEntry("a", Entry::DIRECTORY),
       MakeEntry("a/f", Entry::FILE)},
      {MakeEntry("a", Entry::SYMLINK, outside.string()), MakeEntry("a/f", Entry::FILE)},
      {MakeEntry("../f", Entry::FILE)},
      {MakeEntry("/f", Entry::FILE)},
  };
  for (const auto& answer : answers) {
    HostileOwner hostile(answer);
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", PeerServerCredentials(creds_), &port);
    builder.RegisterService(&hostile);
    auto server = builder.BuildAndStart();
    ASSERT_TRUE(server);
    PeerClient client(creds_);
    auto st = DescribeAndSync(client, {"evil", "127.0.0.1:" + std::to_string(port)});
    EXPECT_EQ(st.status().code(), Code::kDataLoss)
        << answer[0].path() << ": " << st.status().ToString();
    EXPECT_TRUE(fs::is_empty(outside));
    EXPECT_FALSE(fs::exists(tmp_.path() / "f"));
    server->Shutdown(std::chrono::system_clock::now());
    fs::remove_all(replica_);
    fs::create_directories(replica_);
  }
}

}  // namespace
}  // namespace cellar::node
