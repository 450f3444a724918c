#!/usr/bin/env bash
# A single-node Kubernetes on this machine, from upstream components built by
# build-components.sh and Debian's containerd, runc and CNI plugins:
#
#   tests/cluster/cluster.sh up       # builds what is missing, starts it all, waits for Ready
#   tests/cluster/cluster.sh down     # stops it all and puts the machine back as it was
#   tests/cluster/cluster.sh env      # prints KUBECONFIG=... for the running cluster
#
# Everything but the mount namespace is the cluster's own: etcd, the control plane,
# containerd, the kubelet and kube-proxy run in the network namespace $NETNS, joined to
# the host by one veth pair, so kube-proxy's and CNI's iptables rules, the pod bridge and
# every pod's veth vanish with it. The kubelet shares the host's mount namespace (it
# must: that is where Cellar's arenas live), so /var/lib/kubelet and /var/lib/cellar are
# made shared mounts for Bidirectional propagation by bind-mounting each onto itself;
# the rest of the machine keeps its propagation. `down` restores the host sysctls the
# kubelet rewrites, removes the kubelet's cgroups, unmounts and removes what `up` made.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/versions.env"

NETNS=cellar-k8s
NODE_NAME=cellar-node
HOST_IP=10.251.0.1          # host end of the veth pair
NODE_IP=10.251.0.2          # the node's InternalIP and the API server's address
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/24
API_SERVICE_IP=10.96.0.1
CACHE=${CELLAR_CLUSTER_CACHE:-/var/cache/cellar-cluster}
STATE=/var/lib/cellar-cluster   # this cluster's etcd, certificates and logs; wiped by down
RUN=/run/cellar-cluster
CONTAINERD_ROOT=$CACHE/containerd  # images survive between runs; containers do not
CONTAINERD_SOCK=$RUN/containerd.sock
KUBELET_DIR=/var/lib/kubelet    # the manifests name it: it cannot move
CELLAR_DIR=/var/lib/cellar      # the deployments' state directories (settings.yaml)
# Host sysctls the kubelet sets for itself; saved at up, restored at down.
KUBELET_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

log() { echo "cluster: $*"; }
die() { echo "cluster: $*" >&2; exit 1; }
# Only the network namespace: `ip netns exec` would also unshare the mount namespace and
# remount /sys, hiding the cgroup mounts and the host's mount tree from the kubelet.
in_ns() { nsenter --net="/run/netns/$NETNS" "$@"; }

bin_dir() { echo "$CACHE/bin-$KUBERNETES_VERSION"; }
kubectl() { "$(bin_dir)/kubectl" --kubeconfig "$STATE/admin.kubeconfig" "$@"; }

