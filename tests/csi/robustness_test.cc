// "Never crashes on any input": every CSI method of a real `cellar node` receives
// random bytes and randomly filled but well-formed requests; the daemon must answer
// each (any code) and still be ready afterwards.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <grpcpp/generic/generic_stub.h>

#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "tests/support/node_fixture.h"

namespace cellar::testing {
namespace {

namespace pb = google::protobuf;

using RobustnessTest = NodeTest;

// Fills scalar string fields with short path-like or hostile values, ints with edge
// values, and recurses into messages a couple of levels deep.
void Fill(pb::Message* msg, std::mt19937& rng, int depth) {
  static const char* kStrings[] = {"",
                                   "x",
                                   "..",
                                   "/",
                                   "/etc",
                                   "vol-00000000000000000000000000000000",
                                   "../../../../etc/passwd",
                                   "csi-abc",
                                   "\n",
                                   "%s%s%n"};
  const auto* desc = msg->GetDescriptor();
  const auto* refl = msg->GetReflection();
  for (int i = 0; i < desc->field_count(); ++i) {
    const auto* f = desc->field(i);
    if (rng() % 3 == 0) continue;
    if (f->is_map()) continue;  // map entries need both halves; left empty
    if (f->is_repeated()) {
      if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE && depth < 3) {
        Fill(refl->AddMessage(msg, f), rng, depth + 1);
      } else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING) {
        refl->AddString(msg, f, kStrings[rng() % 10]);
      }
      continue;
    }
    switch (f->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_STRING:
        refl->SetString(msg, f, kStrings[rng() % 10]);
        break;
      case pb::FieldDescriptor::CPPTYPE_INT64:
        refl->SetInt64(msg, f, std::vector<int64_t>{-1, 0, 1, 1 << 20, INT64_MAX}[rng() % 5]);
        break;
      case pb::FieldDescriptor::CPPTYPE_INT32:
        refl->SetInt32(msg, f, static_cast<int32_t>(rng()));
        break;
      case pb::FieldDescriptor::CPPTYPE_BOOL: refl->SetBool(msg, f, rng() % 2); break;
      case pb::FieldDescriptor::CPPTYPE_ENUM:
        refl->SetEnumValue(msg, f, static_cast<int>(rng() % 9));
        break;
      case pb::FieldDescriptor::CPPTYPE_MESSAGE:
        if (depth < 3) Fill(refl->MutableMessage(msg, f), rng, depth + 1);
        break;
      default: break;
    }
  }
}

// Mount points under "/" and "/etc" (where the absolute hostile strings point) in the
// mount namespace of process `pid`, as "mount point (fstype)".
std::multiset<std::string> HostileMounts(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/mountinfo");
  std::multiset<std::string> found;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point;
    fields >> id >> parent >> dev >> root >> mount_point;
    if (mount_point == "/" || mount_point.rfind("/etc", 0) == 0) {
      std::string type = line.substr(line.find(" - ") + 3);
      found.insert(mount_point + " (" + type.substr(0, type.find(' ')) + ")");
    }
  }
  return found;
}

TEST_P(RobustnessTest, RandomRequestsToEveryMethodNeverKillTheDaemon) {
  // The relative hostile strings resolve against the daemon's working directory.
  const std::filesystem::path cwd =
      std::filesystem::read_symlink("/proc/" + std::to_string(node_->pid()) + "/cwd");
  std::map<std::string, bool> cwd_before;
  for (const char* name :
       {"x", "csi-abc", "\n", "%s%s%n", "vol-00000000000000000000000000000000"}) {
    cwd_before[name] = std::filesystem::exists(std::filesystem::symlink_status(cwd / name));
  }
  const std::multiset<std::string> mounts_before = HostileMounts(node_->pid());
  grpc::ChannelArguments args;
  auto channel = grpc::CreateCustomChannel("unix://" + node_->socket().string(),
                                           grpc::InsecureChannelCredentials(), args);
  grpc::GenericStub stub(channel);
  std::mt19937 rng(0xce11a5);
  pb::DynamicMessageFactory factory;
  int calls = 0;
  for (const char* service : {"csi.v1.Identity", "csi.v1.Controller", "csi.v1.Node"}) {
    const auto* sdesc = pb::DescriptorPool::generated_pool()->FindServiceByName(service);
    ASSERT_NE(sdesc, nullptr);
    for (int m = 0; m < sdesc->method_count(); ++m) {
      const auto* method = sdesc->method(m);
      if (method->server_streaming() || method->client_streaming()) continue;
      std::string path = "/" + std::string(service) + "/" + method->name();
      for (int i = 0; i < 40; ++i) {
        std::string payload;
        if (i % 2 == 0) {
          payload.resize(rng() % 64);
          for (auto& c : payload) c = static_cast<char>(rng());
        } else {
          std::unique_ptr<pb::Message> msg(factory.GetPrototype(method->input_type())->New());
          Fill(msg.get(), rng, 0);
          payload = msg->SerializeAsString();
        }
        grpc::Slice slice(payload);
        grpc::ByteBuffer request(&slice, 1);
        grpc::ByteBuffer response;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        std::mutex mu;
        std::condition_variable cv;
        bool done = false;
        grpc::Status status;
        stub.UnaryCall(&ctx, path, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
          std::lock_guard lock(mu);
          status = s;
          done = true;
          cv.notify_one();
        });
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return done; });
        ASSERT_NE(status.error_code(), grpc::StatusCode::UNAVAILABLE)
            << path << " took the daemon down:\n"
            << node_->Log();
        ASSERT_NE(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << path << " hung";
        ++calls;
      }
    }
  }
  grpc::ClientContext ctx;
  csi::v1::ProbeResponse resp;
  ASSERT_TRUE(node_->identity().Probe(&ctx, {}, &resp).ok());
  EXPECT_TRUE(resp.ready().value());
  EXPECT_GT(calls, 800);
  // Nothing mounted or made where the hostile paths point, in the daemon's own view.
  EXPECT_EQ(HostileMounts(node_->pid()), mounts_before);
  for (const auto& [name, existed] : cwd_before) {
    EXPECT_EQ(std::filesystem::exists(std::filesystem::symlink_status(cwd / name)), existed)
        << "the daemon made " << (cwd / name);
  }
}

CELLAR_INSTANTIATE_MODES(RobustnessTest);

}  // namespace
}  // namespace cellar::testing
