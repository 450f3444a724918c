#include "node/webhook.h"

#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <spdlog/spdlog.h>

#include "common/json_string.h"
#include "common/termination_signals.h"
#include "csi/placement.h"

namespace cellar::node {

namespace {

using csi::JsonField;
using csi::JsonText;

constexpr size_t kMaxCachedVolumes = 10'000;

std::string Base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<YAML::Node> ParseJson(const std::string& text, const std::string& what) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(what + " is not JSON: " + e.what());
  }
}

std::string Answer(const std::string& uid, const std::string& patch) {
  std::string response = "{\"uid\":" + JsonString(uid) + ",\"allowed\":true";
  if (!patch.empty()) {
    response += ",\"patchType\":\"JSONPatch\",\"patch\":\"" + Base64(patch) + "\"";
  }
  return "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"response\":" +
         response + "}}";
}

}  // namespace

PlacementWebhook::PlacementWebhook(std::string driver_name, KubeApi api,
                                   std::chrono::milliseconds budget)
    : driver_name_(std::move(driver_name)), api_(std::move(api)), budget_(budget) {}

HttpResponse PlacementWebhook::Handle(const HttpRequest& request) {
  std::string_view path = std::string_view(request.target).substr(0, request.target.find('?'));
  if (path == "/healthz") {
    if (request.method != "GET") return {405, "text/plain", "GET only\n"};
    return {200, "text/plain", "ok\n"};
  }
  if (path != "/mutate") return {404, "text/plain", "not found\n"};
  if (request.method != "POST") return {405, "text/plain", "POST only\n"};
  std::unique_lock<std::mutex> one_large(large_review_, std::defer_lock);
  if (request.body.size() > kLargeReviewBytes) one_large.lock();
  auto answer = Review(request.body);
  if (!answer.ok()) {
    spdlog::warn("webhook: refused a request: {}", answer.status().message());
    return {400, "text/plain", answer.status().message() + "\n"};
  }
  return {200, "application/json", std::move(*answer)};
}

Result<std::string> PlacementWebhook::Review(const std::string& body) {
  ASSIGN_OR_RETURN(YAML::Node review, ParseJson(body, "the body"));
  if (!review.IsMap() || JsonText(JsonField(review, {"kind"})) != "AdmissionReview") {
    return InvalidArgument("the body is not an AdmissionReview");
  }
  const YAML::Node request = JsonField(review, {"request"});
  const std::string uid = JsonText(JsonField(request, {"uid"}));
  if (uid.empty()) return InvalidArgument("the AdmissionReview has no request.uid");

  // From here on every answer allows the pod: a failure only loses the preference.
  const std::string ns = JsonText(JsonField(request, {"namespace"}));
  const YAML::Node pod = JsonField(request, {"object"});
  std::string name = JsonText(JsonField(pod, {"metadata", "name"}));
  if (name.empty()) name = JsonText(JsonField(pod, {"metadata", "generateName"})) + "*";
  if (JsonText(JsonField(request, {"kind", "kind"})) != "Pod" ||
      JsonText(JsonField(request, {"operation"})) != "CREATE" ||
      !JsonText(JsonField(request, {"subResource"})).empty() || !pod.IsMap()) {
    return Answer(uid, "");
  }
  const Deadline deadline = std::chrono::steady_clock::now() + budget_;
  try {
    auto preferences = csi::OwnerPreferences(
        pod, [&](const std::string& claim) { return OwnerOfClaim(ns, claim, deadline); });
    if (!preferences.ok()) {
      spdlog::warn("webhook: pod {}/{}: no placement preference: {}", ns, name,
                   preferences.status().message());
      return Answer(uid, "");
    }
    std::string patch = csi::PreferOwnersPatch(pod, *preferences);
    if (!patch.empty()) {
      std::string nodes;
      for (const auto& p : *preferences) nodes += fmt::format(" {}({})", p.node, p.weight);
      spdlog::info("webhook: pod {}/{}: prefers node{}", ns, name, nodes);
    }
    return Answer(uid, patch);
  } catch (const std::exception& e) {
    spdlog::error("webhook: pod {}/{}: internal error, no placement preference: {}", ns, name,
                  e.what());
    return Answer(uid, "");
  }
}

Result<std::optional<std::string>> PlacementWebhook::OwnerOfClaim(const std::string& ns,
                                                                  const std::string& claim,
                                                                  Deadline deadline) {
  ASSIGN_OR_RETURN(std::string claim_json, api_.Get(ClaimPath(ns, claim), deadline));
  ASSIGN_OR_RETURN(YAML::Node pvc, ParseJson(claim_json, "claim " + ns + "/" + claim));
  std::optional<std::string> volume = csi::BoundVolumeOf(pvc);
  if (!volume) return std::optional<std::string>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = owners_.find(*volume); it != owners_.end()) return it->second;
  }
  ASSIGN_OR_RETURN(std::string volume_json, api_.Get(VolumePath(*volume), deadline));
  ASSIGN_OR_RETURN(YAML::Node pv, ParseJson(volume_json, "volume " + *volume));
  std::optional<std::string> owner = csi::OwnerNodeOf(pv, driver_name_);
  std::lock_guard<std::mutex> lock(mu_);
  if (owners_.size() >= kMaxCachedVolumes) owners_.clear();
  owners_[*volume] = owner;
  return owner;
}

Status RunWebhook(const WebhookOptions& options) {
  // Before any thread starts, so that every thread blocks the signals.
  ASSIGN_OR_RETURN(TerminationSignals signals, TerminationSignals::Open());
  if (options.driver_name.empty()) return InvalidArgument("--driver-name is empty");
  ASSIGN_OR_RETURN(KubeApi api, KubeApi::Create(options.api));
  PlacementWebhook webhook(options.driver_name, api, options.budget);
  HttpsServerOptions server_options;
  server_options.listen = options.listen;
  server_options.cert = options.tls_dir / "tls.crt";
  server_options.key = options.tls_dir / "tls.key";
  server_options.limits.max_body = kMaxReviewBytes;
  // Each connection may hold a body of kMaxReviewBytes while it is read.
  server_options.max_connections = 32;
  ASSIGN_OR_RETURN(auto server,
                   HttpsServer::Start(server_options, [&webhook](const HttpRequest& r) {
                     return webhook.Handle(r);
                   }));
  spdlog::info("webhook: serving https on {} (port {}), driver {}, API server {}", options.listen,
               server->port(), options.driver_name, api.server());
  ASSIGN_OR_RETURN(int signal, signals.Wait(std::chrono::milliseconds(-1)));
  spdlog::info("webhook: signal {}, stopping", signal);
  return Status::Ok();
}

}  // namespace cellar::node
