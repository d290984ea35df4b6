#!/usr/bin/env bash
# Stop the node of hack/kubelet/up.sh (same LIVESIM_NODE_DIR) and leave nothing behind: kube-proxy's
# iptables rules, every container and pod sandbox (with its network namespace), every mount under
# the state dir, the bridge and containerd's data. Safe to run when nothing is running. Logs stay in
# $LIVESIM_NODE_DIR/logs. The Node object stays in the API (like any node that went away).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
STATE="$LIVESIM_NODE_DIR"
STOP_TIMEOUT="${LIVESIM_NODE_STOP_TIMEOUT:-15}"

stop() { stop_pid_file "$STATE/pids/$1.pid" "$1" "$STOP_TIMEOUT"; } # SIGTERM, SIGKILL after STOP_TIMEOUT

stop kube-proxy
[[ -x "$BIN_DIR/kube-proxy" ]] && "$BIN_DIR/kube-proxy" --cleanup >/dev/null 2>&1 || true
stop kubelet
# What the kubelet adds to iptables itself (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT):
# with kube-proxy's rules gone, every KUBE- chain left is the kubelet's.
for ipt in iptables ip6tables; do
  command -v "$ipt" >/dev/null || continue
  for table in filter nat mangle; do
    "$ipt-save" -t "$table" 2>/dev/null | sed -n 's/^-A \([A-Z]*\) \(.*-j KUBE-.*\)$/\1 \2/p' | while read -r chain rule; do
      eval "$ipt -t $table -D $chain $rule" 2>/dev/null || true
    done
    for chain in $("$ipt-save" -t "$table" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p'); do
      "$ipt" -t "$table" -F "$chain" 2>/dev/null || true
    done
    for chain in $("$ipt-save" -t "$table" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p'); do
      "$ipt" -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
done

# The containers outlive the kubelet: kill every task, remember each sandbox's network namespace,
# delete the containers while containerd still runs.
netns=()
if node_pid_alive containerd; then
  while read -r id; do
    [[ -n "$id" ]] || continue
    ns="$(ctr_k8s containers info "$id" 2>/dev/null | sed -n 's|.*"path": "\(/var/run/netns/[^"]*\)".*|\1|p; s|.*"path": "\(/run/netns/[^"]*\)".*|\1|p' | head -n1)"
    [[ -n "$ns" ]] && netns+=("$ns")
    ctr_k8s tasks kill --signal SIGKILL "$id" >/dev/null 2>&1 || true
  done < <(ctr_k8s containers ls -q 2>/dev/null)
  for id in $(ctr_k8s tasks ls -q 2>/dev/null); do
    for _ in 1 2 3 4 5 6 7 8 9 10; do ctr_k8s tasks delete "$id" >/dev/null 2>&1 && break; sleep 0.3; done
  done
  for id in $(ctr_k8s containers ls -q 2>/dev/null); do ctr_k8s containers delete "$id" >/dev/null 2>&1 || true; done
fi
stop containerd
# Shims whose containerd is gone (a crash) would keep their containers: they name our socket.
for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" || true); do kill -KILL "$pid" 2>/dev/null || true; done

for ns in ${netns[@]+"${netns[@]}"}; do
  [[ -e "$ns" ]] || continue
  umount "$ns" 2>/dev/null || true
  rm -f "$ns"
done
# Everything mounted under the state dir (rootfs overlays, shm, the kubelet's volumes), deepest first.
if [[ -d "$STATE" ]]; then
  while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done \
    < <(findmnt -rn -o TARGET | grep -F "$STATE/" | sort -r)
fi
ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE"
rm -rf "$STATE/containerd" "$STATE/kubelet" "$STATE/cni" "$STATE/pids"
log "node $NODE_NAME in $STATE stopped"
