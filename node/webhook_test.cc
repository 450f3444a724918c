// The admission webhook for real: HTTPS on loopback with certificates made here by the
// openssl CLI, AdmissionReviews posted as the API server posts them, and the Kubernetes
// API played by a stand-in: a second HTTPS server in this test that serves canned
// PersistentVolumeClaim and PersistentVolume JSON and checks the bearer token. The
// stand-in is not the Kubernetes API server; it answers exactly the GETs the webhook
// makes.
#include "node/webhook.h"

#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <fstream>
#include <map>
#include <thread>

#include <gtest/gtest.h>

#include "common/tcp_listen.h"
#include "csi/placement.h"
#include "tests/support/temp_dir.h"

namespace cellar::node {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using cellar::testing::TempDir;

const std::string kDriver = "csi.cellar.dev";

void RunCommand(const std::string& cmd) {
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

void WriteText(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

// A CA, and a serving certificate for 127.0.0.1 signed by it: dir/{ca.crt,tls.crt,tls.key}.
void MakeCertificates(const fs::path& dir) {
  const std::string d = dir.string();
  WriteText(dir / "san.cnf", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  RunCommand("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca -keyout " + d +
             "/ca.key -out " + d + "/ca.crt 2>/dev/null");
  RunCommand("openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout " + d +
             "/tls.key -out " + d + "/tls.csr 2>/dev/null");
  RunCommand("openssl x509 -req -in " + d + "/tls.csr -CA " + d + "/ca.crt -CAkey " + d +
             "/ca.key -CAcreateserial -days 1 -extfile " + d + "/san.cnf -out " + d +
             "/tls.crt 2>/dev/null");
}

std::string Claim(const std::string& volume, const std::string& phase) {
  return R"({"kind":"PersistentVolumeClaim","spec":{"storageClassName":"x","volumeName":")" +
         volume + R"("},"status":{"phase":")" + phase + "\"}}";
}

std::string Volume(const std::string& driver, const std::string& owner) {
  return R"({"kind":"PersistentVolume","spec":{"csi":{"driver":")" + driver +
         R"(","volumeHandle":"vol-1","volumeAttributes":{"cellar.dev/owner-node":")" + owner +
         R"(","cellar.dev/owner-peer":"10.0.0.1:9443"}}}})";
}

std::string Review(const std::string& uid, const std::string& pod) {
  return R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":)" + uid +
         R"(,"kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE",)"
         R"("namespace":"team","object":)" +
         pod + "}}";
}

std::string PodWith(const std::vector<std::string>& claims) {
  std::string volumes;
  for (const auto& c : claims) {
    volumes += std::string(volumes.empty() ? "" : ",") + R"({"name":")" + c +
               R"(","persistentVolumeClaim":{"claimName":")" + c + "\"}}";
  }
  return R"({"metadata":{"generateName":"step-"},"spec":{"affinity":{"nodeAffinity":)"
         R"({"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[]}}},)"
         R"("containers":[{"name":"c"}],"volumes":[)" +
         volumes + "]}}";
}

