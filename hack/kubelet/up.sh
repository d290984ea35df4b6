#!/usr/bin/env bash
# A real Kubernetes node on this machine, for the end-to-end tests: containerd (Debian's) with runc
# and the CNI plugins, the kubelet and kube-proxy built by hack/control-plane/build.sh, joined to the
# control plane of hack/control-plane/up.sh (same LIVESIM_CP_DIR). Pods run in containers from
# images imported into containerd (`hack/kubelet/import.sh ARCHIVE NAME`); Services route
# (kube-proxy, iptables mode).
#
# Usage:  LIVESIM_CP_DIR=... hack/kubelet/up.sh      (root; the control plane must be up)
#         LIVESIM_CP_DIR=... hack/kubelet/down.sh
# Progress goes to stderr. Re-running while the node runs changes nothing. See README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

STATE="$LIVESIM_NODE_DIR"
READY_TIMEOUT="${LIVESIM_NODE_TIMEOUT:-120}"
started=$SECONDS

((EUID == 0)) || die "the node needs root (containerd, runc, network namespaces, iptables)"
for t in containerd runc ctr iptables ip openssl curl; do
  command -v "$t" >/dev/null || die "$t is not installed (hack/kubelet/deps.sh installs what the node needs)"
done
for p in bridge host-local loopback portmap; do
  [[ -x "$CNI_BIN_DIR/$p" ]] || die "CNI plugin $CNI_BIN_DIR/$p is missing (hack/kubelet/deps.sh)"
done
[[ -f "$LIVESIM_CP_DIR/env" ]] || die "no control plane in $LIVESIM_CP_DIR (run hack/control-plane/up.sh with the same LIVESIM_CP_DIR)"
# shellcheck disable=SC1091  # written by hack/control-plane/up.sh
source "$LIVESIM_CP_DIR/env"
pki="$LIVESIM_CP_DIR/pki"
kubectl=("$BIN_DIR/kubectl" --kubeconfig "$LIVESIM_CP_DIR/kubeconfig" --request-timeout=10s)

