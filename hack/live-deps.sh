#!/usr/bin/env bash
# Install what live components need from Debian's packages, idempotently and quietly:
#   libfaketime            the virtual clock (LD_PRELOAD=.../faketime/libfaketimeMT.so.1)
#   redis-server, redis-tools   the live examples and their tests
#   nginx, memcached       examples/web-stack.yaml and the live HTTP tests
#   postgresql             examples/postgres-pgbench.yaml, its test and live-pgbench-fidelity (Debian's:
#                          binaries in /usr/lib/postgresql/<version>/bin, not on PATH)
#   gcc, libc6-dev         the live tests compile small C programs (normally already there)
#   musl-tools             test/live/vexec.test.ts runs musl programs (static and dynamic) under vexec
# Prints the path of libfaketimeMT.so.1 on stdout (and nothing else), so callers can do
#   LIBFAKETIME="$(hack/live-deps.sh)"
# Installing needs root (or sudo). When everything is already there it changes nothing and needs no
# network. The packages' services are not started (a temporary policy-rc.d, unless one exists).
set -euo pipefail

log() { printf 'live-deps: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

find_libfaketime() {
  local p
  for p in /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 \
           /usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1 \
           /usr/lib/faketime/libfaketimeMT.so.1 \
           /usr/local/lib/faketime/libfaketimeMT.so.1; do
    [[ -f "$p" ]] && { printf '%s\n' "$p"; return 0; }
  done
  if command -v dpkg-architecture >/dev/null 2>&1; then
    p="/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)/faketime/libfaketimeMT.so.1"
    [[ -f "$p" ]] && { printf '%s\n' "$p"; return 0; }
  fi
  return 1
}

need=()
find_libfaketime >/dev/null || need+=(libfaketime)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
# /usr/sbin is not on every user's PATH.
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
command -v memcached >/dev/null 2>&1 || need+=(memcached)
compgen -G '/usr/lib/postgresql/*/bin/pgbench' >/dev/null || need+=(postgresql)
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v musl-gcc >/dev/null 2>&1 || need+=(musl-tools)

if ((${#need[@]} > 0)); then
  command -v apt-get >/dev/null 2>&1 || die "missing ${need[*]} and no apt-get: install them by hand"
  sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "missing ${need[*]}: run as root or install sudo"
    sudo=(sudo -n)
  fi
  log "installing ${need[*]}"
  # Do not start redis-server, nginx, memcached, postgresql (or anything else) as a system service while installing.
  created_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  cleanup() { if ((created_policy)); then "${sudo[@]}" rm -f /usr/sbin/policy-rc.d; fi; }
  trap cleanup EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt_opts=(-qq -y -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --no-install-recommends)
  # Try without refreshing the package lists first; refresh once if that fails.
  if ! "${sudo[@]}" apt-get install "${apt_opts[@]}" "${need[@]}" >/dev/null 2>&1; then
    "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed"
    "${sudo[@]}" apt-get install "${apt_opts[@]}" "${need[@]}" >/dev/null 2>&1 ||
      die "apt-get install ${need[*]} failed"
  fi
fi

lib="$(find_libfaketime)" || die "libfaketime is installed but libfaketimeMT.so.1 was not found"
printf '%s\n' "$lib"