std::string Unbase64(const std::string& text) {
  std::string out(text.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return "<bad base64>";
  out.resize(static_cast<size_t>(n));
  while (!out.empty() && out.back() == '\0') out.pop_back();  // padding
  return out;
}

struct Reply {
  int status = 0;
  std::string body;
};

class WebhookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MakeCertificates(tmp_.path());
    WriteText(tmp_ / "token", "token-1\n");
    api_objects_ = {
        {ClaimPath("team", "data"), Claim("pv-1", "Bound")},
        {VolumePath("pv-1"), Volume(kDriver, "node-a")},
        {ClaimPath("team", "more"), Claim("pv-3", "Bound")},
        {VolumePath("pv-3"), Volume(kDriver, "node-b")},
        {ClaimPath("team", "nfs"), Claim("pv-2", "Bound")},
        {VolumePath("pv-2"), Volume("nfs.csi.k8s.io", "node-c")},
        {ClaimPath("team", "waiting"), Claim("", "Pending")},
    };
    HttpsServerOptions api_options;
    api_options.listen = "127.0.0.1:0";
    api_options.cert = tmp_ / "tls.crt";
    api_options.key = tmp_ / "tls.key";
    auto api = HttpsServer::Start(api_options, [this](const HttpRequest& r) -> HttpResponse {
      ++api_calls_;
      if (r.target.rfind("/api/v1/persistentvolumes/", 0) == 0) ++volume_calls_;
      if (api_delay_.load() > 0ms) std::this_thread::sleep_for(api_delay_.load());
      std::string token;
      {
        std::ifstream in(tmp_ / "token");
        std::getline(in, token);
      }
      if (r.head.Header("Authorization") != "Bearer " + token) return {401, "text/plain", "no"};
      auto it = api_objects_.find(r.target);
      if (r.method != "GET" || it == api_objects_.end()) return {404, "application/json", "{}"};
      return {200, "application/json", it->second};
    });
    ASSERT_TRUE(api.ok()) << api.status().ToString();
    api_ = std::move(*api);
    StartWebhook("https://127.0.0.1:" + std::to_string(api_->port()));
  }

  void StartWebhook(const std::string& api_url, std::chrono::milliseconds timeout = 10s) {
    server_.reset();
    KubeApiOptions kube;
    kube.server = api_url;
    kube.ca_file = tmp_ / "ca.crt";
    kube.token_file = tmp_ / "token";
    kube.timeout = 1s;
    auto client = KubeApi::Create(kube);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    webhook_ = std::make_unique<PlacementWebhook>(kDriver, *client, 1500ms);
    HttpsServerOptions options;
    options.listen = "127.0.0.1:0";
    options.cert = tmp_ / "tls.crt";
    options.key = tmp_ / "tls.key";
    options.request_timeout = timeout;
    auto server =
        HttpsServer::Start(options, [this](const HttpRequest& r) { return webhook_->Handle(r); });
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }

  Result<TlsStream> Dial() {
    auto ctx = ClientTlsContext(tmp_ / "ca.crt");
    if (!ctx.ok()) return ctx.status();
    const Deadline deadline = Clock::now() + 5s;
    ASSIGN_OR_RETURN(UniqueFd fd,
                     ConnectTcp("127.0.0.1", std::to_string(server_->port()), deadline));
    return TlsStream::Connect(ctx->get(), std::move(fd), "127.0.0.1", deadline);
  }

  // Sends `raw` on a fresh connection and reads one response.
  Reply Send(const std::string& raw) {
    auto stream = Dial();
    EXPECT_TRUE(stream.ok()) << stream.status().ToString();
    if (!stream.ok()) return {};
    const Deadline deadline = Clock::now() + 5s;
    EXPECT_TRUE(stream->WriteAll(raw, deadline).ok());
    std::string buffered;
    auto msg = ReadHttpMessage(*stream, buffered, HttpLimits{}, true, deadline);
    EXPECT_TRUE(msg.ok()) << msg.status().ToString();
    if (!msg.ok()) return {};
    return {std::atoi(msg->head.start_line.c_str() + 9), msg->body};
  }

  static std::string Post(const std::string& body) {
    return "POST /mutate?timeout=2s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Content-Length: " +
           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  }

  // Posts a review; returns the response object, and the decoded patch ("" if none).
  std::pair<YAML::Node, std::string> Mutate(const std::string& review) {
    Reply reply = Send(Post(review));
    EXPECT_EQ(reply.status, 200) << reply.body;
    YAML::Node answer = YAML::Load(reply.body);
    EXPECT_EQ(answer["apiVersion"].as<std::string>(), "admission.k8s.io/v1");
    EXPECT_EQ(answer["kind"].as<std::string>(), "AdmissionReview");
    YAML::Node response = answer["response"];
    EXPECT_EQ(response["allowed"].as<std::string>(), "true");
    if (!response["patch"]) return {response, ""};
    EXPECT_EQ(response["patchType"].as<std::string>(), "JSONPatch");
    return {response, Unbase64(response["patch"].as<std::string>())};
  }

  TempDir tmp_{"webhook-test"};
  std::map<std::string, std::string> api_objects_;
  std::atomic<int> api_calls_{0};
  std::atomic<int> volume_calls_{0};
  std::atomic<std::chrono::milliseconds> api_delay_{std::chrono::milliseconds(0)};
  std::unique_ptr<PlacementWebhook> webhook_;
  std::unique_ptr<HttpsServer> server_;  // stopped before the API stand-in below
  std::unique_ptr<HttpsServer> api_;
  // Destruction order: server_ is declared before api_, so api_ goes first; reset
  // server_ explicitly so no review is in flight against a stopped stand-in.
  void TearDown() override { server_.reset(); }
};

