#!/usr/bin/env bash
# Start a local Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) as background processes on
# 127.0.0.1, for end-to-end tests. There is no kubelet: pods are scheduled but
# nothing runs them unless a test brings its own node.
#
# Usage:  eval "$(hack/control-plane/up.sh)"     # sets KUBECONFIG
#         hack/control-plane/down.sh
#
# Progress goes to stderr; stdout is only the final `export KUBECONFIG=...`.
# Every `up` starts from an empty etcd; the state dir keeps certificates,
# kubeconfigs, logs and pids until the next `up`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

STATE="$LIVESIM_CP_DIR"
KUBECONFIG_OUT="$STATE/kubeconfig"
READY_TIMEOUT="${LIVESIM_CP_TIMEOUT:-120}"   # seconds, per component
# Where the apiserver listens. Pods on a real node (hack/kubelet) reach it through the kubernetes
# Service, whose endpoint is this host's primary IP (the advertise address): they need 0.0.0.0.
BIND_ADDRESS="${LIVESIM_CP_BIND_ADDRESS:-127.0.0.1}"
# Controllers the operator's tests rely on: namespace/GC cleanup, service
# accounts and their tokens, kube-root-ca.crt, aggregated RBAC roles
# (admin/edit/view) and the workload controllers.
CONTROLLERS="${LIVESIM_CP_CONTROLLERS:-garbagecollector,namespace,serviceaccount,serviceaccount-token,root-ca-cert-publisher,clusterrole-aggregation,deployment,replicaset,statefulset,daemonset,job,cronjob,ttl-after-finished,endpoint,endpointslice,endpointslicemirroring,disruption,resourcequota,podgc}"
started=$SECONDS

# --- Reuse a cluster that is already there -----------------------------------
if [[ "${LIVESIM_USE_EXISTING:-}" == 1 && -n "${KUBECONFIG:-}" ]]; then
  kubectl_bin="$BIN_DIR/kubectl"
  [[ -x "$kubectl_bin" ]] || kubectl_bin="$(command -v kubectl || true)"
  [[ -n "$kubectl_bin" ]] || { "$here/build.sh"; kubectl_bin="$BIN_DIR/kubectl"; }
  if "$kubectl_bin" --request-timeout=10s get --raw /readyz >/dev/null 2>&1; then
    log "LIVESIM_USE_EXISTING=1: using the cluster in KUBECONFIG=$KUBECONFIG"
    "$kubectl_bin" --request-timeout=10s version >&2 || true
    echo "export KUBECONFIG=$KUBECONFIG"
    exit 0
  fi
  log "LIVESIM_USE_EXISTING=1 but KUBECONFIG=$KUBECONFIG is not reachable; starting a local control plane"
fi

# --- Already running from an earlier up.sh? ----------------------------------
all_alive=1
any_alive=0
for c in "${COMPONENTS[@]}"; do
  if pid_alive "$c"; then any_alive=1; else all_alive=0; fi
done
if ((all_alive)) && [[ -f "$KUBECONFIG_OUT" ]] &&
  "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_OUT" --request-timeout=5s get --raw /readyz >/dev/null 2>&1; then
  log "control plane already running (state in $STATE)"
  echo "export KUBECONFIG=$KUBECONFIG_OUT"
  exit 0
fi
if ((any_alive)); then
  log "a partial control plane is running; stopping it first"
  "$here/down.sh"
fi

# --- Binaries (a no-op when cached) ------------------------------------------
"$here/build.sh"

command -v openssl >/dev/null || die "openssl is not installed"
command -v curl >/dev/null || die "curl is not installed"

