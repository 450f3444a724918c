// A GET-only client of the Kubernetes API, as a pod reaches it from inside the cluster:
// https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, the service account's CA and
// bearer token. The token file is read again for every request (bound tokens rotate;
// the kubelet rewrites the file). Each request opens its own connection: the webhook
// asks rarely, and a stale keep-alive connection is a failure mode it can do without.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "common/status.h"
#include "node/tls_stream.h"

namespace cellar::node {

inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

struct KubeApiOptions {
  std::string server;             // https://HOST:PORT; empty: from $KUBERNETES_SERVICE_HOST/_PORT
  std::filesystem::path ca_file;  // empty: <kServiceAccountDir>/ca.crt
  std::filesystem::path token_file;         // empty: <kServiceAccountDir>/token
  std::chrono::milliseconds timeout{1000};  // per request, connection included
};

class KubeApi {
 public:
  // Resolves the defaults and loads the CA. Errors: InvalidArgument (no server known, a
  // URL that is not https://HOST[:PORT], an unreadable CA).
  static Result<KubeApi> Create(KubeApiOptions options);

  // GET `path` (e.g. /api/v1/persistentvolumes/pv-1): the JSON body of a 200 answer.
  // Finishes by `deadline` or by the per-request timeout, whichever is first.
  // Errors: NotFound (404), PermissionDenied (401, 403), Unavailable (connection, TLS,
  // another status), DeadlineExceeded, FailedPrecondition (unreadable token file).
  Result<std::string> Get(const std::string& path, Deadline deadline) const;

  const std::string& server() const { return server_; }

 private:
  KubeApi() = default;
  std::string server_;  // for messages
  std::string host_;
  std::string port_;
  std::filesystem::path token_file_;
  std::chrono::milliseconds timeout_{1000};
  std::shared_ptr<SSL_CTX> ctx_;  // shared: a KubeApi is copied into the lookup
};

// "/api/v1/namespaces/NS/persistentvolumeclaims/NAME" with the segments escaped.
std::string ClaimPath(const std::string& ns, const std::string& name);
std::string VolumePath(const std::string& name);

}  // namespace cellar::node