TEST_F(WebhookTest, PodOfABoundCellarClaimPrefersItsOwnerAndKeepsItsAffinity) {
  auto [response, patch] = Mutate(Review(R"("uid-1")", PodWith({"data", "nfs", "waiting"})));
  EXPECT_EQ(response["uid"].as<std::string>(), "uid-1");
  EXPECT_EQ(patch, R"([{"op":"add","path":"/spec/affinity/nodeAffinity/)"
                   R"(preferredDuringSchedulingIgnoredDuringExecution","value":[)" +
                       csi::PreferenceTermJson({"node-a", 100}) + "]}]");
}

TEST_F(WebhookTest, ClaimsOnTwoOwnersGetATermEach) {
  auto [response, patch] = Mutate(Review(R"("uid-2")", PodWith({"more", "data"})));
  EXPECT_NE(patch.find(csi::PreferenceTermJson({"node-a", 100})), std::string::npos) << patch;
  EXPECT_NE(patch.find(csi::PreferenceTermJson({"node-b", 100})), std::string::npos) << patch;
}

TEST_F(WebhookTest, OwnersAreCachedPerVolume) {
  Mutate(Review(R"("a")", PodWith({"data"})));
  Mutate(Review(R"("b")", PodWith({"data"})));
  EXPECT_EQ(volume_calls_.load(), 1);
  EXPECT_EQ(api_calls_.load(), 3);  // the claim is asked every time: it may be recreated
}

TEST_F(WebhookTest, TheTokenIsReadAgainForEveryRequest) {
  WriteText(tmp_ / "token", "token-2\n");
  auto [response, patch] = Mutate(Review(R"("rotated")", PodWith({"data"})));
  EXPECT_NE(patch.find("node-a"), std::string::npos);
}

TEST_F(WebhookTest, UidWithEscapesIsEchoedExactly) {
  auto [response, patch] = Mutate(Review(R"("q\"u\\i\u00e9d")", PodWith({})));
  EXPECT_EQ(response["uid"].as<std::string>(),
            "q\"u\\i\xc3\xa9"
            "d");
  EXPECT_EQ(patch, "");
}

TEST_F(WebhookTest, AnUnreachableApiServerAllowsThePodWithoutPatchInTime) {
  // A port nobody listens on: the webhook still answers, allowed, no patch.
  api_.reset();
  StartWebhook("https://127.0.0.1:1");
  auto start = Clock::now();
  auto [response, patch] = Mutate(Review(R"("down")", PodWith({"data"})));
  EXPECT_EQ(patch, "");
  EXPECT_LT(Clock::now() - start, 2s);
}

TEST_F(WebhookTest, ASlowApiServerCostsAtMostTheBudget) {
  api_delay_ = 3s;
  auto start = Clock::now();
  auto [response, patch] = Mutate(Review(R"("slow")", PodWith({"data", "more"})));
  EXPECT_EQ(patch, "");
  EXPECT_LT(Clock::now() - start, 1900ms);
  api_delay_ = 0ms;
}

TEST_F(WebhookTest, OtherOperationsAndKindsAreAllowedUntouched) {
  std::string review = Review(R"("upd")", PodWith({"data"}));
  review.replace(review.find("CREATE"), 6, "UPDATE");
  auto [response, patch] = Mutate(review);
  EXPECT_EQ(patch, "");
  EXPECT_EQ(api_calls_.load(), 0);
}

TEST_F(WebhookTest, HealthzAnswersOk) {
  Reply reply = Send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "ok\n");
  EXPECT_EQ(Send("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n").status, 404);
  EXPECT_EQ(Send("GET /mutate HTTP/1.1\r\nHost: x\r\n\r\n").status, 405);
}