# --- Fresh state --------------------------------------------------------------
# Only remove what we create: LIVESIM_CP_DIR may be a directory the user owns.
mkdir -p "$STATE"
rm -rf "$STATE/pki" "$STATE/etcd" "$STATE/logs" "$STATE/pids" "$STATE"/*.kubeconfig \
  "$KUBECONFIG_OUT" "$STATE/env"
mkdir -p "$STATE/pki" "$STATE/logs" "$STATE/pids"
chmod 700 "$STATE/pki"

# If anything below fails, stop what was started and show why.
up_ok=0
on_exit() {
  ((up_ok)) && return
  log "control plane failed to start; last log lines:"
  show_logs "$STATE/logs" 15
  "$here/down.sh" || true
}
trap on_exit EXIT
trap 'exit 130' INT TERM  # so an interrupted start also cleans up

# --- Ports --------------------------------------------------------------------
# Random ports below the usual ephemeral range (32768+), skipping any port
# something already listens on, so several control planes (or other test
# servers) can coexist. There is a small race until the process binds; a clash
# shows up as a start failure in the logs.
picked=()
pick_port() { # pick_port VAR
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    [[ " ${picked[*]} " == *" $p "* ]] && continue
    (: >"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue   # something listens
    picked+=("$p")
    printf -v "$1" '%s' "$p"
    return
  done
}
pick_port ETCD_PORT
pick_port ETCD_PEER_PORT
pick_port APISERVER_PORT
pick_port KCM_PORT
pick_port SCHEDULER_PORT

# --- Certificates -------------------------------------------------------------
# The trust roots of a real cluster: a CA for the apiserver's serving
# certificate, a CA for client certificates, a service-account signing key, and
# a front-proxy CA (the apiserver authenticates to aggregated API servers with
# it; kube-controller-manager and kube-scheduler log errors every few seconds
# when it is missing).
# ECDSA keys: quick to generate and accepted everywhere Kubernetes takes keys.
pki="$STATE/pki"
new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
new_ca() { # new_ca NAME CN
  new_key "$pki/$1.key"
  openssl req -x509 -new -key "$pki/$1.key" -out "$pki/$1.crt" -days 365 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
new_cert() { # new_cert NAME SUBJECT CA EXTENSIONS
  new_key "$pki/$1.key"
  openssl req -new -key "$pki/$1.key" -subj "$2" -out "$pki/$1.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/$3.crt" -CAkey "$pki/$3.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days 365 -out "$pki/$1.crt" -extfile <(printf '%b' "$4") 2>/dev/null
  rm -f "$pki/$1.csr"
}
log "generating certificates in $pki"
new_ca ca "livesim-serving-ca"
new_ca client-ca "livesim-client-ca"
new_ca front-proxy-ca "livesim-front-proxy-ca"
# The service names let in-cluster clients verify the apiserver; 10.0.0.1 is
# the kubernetes Service IP (first address of --service-cluster-ip-range).
new_cert apiserver "/CN=kube-apiserver" ca \
  "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
client_ext="basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth"
# system:masters bypasses RBAC: the admin identity tests and kubectl use.
new_cert admin "/O=system:masters/CN=livesim-admin" client-ca "$client_ext"
# The components use the identities the default RBAC policy grants rights to,
# so RBAC is exercised the way it is in a real cluster.
new_cert kube-controller-manager "/CN=system:kube-controller-manager" client-ca "$client_ext"
new_cert kube-scheduler "/CN=system:kube-scheduler" client-ca "$client_ext"
new_cert front-proxy-client "/CN=front-proxy-client" front-proxy-ca "$client_ext"
# The apiserver's identity towards kubelets (logs, exec, port-forward on a real node, hack/kubelet).
new_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" client-ca "$client_ext"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key" 2>/dev/null
openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null

write_kubeconfig() { # write_kubeconfig FILE CERTNAME
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: livesim
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 <"$pki/$2.crt")
    client-key-data: $(base64 -w0 <"$pki/$2.key")
contexts:
- name: livesim
  context:
    cluster: livesim
    user: $2
current-context: livesim
EOF
  chmod 600 "$1"
}
write_kubeconfig "$KUBECONFIG_OUT" admin
write_kubeconfig "$STATE/kube-controller-manager.kubeconfig" kube-controller-manager
write_kubeconfig "$STATE/kube-scheduler.kubeconfig" kube-scheduler

# --- Processes ----------------------------------------------------------------
# setsid: the processes outlive this script and are not hit by a Ctrl-C or
# process-group kill aimed at whoever ran up.sh; down.sh stops them by pid.
start() { # start NAME ARGS...
  local name="$1"; shift
  setsid "$BIN_DIR/$name" "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null &
  local pid=$! argv0 i
  echo "$pid" >"$STATE/pids/$name.pid"
  # $! is the forked shell, which execs setsid, which execs the binary. Until both execs happened
  # /proc/$pid/cmdline names bash or setsid and pid_alive would call a healthy start "exited":
  # wait for the exec (or the death) before anyone asks.
  for ((i = 0; i < 100; i++)); do
    argv0=""
    IFS= read -r -d '' argv0 <"/proc/$pid/cmdline" 2>/dev/null || true
    [[ "${argv0##*/}" == "$name" ]] && return 0
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.05
  done
}

