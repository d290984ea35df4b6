#!/usr/bin/env bash
# Load an OCI archive (npm run image, pause-image.sh, ...) into the real node's containerd under
# NAME, where the kubelet finds it: `imagePullPolicy: Never` or `IfNotPresent` then never pulls.
# NAME is normalised as Kubernetes does (livesim:dev is docker.io/library/livesim:dev).
#
# Usage:  hack/kubelet/import.sh ARCHIVE NAME        (the node must be up: hack/kubelet/up.sh)
# Prints the image's name and digest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

(($# == 2)) || die "usage: hack/kubelet/import.sh ARCHIVE NAME"
archive="$1" name="$2"
[[ -f "$archive" ]] || die "no such archive: $archive"
[[ -S "$CONTAINERD_SOCK" ]] || die "containerd is not running (no $CONTAINERD_SOCK): hack/kubelet/up.sh"
first="${name%%/*}"
if [[ "$name" != */* ]]; then name="docker.io/library/$name"
elif [[ "$first" != *.* && "$first" != *:* && "$first" != localhost ]]; then name="docker.io/$name"; fi
[[ "${name##*/}" == *[:@]* ]] || name="$name:latest"
snapshotter="$(sed -n 's/^ *snapshotter = "\(.*\)"/\1/p' "$LIVESIM_NODE_DIR/containerd.toml")"

# The archive names itself by its tag only (org.opencontainers.image.ref.name): import it under a
# scratch repository, then tag it as NAME.
scratch="livesim.local/import-$$"
out="$(ctr_k8s images import --snapshotter "${snapshotter:-overlayfs}" --base-name "$scratch" "$archive" 2>&1)" ||
  die "ctr images import $archive failed: $out"
src="$(sed -n 's/^unpacking \([^ ]*\) .*/\1/p' <<<"$out" | head -n1)"
[[ -n "$src" ]] || die "ctr images import $archive imported nothing: $out"
if [[ "$src" != "$name" ]]; then
  ctr_k8s images tag --force "$src" "$name" >/dev/null
  ctr_k8s images rm "$src" >/dev/null
fi
ctr_k8s images ls "name==$name" | awk 'NR > 1 { print $1, $3 }'
