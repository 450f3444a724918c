// cellar: the Cellar CSI node plugin, and the small helpers its pod runs beside it.
//
//   cellar node --endpoint unix:///csi/csi.sock --node-id NAME --state-dir DIR --capacity 8Gi
//   cellar fd-holder --socket /run/cellar-holder/holder.sock
//   cellar peer-relay --listen 10.0.0.5:7443 --to /var/lib/cellar/<ns>/<name>/peer.sock
//   cellar registrar --csi-address /csi/csi.sock --kubelet-registration-path HOST_PATH [--check]
//   cellar probe --endpoint unix:///csi/csi.sock --timeout 4s
//   cellar status --endpoint unix:///csi/csi.sock [--json]
//   cellar webhook --listen=:8443 --tls-dir=DIR --driver-name=NAME
#include <cstdlib>
#include <iostream>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "common/logging.h"
#include "common/size.h"
#include "csi/driver.h"
#include "csi/local_client.h"
#include "csi/metrics_server.h"
#include "csi/registrar.h"
#include "csi/status_format.h"
#include "node/fd_holder.h"
#include "node/peer_relay.h"
#include "node/server.h"
#include "node/webhook.h"

#ifndef CELLAR_VERSION
#define CELLAR_VERSION "dev"
#endif

namespace {

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

// The node a client subcommand (probe, status) talks to: --endpoint, else
// $CSI_ENDPOINT, and how long it waits. InvalidArgument naming the flag otherwise.
struct ClientTarget {
  std::filesystem::path socket;
  std::chrono::milliseconds timeout;
};

cellar::Result<ClientTarget> ClientTargetOf(std::string endpoint, const std::string& timeout) {
  if (endpoint.empty()) endpoint = EnvOr("CSI_ENDPOINT", "");
  if (endpoint.empty()) {
    return cellar::InvalidArgument("no endpoint: pass --endpoint or set CSI_ENDPOINT");
  }
  auto socket = cellar::csi::ParseSocketAddress(endpoint);
  if (!socket.ok()) return cellar::InvalidArgument("--endpoint: " + socket.status().message());
  auto wait = cellar::csi::ParseDuration(timeout);
  if (!wait.ok()) return cellar::InvalidArgument("--timeout: " + wait.status().message());
  return ClientTarget{*socket, *wait};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Cellar: pipeline data in the node's shared memory, as a CSI driver", "cellar"};
  app.set_version_flag("--version", std::string("cellar ") + CELLAR_VERSION);
  app.require_subcommand(1);

  cellar::node::NodeOptions options;
  options.driver_name = cellar::csi::kDefaultDriverName;
  std::string capacity = "1Gi";
  std::string log_level = "info";
  std::string state_dir = "/var/lib/cellar";
  bool no_passthrough = false;
  bool no_fuse = false;

  CLI::App* node =
      app.add_subcommand("node", "Serve the CSI Identity, Controller and Node services");
  node->add_option("--endpoint", options.endpoint,
                   "CSI socket, unix:///path/csi.sock (default: $CSI_ENDPOINT)");
  node->add_option("--node-id", options.node_id, "This node's name (default: $NODE_NAME)");
  node->add_option("--state-dir", state_dir, "Where arenas, the FUSE mount and the journal live")
      ->capture_default_str();
  node->add_option("--capacity", capacity,
                   "Memory the node may hand out to volumes: 8Gi, 512Mi, or bytes")
      ->capture_default_str();
  node->add_option("--max-volumes", options.max_volumes, "Volumes this node may hold")
      ->capture_default_str()
      ->check(CLI::Range(1u, 65535u));
  node->add_option("--driver-name", options.driver_name,
                   "CSI driver name; distinct per deployment in one cluster")
      ->capture_default_str();
  node->add_option("--log-level", log_level, "trace, debug, info, warn or error")
      ->capture_default_str();
  std::string log_format = "text";
  node->add_option("--log-format", log_format,
                   "text, or json: one JSON object per line (time, level, msg) for log pipelines")
      ->capture_default_str();
  node->add_option("--metrics-address", options.metrics_address,
                   "Serve Prometheus metrics at http://ADDRESS/metrics: HOST:PORT, :PORT or "
                   "PORT (e.g. :9808). Default: not served");
  std::string io_mode = "auto";
  node->add_option("--io-mode", io_mode,
                   "How pods' reads, writes and mmap are served. auto: FUSE passthrough if the "
                   "kernel grants it at FUSE_INIT (Linux >= 6.9), else direct. passthrough: "
                   "FUSE passthrough or fail. fuse: the daemon serves every read and write. "
                   "direct: the volume's tmpfs arena is bind-mounted, tmpfs speed on any kernel")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "passthrough", "fuse", "direct"}));
  node->add_flag("--no-passthrough", no_passthrough, "Same as --io-mode=fuse");
  node->add_flag("--no-fuse", no_fuse, "Same as --io-mode=direct");
  std::string fd_holder;
  node->add_option("--fd-holder", fd_holder,
                   "Socket of a `cellar fd-holder` that keeps the FUSE connection alive across a "
                   "crash of this process (default: $CELLAR_FD_HOLDER; none if unset)");
  std::string handover_socket;
  node->add_option("--handover-socket", handover_socket,
                   "Where a newer cellar node asks this one to hand over (default: "
                   "<state-dir>/handover.sock)");
  std::string after_handover = "exit";
  node->add_option("--after-handover", after_handover,
                   "After handing over to a newer process: exit, or wait for SIGTERM")
      ->capture_default_str()
      ->check(CLI::IsMember({"exit", "wait"}));

  node->add_option("--peer-listen", options.peer.listen,
                   "Serve this node's volumes to the other Cellar nodes at HOST:PORT (mutual "
                   "TLS; needs --peer-tls-dir). Default: not served");
  node->add_option("--peer-advertise", options.peer.advertise,
                   "HOST:PORT the other nodes dial (default: --peer-listen; required when that "
                   "listens on a wildcard address)");
  std::string peer_tls_dir;
  node->add_option("--peer-tls-dir", peer_tls_dir,
                   "Directory with ca.crt, tls.crt and tls.key (the cluster's Cellar CA and this "
                   "node's certificate): needed to serve peers and to publish volumes held by "
                   "other nodes. Default: no cross-node reads");

  std::string relay_listen;
  std::string relay_target;
  std::string relay_log_level = "info";
  CLI::App* relay =
      app.add_subcommand("peer-relay",
                         "Carry other nodes' connections to this node's peer socket (the plugin's "
                         "--peer-listen=unix://...), from the node's own address");
  relay->add_option("--listen", relay_listen, "HOST:PORT to accept on, e.g. 10.0.0.5:7443")
      ->required();
  relay->add_option("--to", relay_target, "The unix socket `cellar node` serves peers on")
      ->required();
  relay->add_option("--log-level", relay_log_level, "trace, debug, info, warn or error")
      ->capture_default_str();

  std::string holder_socket;
  std::string holder_log_level = "info";
  CLI::App* holder =
      app.add_subcommand("fd-holder",
                         "Hold the FUSE connection's files so that pods' mounts outlive a crash of "
                         "`cellar node`");
  holder->add_option("--socket", holder_socket, "The unix socket to serve")->required();
  holder->add_option("--log-level", holder_log_level, "trace, debug, info, warn or error")
      ->capture_default_str();

  std::string reg_csi_address;
  cellar::csi::RegistrarOptions reg_options;
  std::string reg_dir = reg_options.registration_dir.string();
  std::string reg_timeout = "5s";
  std::string reg_log_level = "info";
  bool reg_check = false;
  CLI::App* registrar =
      app.add_subcommand("registrar",
                         "Register the driver with the kubelet (plugin registration), as "
                         "kubernetes-csi's node-driver-registrar does");
  registrar->add_option("--csi-address", reg_csi_address,
                        "The driver's CSI socket as this container sees it: /csi/csi.sock or "
                        "unix:///csi/csi.sock (default: $ADDRESS)");
  registrar->add_option("--kubelet-registration-path", reg_options.kubelet_registration_path,
                        "The same socket as the kubelet sees it on the host, "
                        "/var/lib/kubelet/plugins/<driver>/csi.sock "
                        "(default: $DRIVER_REG_SOCK_PATH)");
  registrar
      ->add_option("--plugin-registration-path", reg_dir,
                   "Where the kubelet's plugins_registry directory is mounted; the socket "
                   "served is <this>/<driver>-reg.sock")
      ->capture_default_str();
  registrar
      ->add_option("--timeout", reg_timeout,
                   "How long one GetPluginInfo call, or the whole --check, may take: "
                   "5s, 500ms")
      ->capture_default_str();
  registrar->add_option("--log-level", reg_log_level, "trace, debug, info, warn or error")
      ->capture_default_str();
  registrar->add_flag("--check", reg_check,
                      "Do not register: exit 0 if a registration socket answers GetInfo for "
                      "--kubelet-registration-path within --timeout, 1 if none does (2 or more: "
                      "bad arguments). An exec liveness probe");

  std::string probe_endpoint;
  std::string probe_timeout = "4s";
  CLI::App* probe = app.add_subcommand(
      "probe",
      "Call the driver's Probe once: exit 0 if it answers ready within --timeout, 1 if not "
      "(2 or more: bad arguments). For exec liveness and readiness probes");
  probe->add_option("--endpoint", probe_endpoint,
                    "CSI socket, unix:///path/csi.sock (default: $CSI_ENDPOINT)");
  probe->add_option("--timeout", probe_timeout, "How long to wait for the answer: 4s, 500ms")
      ->capture_default_str();

  std::string status_endpoint;
  std::string status_timeout = "10s";
  bool status_json = false;
  CLI::App* status =
      app.add_subcommand("status",
                         "Ask the running cellar node what it holds: volumes, their size, use and "
                         "publications, the io mode and health (exit 1 if it cannot be reached)");
  status->add_option("--endpoint", status_endpoint,
                     "CSI socket of the node, unix:///path/csi.sock (default: $CSI_ENDPOINT)");
  status->add_option("--timeout", status_timeout, "How long to wait for the answer: 10s, 500ms")
      ->capture_default_str();
  status->add_flag("--json", status_json,
                   "Print the report as JSON (cellar_admin.proto's NodeStatus)");

  cellar::node::WebhookOptions webhook_options;
  webhook_options.driver_name = cellar::csi::kDefaultDriverName;
  std::string webhook_tls_dir;
  std::string webhook_log_level = "info";
  std::string api_timeout = "1s";
  CLI::App* webhook = app.add_subcommand(
      "webhook",
      "Serve the mutating admission webhook that makes pods of Cellar claims prefer the node "
      "holding their data (HTTPS: POST /mutate, GET /healthz)");
  webhook->add_option("--listen", webhook_options.listen, "HOST:PORT or :PORT to serve HTTPS on")
      ->capture_default_str();
  webhook->add_option("--tls-dir", webhook_tls_dir, "Directory with tls.crt and tls.key")
      ->required();
  webhook
      ->add_option("--driver-name", webhook_options.driver_name,
                   "The Cellar driver whose volumes get a preference")
      ->capture_default_str();
  webhook->add_option("--log-level", webhook_log_level, "trace, debug, info, warn or error")
      ->capture_default_str();
  webhook->add_option("--api-server", webhook_options.api.server,
                      "Kubernetes API URL, https://HOST:PORT (default: "
                      "https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)");
  webhook->add_option("--api-ca", webhook_options.api.ca_file,
                      "CA of the API server (default: the service account's ca.crt)");
  webhook->add_option("--api-token-file", webhook_options.api.token_file,
                      "Bearer token, read again for every request (default: the service "
                      "account's token)");
  webhook->add_option("--api-timeout", api_timeout, "Timeout of one API request: 1s, 500ms")
      ->capture_default_str();

  CLI11_PARSE(app, argc, argv);

  if (webhook->parsed()) {
    if (cellar::Status st = cellar::SetLogLevel(webhook_log_level); !st.ok()) {
      std::cerr << "cellar webhook: " << st.message() << "\n";
      return 2;
    }
    auto timeout = cellar::csi::ParseDuration(api_timeout);
    if (!timeout.ok()) {
      std::cerr << "cellar webhook: --api-timeout: " << timeout.status().message() << "\n";
      return 2;
    }
    webhook_options.api.timeout = *timeout;
    webhook_options.tls_dir = std::filesystem::absolute(webhook_tls_dir);
    cellar::Status st = cellar::node::RunWebhook(webhook_options);
    if (!st.ok()) {
      spdlog::error("cellar webhook: {}", st.message());
      return st.code() == cellar::Code::kInvalidArgument ? 2 : 1;
    }
    return 0;
  }

  if (status->parsed()) {
    auto target = ClientTargetOf(status_endpoint, status_timeout);
    if (!target.ok()) {
      std::cerr << "cellar status: " << target.status().message() << "\n";
      return 2;
    }
    auto report = cellar::csi::NodeStatusOf(target->socket, target->timeout);
    if (!report.ok()) {
      std::cerr << "cellar status: " << report.status().message() << "\n";
      return 1;
    }
    if (!status_json) {
      std::cout << cellar::csi::FormatStatusText(*report);
      return 0;
    }
    auto json = cellar::csi::FormatStatusJson(*report);
    if (!json.ok()) {
      std::cerr << "cellar status: " << json.status().message() << "\n";
      return 1;
    }
    std::cout << *json;
    return 0;
  }

  if (probe->parsed()) {
    auto target = ClientTargetOf(probe_endpoint, probe_timeout);
    if (!target.ok()) {
      std::cerr << "cellar probe: " << target.status().message() << "\n";
      return 2;
    }
    cellar::Status st = cellar::csi::ProbeDriver(target->socket, target->timeout);
    if (!st.ok()) {
      std::cerr << "cellar probe: not ready: " << st.message() << "\n";
      return 1;
    }
    std::cout << "cellar probe: " << target->socket.string() << " is ready\n";
    return 0;
  }

  if (registrar->parsed()) {
    if (cellar::Status st = cellar::SetLogLevel(reg_log_level); !st.ok()) {
      std::cerr << "cellar registrar: " << st.message() << "\n";
      return 2;
    }
    if (reg_csi_address.empty()) reg_csi_address = EnvOr("ADDRESS", "");
    if (reg_options.kubelet_registration_path.empty()) {
      reg_options.kubelet_registration_path = EnvOr("DRIVER_REG_SOCK_PATH", "");
    }
    reg_options.registration_dir = reg_dir;
    auto timeout = cellar::csi::ParseDuration(reg_timeout);
    if (!timeout.ok()) {
      std::cerr << "cellar registrar: --timeout: " << timeout.status().message() << "\n";
      return 2;
    }
    reg_options.timeout = *timeout;
    if (reg_check) {
      cellar::Status st = cellar::csi::CheckRegistration(reg_options);
      if (!st.ok()) {
        std::cerr << "cellar registrar --check: " << st.message() << "\n";
        return st.code() == cellar::Code::kInvalidArgument ? 2 : 1;
      }
      return 0;
    }
    if (reg_csi_address.empty()) {
      std::cerr << "cellar registrar: no CSI socket: pass --csi-address or set ADDRESS\n";
      return 2;
    }
    auto socket = cellar::csi::ParseSocketAddress(reg_csi_address);
    if (!socket.ok()) {
      std::cerr << "cellar registrar: --csi-address: " << socket.status().message() << "\n";
      return 2;
    }
    reg_options.csi_socket = *socket;
    cellar::Status st = cellar::csi::RunRegistrar(reg_options);
    if (!st.ok()) {
      spdlog::error("cellar registrar: {}", st.message());
      return st.code() == cellar::Code::kInvalidArgument ? 2 : 1;
    }
    return 0;
  }

  if (relay->parsed()) {
    if (cellar::Status st = cellar::SetLogLevel(relay_log_level); !st.ok()) {
      std::cerr << "cellar: " << st.message() << "\n";
      return 2;
    }
    cellar::Status st = cellar::node::RunPeerRelayCommand(relay_listen, relay_target);
    if (!st.ok()) {
      spdlog::error("cellar peer-relay: {}", st.message());
      return 1;
    }
    return 0;
  }

  if (holder->parsed()) {
    if (cellar::Status st = cellar::SetLogLevel(holder_log_level); !st.ok()) {
      std::cerr << "cellar: " << st.message() << "\n";
      return 2;
    }
    cellar::Status st = cellar::node::RunFdHolder(std::filesystem::absolute(holder_socket));
    if (!st.ok()) {
      spdlog::error("cellar fd-holder: {}", st.message());
      return 1;
    }
    return 0;
  }

  if (cellar::Status st = cellar::SetLogLevel(log_level); !st.ok()) {
    std::cerr << "cellar: " << st.message() << "\n";
    return 2;
  }
  if (cellar::Status st = cellar::SetLogFormat(log_format); !st.ok()) {
    std::cerr << "cellar: --log-format: " << st.message() << "\n";
    return 2;
  }
  if (!options.metrics_address.empty()) {
    if (auto parsed = cellar::csi::ParseMetricsAddress(options.metrics_address); !parsed.ok()) {
      std::cerr << "cellar: --metrics-address: " << parsed.status().message() << "\n";
      return 2;
    }
  }
  if (options.endpoint.empty()) options.endpoint = EnvOr("CSI_ENDPOINT", "");
  if (options.node_id.empty()) options.node_id = EnvOr("NODE_NAME", "");
  if (options.endpoint.empty()) {
    std::cerr << "cellar: no endpoint: pass --endpoint or set CSI_ENDPOINT\n";
    return 2;
  }
  auto bytes = cellar::ParseSize(capacity);
  if (!bytes.ok()) {
    std::cerr << "cellar: --capacity: " << bytes.status().message() << "\n";
    return 2;
  }
  options.capacity_bytes = *bytes;
  options.state_dir = std::filesystem::absolute(state_dir);
  if (!peer_tls_dir.empty()) options.peer.tls_dir = std::filesystem::absolute(peer_tls_dir);
  if (no_fuse) io_mode = "direct";
  if (no_passthrough) io_mode = "fuse";
  options.io_mode = *cellar::csi::ParseIoMode(io_mode);  // checked by CLI11 above
  if (fd_holder.empty()) fd_holder = EnvOr("CELLAR_FD_HOLDER", "");
  if (!fd_holder.empty()) options.fd_holder = std::filesystem::absolute(fd_holder);
  if (!handover_socket.empty())
    options.handover_socket = std::filesystem::absolute(handover_socket);
  options.exit_after_handover = after_handover == "exit";

  cellar::Status st = cellar::node::RunNode(options);
  if (!st.ok()) {
    spdlog::error("cellar node: {}", st.message());
    return 1;
  }
  return 0;
}