node_ready() {
  [[ "$("${kubectl[@]}" get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

# --- Already running? ---------------------------------------------------------
all_alive=1
any_alive=0
for c in "${NODE_COMPONENTS[@]}"; do
  if node_pid_alive "$c"; then any_alive=1; else all_alive=0; fi
done
if ((all_alive)) && node_ready; then
  log "node $NODE_NAME already running (state in $STATE)"
  exit 0
fi
if ((any_alive)) || [[ -d "$STATE/containerd" ]]; then
  log "a partial or stale node is there; stopping and cleaning it first"
  "$here/down.sh"
fi

"$here/../control-plane/build.sh"  # kubelet and kube-proxy; a no-op when cached

# --- Fresh state --------------------------------------------------------------
mkdir -p "$STATE"
rm -rf "$STATE/containerd" "$STATE/kubelet" "$STATE/cni" "$STATE/pki" "$STATE/logs" "$STATE/pids" "$STATE"/*.yaml "$STATE"/*.toml "$STATE"/*.kubeconfig
mkdir -p "$STATE/containerd" "$STATE/kubelet" "$STATE/cni/net.d" "$STATE/cni/ipam" "$STATE/pki" "$STATE/logs" "$STATE/pids"
chmod 700 "$STATE/pki"

up_ok=0
on_exit() {
  ((up_ok)) && return
  log "the node failed to start; last log lines:"
  show_logs "$STATE/logs" 20
  "$here/down.sh" || true
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# --- The host's network settings a node needs ------------------------------------
# Pods reach Services through iptables NAT (kube-proxy) and each other over the bridge.
modprobe br_netfilter 2>/dev/null || true
modprobe overlay 2>/dev/null || true
sysctl -qw net.ipv4.ip_forward=1
[[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] && sysctl -qw net.bridge.bridge-nf-call-iptables=1

# The address the apiserver advertises for the kubernetes Service (its primary IP): the node's
# InternalIP too, so that the apiserver reaches the kubelet and pods reach the apiserver.
host_ip="$("${kubectl[@]}" get endpointslices -n default -l kubernetes.io/service-name=kubernetes -o jsonpath='{.items[0].endpoints[0].addresses[0]}')"
[[ -n "$host_ip" ]] || die "the kubernetes Service has no endpoint"
api_port="${APISERVER_URL##*:}"
curl -fsS --max-time 5 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
  --resolve "kubernetes:$api_port:$host_ip" "https://kubernetes:$api_port/readyz" >/dev/null ||
  die "the apiserver does not answer on $host_ip:$api_port, where pods reach it; start the control plane with LIVESIM_CP_BIND_ADDRESS=0.0.0.0"

# --- Certificates -------------------------------------------------------------
# Signed by the control plane's client CA: the kubelet as system:node:<name> (the Node authorizer
# and NodeRestriction), kube-proxy as system:kube-proxy (the default system:node-proxier binding).
client_cert() { # client_cert NAME SUBJECT
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$STATE/pki/$1.key" 2>/dev/null
  openssl req -new -key "$STATE/pki/$1.key" -subj "$2" -out "$STATE/pki/$1.csr" 2>/dev/null
  openssl x509 -req -in "$STATE/pki/$1.csr" -CA "$pki/client-ca.crt" -CAkey "$pki/client-ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 365 -out "$STATE/pki/$1.crt" \
    -extfile <(printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth') 2>/dev/null
  rm -f "$STATE/pki/$1.csr"
  cat >"$STATE/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: livesim
  cluster:
    server: $APISERVER_URL
    certificate-authority: $pki/ca.crt
users:
- name: $1
  user:
    client-certificate: $STATE/pki/$1.crt
    client-key: $STATE/pki/$1.key
contexts:
- name: livesim
  context: {cluster: livesim, user: $1}
current-context: livesim
EOF
  chmod 600 "$STATE/$1.kubeconfig"
}
client_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
client_cert kube-proxy "/CN=system:kube-proxy"

# --- containerd -----------------------------------------------------------------
# Its own root, state and socket, so it never meets a containerd the machine may run. cgroupfs
# (no systemd here), overlayfs unless LIVESIM_SNAPSHOTTER says otherwise (native works anywhere).
snapshotter="${LIVESIM_SNAPSHOTTER:-overlayfs}"
restrict_oom=false
echo -1 >/proc/self/oom_score_adj 2>/dev/null && echo 0 >/proc/self/oom_score_adj || restrict_oom=true
cat >"$STATE/containerd.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  # Root here lacks CAP_SYS_RESOURCE, so no process may lower its oom_score_adj: runc fails every
  # pod sandbox (-998) with "failed to update /proc/self/oom_score_adj: Permission denied" unless
  # containerd clamps the values to its own.
  restrict_oom_score_adj = $restrict_oom
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "$snapshotter"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$STATE/cni/net.d"
    max_conf_num = 1
EOF
# One bridge, pods' addresses from POD_CIDR; no masquerading: pods only talk to each other and to
# this host (the apiserver), never to the outside.
cat >"$STATE/cni/net.d/10-livesim.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$STATE/cni/ipam",
        "ranges": [[{ "subnet": "$POD_CIDR" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF

start() { # start NAME ARGS...
  local name="$1" i argv0; shift
  setsid "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$STATE/pids/$name.pid"
  for ((i = 0; i < 100; i++)); do  # until setsid has exec'd the binary (see control-plane/up.sh)
    argv0=""
    IFS= read -r -d '' argv0 <"/proc/$pid/cmdline" 2>/dev/null || true
    [[ "${argv0##*/}" == "$name" ]] && return 0
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.05
  done
}
wait_until() { # wait_until NAME DESCRIPTION CMD...
  local name="$1" what="$2" t0=$SECONDS; shift 2
  until "$@" >/dev/null 2>&1; do
    node_pid_alive "$name" || die "$name exited (see $STATE/logs/$name.log)"
    ((SECONDS - t0 < READY_TIMEOUT)) || die "timed out after ${READY_TIMEOUT}s waiting for $what"
    sleep 0.2
  done
  log "$what: ready after $((SECONDS - t0))s"
}

log "starting containerd ($(containerd --version | awk '{print $3}'), snapshotter $snapshotter)"
start containerd "$(command -v containerd)" --config "$STATE/containerd.toml"
wait_until containerd "containerd" ctr --address "$CONTAINERD_SOCK" version
ctr_k8s plugins ls | grep -q "io.containerd.snapshotter.v1 *$snapshotter .*ok" ||
  die "containerd's $snapshotter snapshotter is not usable here ($(ctr_k8s plugins ls | grep snapshotter | tr -s ' ' | paste -sd';')); try LIVESIM_SNAPSHOTTER=native"

# The sandbox image: made on this machine (pause-image.sh), named as containerd's CRI expects it.
"$here/import.sh" "$("$here/pause-image.sh")" registry.k8s.io/pause:3.10 >&2

# --- kubelet ----------------------------------------------------------------------
# failCgroupV1: false — Kubernetes 1.35's kubelet refuses cgroup v1 hosts otherwise, and this kind of
# machine has cgroup v1. cgroupfs driver (no systemd). No cluster DNS: livesim's pods use pod IPs.
# Eviction thresholds low and image GC off: a test node must not evict or delete the imported
# images (they cannot be pulled again).
cat >"$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $pki/client-ca.crt }
authorization: { mode: Webhook }
address: $host_ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
clusterDomain: cluster.local
failSwapOn: false
resolvConf: /etc/resolv.conf
rotateCertificates: false
oomScoreAdj: $([[ $restrict_oom == true ]] && echo 0 || echo -999)
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: { memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%" }
maxPods: 110
podCIDR: $POD_CIDR
EOF
log "starting kubelet $LIVESIM_K8S_VERSION as node $NODE_NAME ($host_ip)"
start kubelet "$BIN_DIR/kubelet" \
  --config="$STATE/kubelet.yaml" \
  --kubeconfig="$STATE/kubelet.kubeconfig" \
  --root-dir="$STATE/kubelet" \
  --cert-dir="$STATE/kubelet/pki" \
  --hostname-override="$NODE_NAME" \
  --node-ip="$host_ip" \
  --node-labels="node.kubernetes.io/instance-type=livesim-kubelet" \
  --v=1
wait_until kubelet "kubelet /healthz" curl -fsS --max-time 2 http://127.0.0.1:10248/healthz

# --- kube-proxy -------------------------------------------------------------------
cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: { kubeconfig: $STATE/kube-proxy.kubeconfig }
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: 0.0.0.0
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack: { maxPerCore: 0, min: 0 }
EOF
log "starting kube-proxy $LIVESIM_K8S_VERSION (iptables)"
start kube-proxy "$BIN_DIR/kube-proxy" --config="$STATE/kube-proxy.yaml" --v=1
wait_until kube-proxy "kube-proxy /healthz" curl -fsS --max-time 2 http://127.0.0.1:10256/healthz

wait_until kubelet "node $NODE_NAME Ready" node_ready
# The apiserver taints every new Node not-ready (TaintNodesByCondition); only the node lifecycle
# controller, which hack/control-plane does not run, would take that off again.
"${kubectl[@]}" taint node "$NODE_NAME" node.kubernetes.io/not-ready:NoSchedule- >/dev/null 2>&1 || true

up_ok=1
log "node $NODE_NAME up in $((SECONDS - started))s (state: $STATE)"
