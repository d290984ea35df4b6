#!/usr/bin/env bash
# Install what `npm run image` needs from Debian's packages, idempotently and quietly:
#   mmdebstrap   the image's base: a minimal Debian root file system, with no container registry
#   umoci        makes the OCI image: layers from directories, the image config (user, env, entrypoint)
#   skopeo       writes the OCI archive, reads an image's config (skopeo inspect), pushes to a registry
#   gcc, libc6-dev   the clock shim, vexec and the image launcher are compiled on this machine
# When everything is already there it changes nothing and needs no network. Installing needs root
# (or sudo).
set -euo pipefail

log() { printf 'image-deps: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

need=()
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
command -v umoci >/dev/null 2>&1 || need+=(umoci)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
((${#need[@]} == 0)) && exit 0

command -v apt-get >/dev/null 2>&1 || die "missing ${need[*]} and no apt-get: install them by hand"
sudo=()
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null 2>&1 || die "missing ${need[*]}: run as root or install sudo"
  sudo=(sudo -n)
fi
log "installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-qq -y -o Dpkg::Use-Pty=0 --no-install-recommends)
# Try without refreshing the package lists first; refresh once if that fails.
if ! "${sudo[@]}" apt-get install "${apt_opts[@]}" "${need[@]}" >/dev/null 2>&1; then
  "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed"
  "${sudo[@]}" apt-get install "${apt_opts[@]}" "${need[@]}" >/dev/null 2>&1 || die "apt-get install ${need[*]} failed"
fi