TEST_F(WebhookTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  auto stream = Dial();
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  const Deadline deadline = Clock::now() + 5s;
  std::string buffered;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(stream->WriteAll("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", deadline).ok());
    auto msg = ReadHttpMessage(*stream, buffered, HttpLimits{}, false, deadline);
    ASSERT_TRUE(msg.ok()) << msg.status().ToString();
    EXPECT_EQ(msg->body, "ok\n");
  }
}

TEST_F(WebhookTest, OversizeBodyIs413) {
  Reply reply = Send("POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n{");
  EXPECT_EQ(reply.status, 413);
}

TEST_F(WebhookTest, GarbageIs400) {
  EXPECT_EQ(Send(Post("{{{ not json")).status, 400);
  EXPECT_EQ(Send(Post(R"({"kind":"AdmissionReview","request":{}})")).status, 400);  // no uid
  EXPECT_EQ(Send(Post("[1,2]")).status, 400);
  EXPECT_EQ(Send("NONSENSE\r\n\r\n").status, 400);
  EXPECT_EQ(Send("POST /mutate HTTP/1.1\r\nContent-Length: x\r\n\r\n").status, 400);
}

TEST_F(WebhookTest, AStalledClientBlocksNobodyAndIsCutAtTheTimeout) {
  StartWebhook("https://127.0.0.1:" + std::to_string(api_->port()), 700ms);
  // One client that never even starts TLS, one that sends half a request.
  auto silent = ConnectTcp("127.0.0.1", std::to_string(server_->port()), Clock::now() + 2s);
  ASSERT_TRUE(silent.ok());
  auto stalled = Dial();
  ASSERT_TRUE(stalled.ok());
  const Deadline deadline = Clock::now() + 5s;
  ASSERT_TRUE(
      stalled->WriteAll("POST /mutate HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"kind\"", deadline)
          .ok());

  auto start = Clock::now();
  Reply reply = Send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(reply.status, 200);
  EXPECT_LT(Clock::now() - start, 500ms);

  // The stalled one is closed by the server once its request time is up.
  char buf[64];
  auto n = stalled->Read(buf, sizeof(buf), deadline);
  EXPECT_TRUE(!n.ok() || *n == 0) << "the server answered a half request";
  EXPECT_LT(Clock::now() - start, 3s);
}

// The API server's answers as the wire carries them: a TLS server that reads one request
// and writes `raw` back, then closes. Returns KubeApi::Get's result for `path`.
Result<std::string> GetFromRawServer(const TempDir& tmp, const std::string& raw,
                                     const std::string& cert = "tls") {
  auto listener = ListenTcp("--listen", "127.0.0.1:0", {.port_zero = true});
  if (!listener.ok()) return listener.status();
  auto ctx = ServerTlsContext(tmp / (cert + ".crt"), tmp / (cert + ".key"));
  if (!ctx.ok()) return ctx.status();
  std::thread server([&] {
    pollfd p{listener->get(), POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return;  // the client never came
    UniqueFd fd(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
    const Deadline deadline = Clock::now() + 5s;
    auto stream = TlsStream::Accept(ctx->get(), std::move(fd), deadline);
    if (!stream.ok()) return;
    std::string buffered;
    if (!ReadHttpMessage(*stream, buffered, HttpLimits{}, false, deadline).ok()) return;
    (void)stream->WriteAll(raw, deadline);
  });
  KubeApiOptions options;
  options.server = "https://127.0.0.1:" + std::to_string(BoundPort(listener->get()));
  options.ca_file = tmp / "ca.crt";
  options.token_file = tmp / "token";
  auto api = KubeApi::Create(options);
  Result<std::string> body = api.ok()
                                 ? api->Get("/api/v1/persistentvolumes/pv-1", Clock::now() + 5s)
                                 : Result<std::string>(api.status());
  server.join();
  return body;
}

class KubeApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MakeCertificates(tmp_.path());
    WriteText(tmp_ / "token", "t\n");
  }
  TempDir tmp_{"kube-api-test"};
};

