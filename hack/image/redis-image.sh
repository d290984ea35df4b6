#!/usr/bin/env bash
# A user's image with no livesim inside, for the end-to-end tests of `live.image`: Debian's
# redis-server on a minimal Debian root file system, built the way `npm run image` builds the
# livesim image (mmdebstrap --variant=essential from this machine's Debian release and package
# sources, umoci, skopeo), as the OCI archive $LIVESIM_CACHE/images/redis-<key>.oci.tar. The key
# hashes this script, the release and the package sources: a second run prints the cached archive.
# Like a registry's redis image it runs as an unprivileged user (the operator sets the uid anyway).
# Needs root and hack/image/deps.sh's packages. Prints the archive's path on stdout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIVESIM_CACHE="${LIVESIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/livesim}"
suite="$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release)"
grep -q '^ID=debian$' /etc/os-release && [[ -n "$suite" ]] || { echo "redis-image: builds on Debian only" >&2; exit 1; }
sources=/etc/apt/sources.list.d/debian.sources
key="$( { cat "$here/redis-image.sh"; echo "$suite"; [[ -f "$sources" ]] && cat "$sources"; } | sha256sum | cut -c1-16)"
out="$LIVESIM_CACHE/images/redis-$key.oci.tar"
if [[ -f "$out" ]]; then echo "$out"; exit 0; fi
for t in mmdebstrap umoci skopeo; do command -v "$t" >/dev/null || { echo "redis-image: $t is not installed (hack/image/deps.sh)" >&2; exit 1; }; done
mkdir -p "$LIVESIM_CACHE/images"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
t0=$SECONDS
src=()
[[ -f "$sources" ]] && src=("$sources")
mmdebstrap --quiet --variant=essential --include=redis-server --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --format=tar "$suite" "$tmp/rootfs.tar" "${src[@]}" >&2
umoci init --layout "$tmp/layout" >/dev/null
umoci new --image "$tmp/layout:e2e" >/dev/null
umoci raw add-layer --image "$tmp/layout:e2e" --history.created_by "mmdebstrap --variant=essential --include=redis-server $suite" "$tmp/rootfs.tar" >/dev/null
redis_uid="$(tar -xOf "$tmp/rootfs.tar" ./etc/passwd | awk -F: '$1 == "redis" { print $3 ":" $4 }')"
umoci config --image "$tmp/layout:e2e" --no-history --config.user="${redis_uid:-65534:65534}" --config.workingdir=/ \
  --config.entrypoint=redis-server --config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.label=org.opencontainers.image.title=redis-server --architecture "$(dpkg --print-architecture)" --os linux >/dev/null
umoci gc --layout "$tmp/layout"
skopeo copy --quiet "oci:$tmp/layout:e2e" "oci-archive:$tmp/redis.oci.tar:e2e"
mv -f "$tmp/redis.oci.tar" "$out"
echo "redis-image: built in $((SECONDS - t0)) s" >&2
echo "$out"
