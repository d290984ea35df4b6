#!/usr/bin/env bash
# The pod sandbox ("pause") image for the real node, made here: pause.c compiled statically, one
# layer, as an OCI archive in $LIVESIM_CACHE/images/pause-<key>.oci.tar (key: the hash of pause.c
# and this script). containerd's CRI needs this image to start any pod, and this machine has no
# registry to pull registry.k8s.io/pause from. Prints the archive's path on stdout.
# Needs gcc with a static libc (libc6-dev), umoci and skopeo (hack/image/deps.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIVESIM_CACHE="${LIVESIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/livesim}"
key="$(cat "$here/pause.c" "$here/pause-image.sh" | sha256sum | cut -c1-16)"
out="$LIVESIM_CACHE/images/pause-$key.oci.tar"
if [[ -f "$out" ]]; then echo "$out"; exit 0; fi
for t in gcc umoci skopeo; do command -v "$t" >/dev/null || { echo "pause-image: $t is not installed" >&2; exit 1; }; done
mkdir -p "$LIVESIM_CACHE/images"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/root"
gcc -static -Os -s -o "$tmp/root/pause" "$here/pause.c"
umoci init --layout "$tmp/layout" >/dev/null
umoci new --image "$tmp/layout:3.10" >/dev/null
umoci insert --rootless --image "$tmp/layout:3.10" --history.created_by "gcc -static hack/kubelet/pause.c" "$tmp/root/pause" /pause >/dev/null
umoci config --image "$tmp/layout:3.10" --no-history --config.entrypoint=/pause --config.user=65535:65535 \
  --architecture "$(dpkg --print-architecture 2>/dev/null || echo amd64)" --os linux >/dev/null
umoci gc --layout "$tmp/layout"
skopeo copy --quiet "oci:$tmp/layout:3.10" "oci-archive:$tmp/pause.oci.tar:3.10"
mv -f "$tmp/pause.oci.tar" "$out"
echo "$out"