# ------------------------------------------------------------------ preflight
preflight() {
  [ "$(id -u)" = 0 ] || die "needs root (network namespace, mounts, containerd)"
  local missing=()
  for c in containerd runc ip iptables openssl conntrack; do
    command -v "$c" >/dev/null || missing+=("$c")
  done
  [ -x /usr/lib/cni/bridge ] || missing+=("/usr/lib/cni/bridge (containernetworking-plugins)")
  ((${#missing[@]} == 0)) || die "missing: ${missing[*]} (run tests/cluster/install-deps.sh)"
  [ -d /sys/fs/cgroup/memory ] || die "no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory: \
Kubernetes $KUBERNETES_VERSION is configured here for cgroup v1 with the cgroupfs driver"
  ! ip netns list | grep -qw "$NETNS" || die "network namespace $NETNS exists: run '$0 down' first"
}

# ------------------------------------------------------------------ certificates
# One CA signs the API server's serving certificate and every client's certificate.
pki() {
  local d=$STATE/pki
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=cellar-cluster-ca" \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  cert apiserver "/CN=kube-apiserver" \
    "subjectAltName=IP:$NODE_IP,IP:$API_SERVICE_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin "/O=system:masters/CN=cellar-cluster-admin"
  cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  cert kubelet-serving "/CN=$NODE_NAME" "subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME"
  cert controller-manager "/CN=system:kube-controller-manager"
  cert scheduler "/CN=system:kube-scheduler"
  cert kube-proxy "/CN=system:kube-proxy"
  for who in admin kubelet controller-manager scheduler kube-proxy; do
    kubeconfig "$who"
  done
}

# cert NAME SUBJECT [EXTENSION]: a key and a certificate signed by the CA.
cert() {
  local d=$STATE/pki name=$1 subject=$2 ext=${3:-}
  openssl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$d/$name.key" \
    -out "$d/$name.csr" 2>/dev/null
  local extfile=$d/$name.ext
  { echo "basicConstraints=CA:FALSE"; [ -n "$ext" ] && echo "$ext"; } > "$extfile"
  openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 30 -extfile "$extfile" -out "$d/$name.crt" 2>/dev/null
  rm -f "$d/$name.csr" "$extfile"
}

kubeconfig() {
  local who=$1 d=$STATE/pki
  cat > "$STATE/$who.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: cellar
  cluster:
    certificate-authority: $d/ca.crt
    server: https://$NODE_IP:6443
users:
- name: $who
  user:
    client-certificate: $d/$who.crt
    client-key: $d/$who.key
contexts:
- name: cellar
  context: {cluster: cellar, user: $who}
current-context: cellar
EOF
}

# ------------------------------------------------------------------ network
network_up() {
  # `ip netns add` makes /run/netns a mount point the first time; down undoes that.
  mountpoint -q /run/netns || echo /run/netns >> "$STATE/bind-mounts"
  [ -d /run/netns ] || echo /run/netns >> "$STATE/created-dirs"
  ip netns add "$NETNS"
  ip link add cellar-k8s0 type veth peer name eth0 netns "$NETNS"
  ip addr add "$HOST_IP/30" dev cellar-k8s0
  ip link set cellar-k8s0 up
  in_ns ip link set lo up
  in_ns ip addr add "$NODE_IP/30" dev eth0
  in_ns ip link set eth0 up
  # Services resolve to the node through kube-proxy; pods reach them through the bridge.
  in_ns ip route add default via "$HOST_IP"
  in_ns sysctl -qw net.ipv4.ip_forward=1
  mkdir -p "$STATE/cni"
  cat > "$STATE/cni/10-cellar.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "cellar-pods",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
     "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

# ------------------------------------------------------------------ mounts
# make_shared DIR: DIR becomes a shared mount of its own (a bind onto itself), so
# Bidirectional mounts below it reach the host. Records what it made for down.
make_shared() {
  local dir=$1
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir"
    echo "$dir" >> "$STATE/created-dirs"
  fi
  if ! mountpoint -q "$dir"; then
    mount --bind "$dir" "$dir"
    echo "$dir" >> "$STATE/bind-mounts"
  fi
  mount --make-rshared "$dir"
}

# ------------------------------------------------------------------ processes
# start NAME COMMAND...: runs it in the cluster's network namespace, logging to
# $STATE/logs/NAME.log, and records its pid.
start() {
  local name=$1; shift
  # The process writes its own pid: setsid forks when the caller runs with job control,
  # so $! would name a parent that has already exited.
  in_ns setsid sh -c 'echo $$ > "$0"; exec "$@"' "$RUN/$name.pid" "$@" \
    > "$STATE/logs/$name.log" 2>&1 < /dev/null &
  local deadline=$((SECONDS + 5))
  until [ -s "$RUN/$name.pid" ] || ((SECONDS >= deadline)); do sleep 0.05; done
}

# wait_for WHAT SECONDS COMMAND...: polls until COMMAND succeeds; on time-out prints
# the log named by $log_of (if set) and fails.
wait_for() {
  local what=$1 limit=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "cluster: $what not ready after ${limit}s" >&2
      [ -n "${log_of:-}" ] && tail -30 "$STATE/logs/$log_of.log" >&2
      return 1
    fi
    sleep 0.5
  done
}

containerd_up() {
  mkdir -p "$CONTAINERD_ROOT" "$RUN/containerd"
  cat > "$STATE/containerd.toml" <<EOF
version = 2
root = "$CONTAINERD_ROOT"
state = "$RUN/containerd"
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  # This VM's root lacks CAP_SYS_RESOURCE: containerd may only raise oom_score_adj.
  restrict_oom_score_adj = true
  enable_unprivileged_ports = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # PID 1 is not systemd here: the cgroupfs driver, as the kubelet's.
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni"
EOF
  log_of=containerd start containerd containerd --config "$STATE/containerd.toml"
  log_of=containerd wait_for containerd 30 ctr --address "$CONTAINERD_SOCK" version
}

control_plane_up() {
  local b; b=$(bin_dir) d=$STATE/pki
  mkdir -p "$STATE/etcd"
  start etcd "$b/etcd" --name "$NODE_NAME" --data-dir "$STATE/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster "$NODE_NAME=http://127.0.0.1:2380" --log-level warn
  start kube-apiserver "$b/kube-apiserver" \
    --etcd-servers http://127.0.0.1:2379 \
    --advertise-address "$NODE_IP" --bind-address 0.0.0.0 --secure-port 6443 \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --client-ca-file "$d/ca.crt" --tls-cert-file "$d/apiserver.crt" \
    --tls-private-key-file "$d/apiserver.key" \
    --kubelet-client-certificate "$d/admin.crt" --kubelet-client-key "$d/admin.key" \
    --kubelet-certificate-authority "$d/ca.crt" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-key-file "$d/sa.pub" --service-account-signing-key-file "$d/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --authorization-mode Node,RBAC --allow-privileged=true \
    --enable-admission-plugins NodeRestriction --v 1
  log_of=kube-apiserver wait_for "the API server" 120 kubectl get --raw /readyz
  start kube-controller-manager "$b/kube-controller-manager" \
    --kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --service-account-private-key-file "$d/sa.key" --root-ca-file "$d/ca.crt" \
    --cluster-signing-cert-file "$d/ca.crt" --cluster-signing-key-file "$d/ca.key" \
    --use-service-account-credentials --leader-elect=false \
    --bind-address 127.0.0.1 --v 1
  start kube-scheduler "$b/kube-scheduler" --kubeconfig "$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1 --v 1
}

node_up() {
  local b; b=$(bin_dir) d=$STATE/pki
  cat > "$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
failSwapOn: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $d/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $d/kubelet-serving.crt
tlsPrivateKeyFile: $d/kubelet-serving.key
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
podCIDR: $POD_CIDR
resolvConf: /etc/resolv.conf
# The machine's disk and memory are shared with the tests: evict only at the edge.
evictionHard: {memory.available: 256Mi, nodefs.available: 2%, imagefs.available: 2%}
imageGCHighThresholdPercent: 100
serializeImagePulls: false
EOF
  log_of=kubelet start kubelet "$b/kubelet" --config "$STATE/kubelet.yaml" \
    --kubeconfig "$STATE/kubelet.kubeconfig" --hostname-override "$NODE_NAME" \
    --node-ip "$NODE_IP" --root-dir "$KUBELET_DIR" --v 1
  start kube-proxy "$b/kube-proxy" --kubeconfig "$STATE/kube-proxy.kubeconfig" \
    --hostname-override "$NODE_NAME" --proxy-mode iptables --cluster-cidr "$POD_CIDR" \
    --conntrack-max-per-core 0 --conntrack-tcp-timeout-established 0 \
    --conntrack-tcp-timeout-close-wait 0 --bind-address "$NODE_IP" \
    --metrics-bind-address 127.0.0.1:10249 --healthz-bind-address 127.0.0.1:10256 --v 1
  log_of=kubelet wait_for "node $NODE_NAME" 120 \
    kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout 2s
}

save_sysctls() {
  : > "$STATE/sysctls"
  for s in "${KUBELET_SYSCTLS[@]}"; do
    echo "$s=$(sysctl -n "$s")" >> "$STATE/sysctls"
  done
}

up() {
  preflight
  local b; b=$("$here/build-components.sh" | tail -1)
  [ "$b" = "$(bin_dir)" ] || die "build-components.sh built into $b, expected $(bin_dir)"
  log "Kubernetes $KUBERNETES_VERSION, etcd $ETCD_VERSION, $(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1{print $3}')"
  rm -rf "$STATE"
  mkdir -p "$STATE/logs" "$RUN"
  save_sysctls
  pki
  network_up
  make_shared "$KUBELET_DIR"
  make_shared "$CELLAR_DIR"
  containerd_up
  if [ -n "${CELLAR_CLUSTER_IMAGES:-}" ]; then
    # The images the manifests name, built without a registry (images/build.sh).
    "$CELLAR_CLUSTER_IMAGES" --import "$CONTAINERD_SOCK"
  fi
  control_plane_up
  node_up
  log "up: node $NODE_NAME Ready; KUBECONFIG=$STATE/admin.kubeconfig"
}

# ------------------------------------------------------------------ down
stop_pid() {
  local name=$1 f=$RUN/$1.pid
  [ -f "$f" ] || return 0
  local pid; pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# unmount_below DIR: unmounts every mount at or below DIR, deepest first.
unmount_below() {
  local dir=$1
  awk -v d="$dir" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo |
    sort -r | while read -r m; do
      m=$(printf '%b' "$m")   # mountinfo escapes spaces as \040
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
}

# remove_cgroups: the kubelet's pod cgroups (kubepods*) in every v1 hierarchy.
remove_cgroups() {
  local h
  for h in /sys/fs/cgroup/*/; do
    find "$h" -depth -type d \( -path "*/kubepods*" \) -exec rmdir {} \; 2>/dev/null || true
  done
}

down() {
  [ "$(id -u)" = 0 ] || die "needs root"
  local b; b=$(bin_dir)
  # Stop the node first so nothing restarts the pods it is asked to remove.
  stop_pid kubelet
  if [ -S "$CONTAINERD_SOCK" ] && [ -x "$b/crictl" ]; then
    # Through the CRI, so containerd stops the containers and tears down their
    # networks and mounts itself.
    timeout 120 "$b/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" rmp -af \
      >/dev/null 2>&1 || log "crictl rmp did not finish; removing what is left by hand"
  fi
  for p in kube-proxy kube-scheduler kube-controller-manager kube-apiserver etcd containerd; do
    stop_pid "$p"
  done
  # Whatever a lost pid file left running, and shims that outlived containerd.
  pkill -KILL -f "^$b/" 2>/dev/null || true
  pkill -KILL -f "^containerd --config $STATE/containerd.toml" 2>/dev/null || true
  pkill -KILL -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" 2>/dev/null || true
  unmount_below "$RUN"
  unmount_below "$CONTAINERD_ROOT"
  unmount_below "$KUBELET_DIR"
  unmount_below "$CELLAR_DIR"
  for n in $(ls /var/run/netns 2>/dev/null | grep '^cni-' || true); do
    ip netns delete "$n" 2>/dev/null || true
  done
  ip netns delete "$NETNS" 2>/dev/null || true
  remove_cgroups
  if [ -f "$STATE/sysctls" ]; then
    while IFS= read -r kv; do sysctl -qw "$kv" || true; done < "$STATE/sysctls"
  fi
  if [ -f "$STATE/bind-mounts" ]; then
    while read -r m; do umount "$m" 2>/dev/null || true; done < <(sort -r "$STATE/bind-mounts")
  fi
  if [ -f "$STATE/created-dirs" ]; then
    while read -r d; do
      mountpoint -q "$d" || rm -rf --one-file-system "$d"
    done < "$STATE/created-dirs"
  fi
  rm -rf "$RUN" "$STATE"
  log "down: processes stopped, mounts, network namespace and cgroups removed, sysctls restored"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  env) echo "KUBECONFIG=$STATE/admin.kubeconfig" ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
