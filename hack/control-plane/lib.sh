# shellcheck shell=bash disable=SC2034  # variables are used by the sourcing scripts
# Shared settings for build.sh, up.sh and down.sh. Sourced, not executed.
#
# Everything that names a version or a location lives here, so the three
# scripts cannot disagree about where the binaries or the running cluster are.

# Kubernetes release to build. Its go.mod "go" line must be <= the local Go
# (build.sh checks). v1.35.4 is the newest 1.34/1.35 release on the module proxy.
LIVESIM_K8S_VERSION="${LIVESIM_K8S_VERSION:-v1.35.4}"
# helm is built from its own module; pinned so the cache key is stable and a
# cached run never has to ask the proxy what "latest" means. "v3.x.y" works too.
LIVESIM_HELM_VERSION="${LIVESIM_HELM_VERSION:-v4.3.1}"
# etcd: empty means "the version kubeadm pairs with this Kubernetes release"
# (read from the Kubernetes module by build.sh).
LIVESIM_ETCD_VERSION="${LIVESIM_ETCD_VERSION:-}"

# Binaries are cached outside the repository, keyed by Kubernetes version.
LIVESIM_CACHE="${LIVESIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/livesim}"
K8S_CACHE_DIR="$LIVESIM_CACHE/k8s/$LIVESIM_K8S_VERSION"
BIN_DIR="$K8S_CACHE_DIR/bin"
# versions.env records which etcd/helm versions sit in BIN_DIR (written last,
# so its presence means the build completed).
VERSIONS_FILE="$K8S_CACHE_DIR/versions.env"
ALL_BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl helm kubelet kube-proxy)

# Where a running control plane keeps certificates, data, logs and pids.
LIVESIM_CP_DIR="${LIVESIM_CP_DIR:-/tmp/livesim-cp}"
# The order processes are started in; down.sh stops them in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler)

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# binaries_cached succeeds when every binary exists and the recorded etcd/helm
# versions match any explicit override. Cheap: no network, no go invocation.
binaries_cached() {
  local b
  [[ -f "$VERSIONS_FILE" ]] || return 1
  for b in "${ALL_BINARIES[@]}"; do [[ -x "$BIN_DIR/$b" ]] || return 1; done
  local ETCD_VERSION HELM_VERSION
  # shellcheck disable=SC1090  # written by build.sh
  source "$VERSIONS_FILE"
  [[ -z "$LIVESIM_ETCD_VERSION" || "$LIVESIM_ETCD_VERSION" == "$ETCD_VERSION" ]] || return 1
  [[ "$LIVESIM_HELM_VERSION" == "$HELM_VERSION" ]] || return 1
}

# pid_file_alive FILE NAME: FILE names a live process whose argv[0] is .../NAME (a zombie, another
# program or a recycled pid fails this).
pid_file_alive() {
  local f="$1" pid argv0
  [[ -f "$f" ]] || return 1
  pid="$(<"$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  IFS= read -r -d '' argv0 <"/proc/$pid/cmdline" 2>/dev/null || return 1
  [[ "${argv0##*/}" == "$2" ]]
}

# pid_alive NAME: $LIVESIM_CP_DIR/pids/NAME.pid names a live NAME.
pid_alive() { pid_file_alive "$LIVESIM_CP_DIR/pids/$1.pid" "$1"; }

# stop_pid_file FILE NAME TIMEOUT: SIGTERM the process FILE names (if it is a live NAME), SIGKILL
# after TIMEOUT seconds, then wait up to 5 s for it to go; the pid file is removed.
stop_pid_file() {
  local f="$1" name="$2" timeout="$3" pid deadline
  if pid_file_alive "$f" "$name"; then
    pid="$(<"$f")"
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + timeout))
    while pid_file_alive "$f" "$name" && ((SECONDS < deadline)); do sleep 0.1; done
    if pid_file_alive "$f" "$name"; then
      log "$name did not exit after ${timeout}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 5))
      while pid_file_alive "$f" "$name" && ((SECONDS < deadline)); do sleep 0.1; done
    fi
  fi
  rm -f "$f"
}

# show_logs DIR LINES: the last LINES lines of each DIR/*.log on stderr (a start that failed).
show_logs() {
  local f
  for f in "$1"/*.log; do
    [[ -f "$f" ]] || continue
    echo "==> $f" >&2
    tail -n "$2" "$f" >&2
  done
}
