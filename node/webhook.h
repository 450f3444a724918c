// `cellar webhook`: the mutating admission webhook that keeps pods of Cellar claims
// local-first. For each pod being created it adds a preferred node affinity term for
// the owner node of every bound Cellar claim it mounts (csi/placement.h decides, the
// Kubernetes API says who owns what), so the scheduler puts the pod beside its data
// when it can, and on a peering node only when it must. It never refuses a pod: any
// failure answers allowed, without a patch, and is logged.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "common/status.h"
#include "node/https_server.h"
#include "node/kube_api.h"

namespace cellar::node {

struct WebhookOptions {
  std::string listen = ":8443";
  std::filesystem::path tls_dir;  // tls.crt, tls.key
  std::string driver_name;
  KubeApiOptions api;
  // What one review may spend on API lookups; the API server waits 2 s
  // (timeoutSeconds in the MutatingWebhookConfiguration) before it gives up.
  std::chrono::milliseconds budget{1500};
};

// The largest review read (413 beyond). A pod over etcd's default request limit
// (1.5 MiB) could not be stored anyway; yaml-cpp's tree of a 2 MiB review takes ~130 MB.
inline constexpr size_t kMaxReviewBytes = 2 * 1024 * 1024;
// Reviews larger than this are parsed one at a time, so that a burst of them cannot
// multiply that memory (the Deployment's limit is 256 MiB); a usual pod is ~10 KiB.
inline constexpr size_t kLargeReviewBytes = 256 * 1024;

class PlacementWebhook {
 public:
  PlacementWebhook(std::string driver_name, KubeApi api, std::chrono::milliseconds budget);

  // Routes POST /mutate and GET /healthz; 404 and 405 otherwise.
  HttpResponse Handle(const HttpRequest& request);

  // The AdmissionReview (admission.k8s.io/v1) answering `body`: the request's uid,
  // allowed, and the patch if the pod needs one. InvalidArgument when `body` is not an
  // AdmissionReview with a request uid (answered 400).
  Result<std::string> Review(const std::string& body);

 private:
  Result<std::optional<std::string>> OwnerOfClaim(const std::string& ns, const std::string& claim,
                                                  Deadline deadline);

  const std::string driver_name_;
  const KubeApi api_;
  const std::chrono::milliseconds budget_;
  // PV name -> owner node, or nullopt for a PV of another driver. A bound PV's driver
  // and volume attributes never change, so entries never go stale; only the size is
  // bounded (cleared when full).
  std::mutex mu_;
  std::map<std::string, std::optional<std::string>> owners_;  // guarded by mu_
  std::mutex large_review_;  // held while a review over kLargeReviewBytes is handled
};

// Serves the webhook on options.listen until SIGTERM or SIGINT. Errors: InvalidArgument
// (flags, certificate), Unavailable (cannot listen).
Status RunWebhook(const WebhookOptions& options);

}  // namespace cellar::node
