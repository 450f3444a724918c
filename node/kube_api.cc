#include "node/kube_api.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/tcp_listen.h"
#include "node/http_message.h"

namespace cellar::node {

namespace {

std::string EnvOr(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

// A path segment: object names are DNS subdomains, but nothing here may trust that.
std::string Segment(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

Result<std::string> ReadToken(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) {
    return Status(Code::kFailedPrecondition, "cannot read token " + file.string());
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string token = ss.str();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) {
    token.pop_back();
  }
  if (token.empty())
    return Status(Code::kFailedPrecondition, "token " + file.string() + " is empty");
  return token;
}

}  // namespace

std::string ClaimPath(const std::string& ns, const std::string& name) {
  return "/api/v1/namespaces/" + Segment(ns) + "/persistentvolumeclaims/" + Segment(name);
}

std::string VolumePath(const std::string& name) {
  return "/api/v1/persistentvolumes/" + Segment(name);
}

Result<KubeApi> KubeApi::Create(KubeApiOptions options) {
  KubeApi api;
  std::string server = options.server;
  if (server.empty()) {
    std::string host = EnvOr("KUBERNETES_SERVICE_HOST");
    std::string port = EnvOr("KUBERNETES_SERVICE_PORT");
    if (host.empty()) {
      return InvalidArgument(
          "no API server: not in a pod ($KUBERNETES_SERVICE_HOST unset); pass --api-server");
    }
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    server = "https://" + host + ":" + (port.empty() ? "443" : port);
  }
  const std::string scheme = "https://";
  if (server.rfind(scheme, 0) != 0) {
    return InvalidArgument("API server \"" + server + "\" is not an https:// URL");
  }
  std::string authority = server.substr(scheme.size());
  while (!authority.empty() && authority.back() == '/') authority.pop_back();
  if (authority.empty() || authority.find('/') != std::string::npos) {
    return InvalidArgument("API server \"" + server + "\": want https://HOST[:PORT]");
  }
  // The port is optional in a URL; ParseHostPort wants one.
  const size_t bracket = authority.rfind(']');
  const size_t colon = authority.rfind(':');
  if (colon == std::string::npos || (bracket != std::string::npos && colon < bracket)) {
    authority += ":443";
  }
  ASSIGN_OR_RETURN(HostPort at,
                   ParseHostPort("--api-server", authority, {.example = "https://10.96.0.1:443"}));
  api.host_ = Unbracketed(at.host);
  api.port_ = std::to_string(at.port);
  if (api.host_.empty()) return InvalidArgument("API server \"" + server + "\" has no host");
  api.server_ = server;
  std::filesystem::path dir = kServiceAccountDir;
  api.token_file_ = options.token_file.empty() ? dir / "token" : options.token_file;
  api.timeout_ = options.timeout;
  auto ctx = ClientTlsContext(options.ca_file.empty() ? dir / "ca.crt" : options.ca_file);
  if (!ctx.ok()) return ctx.status();
  api.ctx_ = std::shared_ptr<SSL_CTX>(std::move(*ctx));
  return api;
}

Result<std::string> KubeApi::Get(const std::string& path, Deadline deadline) const {
  deadline = std::min(deadline, std::chrono::steady_clock::now() + timeout_);
  ASSIGN_OR_RETURN(std::string token, ReadToken(token_file_));
  const std::string what = "GET " + server_ + path;
  auto fd = ConnectTcp(host_, port_, deadline);
  if (!fd.ok()) return fd.status().WithContext(what);
  auto stream = TlsStream::Connect(ctx_.get(), std::move(*fd), host_, deadline);
  if (!stream.ok()) return stream.status().WithContext(what);
  const bool v6 = host_.find(':') != std::string::npos;
  std::string request = fmt::format(
      "GET {} HTTP/1.1\r\nHost: {}{}{}:{}\r\nAuthorization: Bearer {}\r\n"
      "Accept: application/json\r\nUser-Agent: cellar-webhook\r\nConnection: close\r\n\r\n",
      path, v6 ? "[" : "", host_, v6 ? "]" : "", port_, token);
  if (Status st = stream->WriteAll(request, deadline); !st.ok()) return st.WithContext(what);
  std::string buffered;
  auto msg =
      ReadHttpMessage(*stream, buffered, HttpLimits{64 * 1024, 16 * 1024 * 1024}, true, deadline);
  if (!msg.ok()) return msg.status().WithContext(what);
  const std::string& line = msg->head.start_line;
  int status = 0;
  if (line.rfind("HTTP/1.", 0) == 0 && line.size() >= 12) status = std::atoi(line.c_str() + 9);
  switch (status) {
    case 200: return std::move(msg->body);
    case 404: return NotFound(what + ": 404 not found");
    case 401:
    case 403:
      return Status(Code::kPermissionDenied,
                    fmt::format("{}: {}: {}", what, status, msg->body.substr(0, 300)));
    default:
      return Error(Code::kUnavailable, "{}: answered \"{}\": {}", what, line,
                   msg->body.substr(0, 300));
  }
}

}  // namespace cellar::node
