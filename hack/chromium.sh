#!/usr/bin/env bash
# Install Debian's Chromium (and fonts for its text), idempotently and quietly, for the test that
# opens `livesim sweep`'s report.html in a headless browser (test/integration/sweep-report.test.ts).
# Prints the browser's path on stdout (and nothing else). Installing needs root (or sudo) and
# apt-get; without them it says why on stderr and exits 0, and the test skips, naming the reason.
# When Chromium is there it changes nothing and needs no network. No browser is downloaded from
# anywhere but the distribution's packages.
set -euo pipefail

log() { printf 'chromium: %s\n' "$*" >&2; }

find_chromium() {
  local c
  for c in chromium chromium-browser; do
    command -v "$c" 2>/dev/null && return 0
  done
  return 1
}

if find_chromium; then exit 0; fi
command -v apt-get >/dev/null 2>&1 || { log "not installed and no apt-get: install Chromium by hand"; exit 0; }
sudo=()
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { log "not installed: run as root or install sudo"; exit 0; }
  sudo=(sudo -n)
fi
log "installing chromium fonts-liberation"
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-qq -y -o Dpkg::Use-Pty=0 --no-install-recommends)
# Try without refreshing the package lists first; refresh once if that fails.
if ! "${sudo[@]}" apt-get install "${apt_opts[@]}" chromium fonts-liberation >/dev/null 2>&1; then
  "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 || { log "apt-get update failed"; exit 0; }
  "${sudo[@]}" apt-get install "${apt_opts[@]}" chromium fonts-liberation >/dev/null 2>&1 || { log "apt-get install chromium failed"; exit 0; }
fi
find_chromium || { log "installed, but no chromium on PATH"; exit 0; }
