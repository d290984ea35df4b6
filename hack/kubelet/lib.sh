# shellcheck shell=bash disable=SC2034  # variables are used by the sourcing scripts
# Shared settings for hack/kubelet/up.sh and down.sh. Sourced, not executed.

here_kubelet="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../control-plane/lib.sh
source "$here_kubelet/../control-plane/lib.sh"

# Where the node keeps everything: containerd's root and state, the kubelet's root dir, CNI's
# IP allocations, configs, certificates, logs and pids.
LIVESIM_NODE_DIR="${LIVESIM_NODE_DIR:-/tmp/livesim-kubelet}"
NODE_NAME="${LIVESIM_NODE_NAME:-livesim-node}"
# The pods' addresses (one node: one bridge, host-local IPAM) and the bridge's name.
POD_CIDR="${LIVESIM_POD_CIDR:-10.244.0.0/24}"
BRIDGE="livesim0"
CNI_NETWORK="livesim"
CONTAINERD_SOCK="$LIVESIM_NODE_DIR/containerd/containerd.sock"
CNI_BIN_DIR="${LIVESIM_CNI_BIN_DIR:-/usr/lib/cni}"
# The order the processes start in; down.sh stops them in reverse.
NODE_COMPONENTS=(containerd kubelet kube-proxy)

# node_pid_alive NAME: the pid file names a live process running NAME (a reused pid is not ours).
node_pid_alive() { pid_file_alive "$LIVESIM_NODE_DIR/pids/$1.pid" "$1"; }

ctr_k8s() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }
