#!/usr/bin/env bash
# What the real node (hack/kubelet/up.sh) needs from Debian, installed idempotently and quietly:
# containerd, runc, the CNI plugins, iptables, conntrack, and gcc with a static libc for the pause
# image. The kubelet and kube-proxy are built from Go modules (hack/control-plane/build.sh). The
# packages' services are not started (a temporary policy-rc.d): up.sh runs its own containerd.
set -euo pipefail
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[[ -x /usr/lib/cni/bridge ]] || need+=(containernetworking-plugins)
command -v iptables >/dev/null || need+=(iptables)
command -v conntrack >/dev/null || need+=(conntrack)
command -v gcc >/dev/null || need+=(gcc)
[[ -f "/usr/lib/$(gcc -print-multiarch 2>/dev/null)/libc.a" ]] || need+=(libc6-dev)
((${#need[@]})) || exit 0
((EUID == 0)) || { echo "kubelet/deps: installing ${need[*]} needs root" >&2; exit 1; }
echo "kubelet/deps: installing ${need[*]}" >&2
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e "$policy" ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; made_policy=1; fi
trap '((made_policy)) && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
