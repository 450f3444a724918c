#include "node/peer_credentials.h"

#include <fstream>
#include <sstream>

namespace cellar::node {

namespace {

Result<std::string> ReadPem(const std::filesystem::path& dir, const char* name) {
  std::filesystem::path path = dir / name;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return Error(Code::kInvalidArgument,
                 "peer TLS: {} is missing (--peer-tls-dir needs ca.crt, "
                 "tls.crt and tls.key)",
                 path.string());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::FromErrno(errno, "peer TLS: cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().empty()) {
    return Error(Code::kInvalidArgument, "peer TLS: {} is empty", path.string());
  }
  if (text.str().find("-----BEGIN ") == std::string::npos) {
    return Error(Code::kInvalidArgument, "peer TLS: {} is not PEM", path.string());
  }
  return text.str();
}

}  // namespace

Result<PeerCredentials> LoadPeerCredentials(const std::filesystem::path& dir) {
  PeerCredentials c;
  c.dir = dir;
  ASSIGN_OR_RETURN(c.ca_pem, ReadPem(dir, "ca.crt"));
  ASSIGN_OR_RETURN(c.cert_pem, ReadPem(dir, "tls.crt"));
  ASSIGN_OR_RETURN(c.key_pem, ReadPem(dir, "tls.key"));
  return c;
}

std::shared_ptr<grpc::ServerCredentials> PeerServerCredentials(const PeerCredentials& c) {
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = c.ca_pem;
  options.pem_key_cert_pairs.push_back({c.key_pem, c.cert_pem});
  return grpc::SslServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> PeerChannelCredentials(const PeerCredentials& c) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = c.ca_pem;
  options.pem_private_key = c.key_pem;
  options.pem_cert_chain = c.cert_pem;
  return grpc::SslCredentials(options);
}

}  // namespace cellar::node