# wait_until NAME DESCRIPTION CMD...: poll CMD until it succeeds; give up early
# if the process died, late after READY_TIMEOUT seconds.
wait_until() {
  local name="$1" what="$2" t0=$SECONDS; shift 2
  until "$@" >/dev/null 2>&1; do
    pid_alive "$name" || die "$name exited (see $STATE/logs/$name.log)"
    ((SECONDS - t0 < READY_TIMEOUT)) || die "timed out after ${READY_TIMEOUT}s waiting for $what"
    sleep 0.2
  done
  log "$what: ready after $((SECONDS - t0))s"
}

# Authenticate as admin for readiness probes of the apiserver.
api_curl=(curl -fsS --max-time 5 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key")
kubectl=("$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_OUT" --request-timeout=5s)

log "starting etcd on 127.0.0.1:$ETCD_PORT"
# --unsafe-no-fsync: test data is thrown away anyway, and fsync dominates
# write latency on slow or shared disks.
start etcd \
  --name=livesim \
  --data-dir="$STATE/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="livesim=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync=true \
  --log-level=warn
etcd_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
wait_until etcd "etcd /health" etcd_healthy

log "starting kube-apiserver on https://127.0.0.1:$APISERVER_PORT"
start kube-apiserver \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address="$BIND_ADDRESS" \
  --secure-port="$APISERVER_PORT" \
  --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
  --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP,Hostname \
  --tls-cert-file="$pki/apiserver.crt" \
  --tls-private-key-file="$pki/apiserver.key" \
  --client-ca-file="$pki/client-ca.crt" \
  --requestheader-client-ca-file="$pki/front-proxy-ca.crt" \
  --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User \
  --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$pki/front-proxy-client.crt" \
  --proxy-client-key-file="$pki/front-proxy-client.key" \
  --authorization-mode=Node,RBAC \
  --enable-admission-plugins=NodeRestriction \
  --service-cluster-ip-range=10.0.0.0/24 \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$pki/sa.pub" \
  --service-account-signing-key-file="$pki/sa.key" \
  --allow-privileged=true \
  --profiling=false
wait_until kube-apiserver "kube-apiserver /readyz" "${api_curl[@]}" "https://127.0.0.1:$APISERVER_PORT/readyz"

log "starting kube-controller-manager and kube-scheduler"
# Leader election off: there is exactly one of each, and it saves the lease
# round-trips at start-up.
start kube-controller-manager \
  --kubeconfig="$STATE/kube-controller-manager.kubeconfig" \
  --authentication-kubeconfig="$STATE/kube-controller-manager.kubeconfig" \
  --authorization-kubeconfig="$STATE/kube-controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="$KCM_PORT" \
  --leader-elect=false \
  --controllers="$CONTROLLERS" \
  --root-ca-file="$pki/ca.crt" \
  --service-account-private-key-file="$pki/sa.key" \
  --use-service-account-credentials=true
start kube-scheduler \
  --kubeconfig="$STATE/kube-scheduler.kubeconfig" \
  --authentication-kubeconfig="$STATE/kube-scheduler.kubeconfig" \
  --authorization-kubeconfig="$STATE/kube-scheduler.kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="$SCHEDULER_PORT" \
  --leader-elect=false
# /healthz is served without authentication on both.
wait_until kube-controller-manager "kube-controller-manager /healthz" \
  curl -kfsS --max-time 2 "https://127.0.0.1:$KCM_PORT/healthz"
wait_until kube-scheduler "kube-scheduler /healthz" \
  curl -kfsS --max-time 2 "https://127.0.0.1:$SCHEDULER_PORT/healthz"

# Pods cannot be created in a namespace until its default ServiceAccount
# exists (the ServiceAccount admission plugin rejects them), and pods mount
# kube-root-ca.crt: wait for what the controllers create.
wait_until kube-apiserver "namespace default" "${kubectl[@]}" get namespace default
wait_until kube-controller-manager "serviceaccount default/default" \
  "${kubectl[@]}" -n default get serviceaccount default
wait_until kube-controller-manager "configmap default/kube-root-ca.crt" \
  "${kubectl[@]}" -n default get configmap kube-root-ca.crt

# For tests and humans: where everything is.
cat >"$STATE/env" <<EOF
KUBECONFIG=$KUBECONFIG_OUT
LIVESIM_BIN_DIR=$BIN_DIR
ETCD_URL=http://127.0.0.1:$ETCD_PORT
APISERVER_URL=https://127.0.0.1:$APISERVER_PORT
KCM_PORT=$KCM_PORT
SCHEDULER_PORT=$SCHEDULER_PORT
EOF

up_ok=1
log "control plane up in $((SECONDS - started))s: https://127.0.0.1:$APISERVER_PORT (state: $STATE, binaries: $BIN_DIR)"
echo "export KUBECONFIG=$KUBECONFIG_OUT"