TEST_F(KubeApiTest, ChunkedAnswersAreDecoded) {
  // Go's HTTP server chunks every answer over 2 KiB that has no Content-Length.
  auto body = GetFromRawServer(tmp_,
                               "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n"
                               "4;ext=1\r\n\"b\"}\r\n0\r\nX-Trailer: y\r\n\r\n");
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(*body, "{\"a\":\"b\"}");
}

TEST_F(KubeApiTest, AnAnswerWithoutLengthEndsAtClose) {
  auto body = GetFromRawServer(tmp_, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{}");
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(*body, "{}");
}

TEST_F(KubeApiTest, TruncatedAnswersAndErrorStatusesAreErrors) {
  auto truncated =
      GetFromRawServer(tmp_, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort");
  EXPECT_EQ(truncated.status().code(), Code::kInvalidArgument) << truncated.status().ToString();
  auto short_body = GetFromRawServer(tmp_, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}");
  EXPECT_FALSE(short_body.ok());
  EXPECT_EQ(GetFromRawServer(tmp_, "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}")
                .status()
                .code(),
            Code::kNotFound);
  EXPECT_EQ(GetFromRawServer(tmp_, "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\n{}")
                .status()
                .code(),
            Code::kPermissionDenied);
  EXPECT_EQ(
      GetFromRawServer(tmp_, "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n").status().code(),
      Code::kUnavailable);
}

TEST_F(KubeApiTest, TheServerCertificateMustNameTheHost) {
  // Signed by the same CA, but for another name than the 127.0.0.1 dialled.
  const std::string d = tmp_.path().string();
  WriteText(tmp_ / "other.cnf", "subjectAltName=DNS:elsewhere\n");
  RunCommand("openssl req -newkey rsa:2048 -nodes -subj /CN=elsewhere -keyout " + d +
             "/other.key -out " + d + "/other.csr 2>/dev/null");
  RunCommand("openssl x509 -req -in " + d + "/other.csr -CA " + d + "/ca.crt -CAkey " + d +
             "/ca.key -CAcreateserial -days 1 -extfile " + d + "/other.cnf -out " + d +
             "/other.crt 2>/dev/null");
  auto body = GetFromRawServer(tmp_, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", "other");
  EXPECT_EQ(body.status().code(), Code::kUnavailable) << body.status().ToString();
}

TEST_F(KubeApiTest, OnlyHttpsUrlsOfAHostAreAccepted) {
  KubeApiOptions options;
  options.ca_file = tmp_ / "ca.crt";
  options.token_file = tmp_ / "token";
  for (const char* url : {"https://127.0.0.1", "https://127.0.0.1:6443", "https://[::1]:6443/"}) {
    options.server = url;
    EXPECT_TRUE(KubeApi::Create(options).ok()) << url;
  }
  for (const char* url :
       {"http://127.0.0.1:1", "https://127.0.0.1/api", "https://:443", "https://127.0.0.1:99999"}) {
    options.server = url;
    EXPECT_EQ(KubeApi::Create(options).status().code(), Code::kInvalidArgument) << url;
  }
}

}  // namespace
}  // namespace cellar::node
