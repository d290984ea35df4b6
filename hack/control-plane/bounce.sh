#!/usr/bin/env bash
# Stop one control-plane component for a while, then start it again with the same command line:
# the fault the operator's end-to-end tests inject ("the API server stopped for a few seconds").
#
# Usage: LIVESIM_CP_DIR=... hack/control-plane/bounce.sh kube-apiserver 5
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

name="${1:?component, e.g. kube-apiserver}"
seconds="${2:-5}"
pidfile="$LIVESIM_CP_DIR/pids/$name.pid"
[[ -f "$pidfile" ]] || die "no $pidfile: is the control plane in $LIVESIM_CP_DIR running?"
pid="$(cat "$pidfile")"
[[ -r "/proc/$pid/cmdline" ]] || die "$name (pid $pid) is not running"
# The exact argv, NUL-separated, so that arguments with spaces survive.
mapfile -d '' argv <"/proc/$pid/cmdline"

# SIGKILL, as a crash: a graceful stop of kube-apiserver drains for up to 10 s first, which with the
# restart made an outage of "5 s" last ~17 s, longer than the operator's renew deadline (10 s), so
# the test could not tell recovered watches from a lost lease.
log "stopping $name (pid $pid) for ${seconds}s"
kill -KILL "$pid" 2>/dev/null || true
for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
sleep "$seconds"

setsid "${argv[@]}" >>"$LIVESIM_CP_DIR/logs/$name.log" 2>&1 </dev/null &
echo $! >"$pidfile"
log "started $name again (pid $!)"

if [[ "$name" == kube-apiserver ]]; then
  port=""
  for a in "${argv[@]}"; do [[ "$a" == --secure-port=* ]] && port="${a#--secure-port=}"; done
  for _ in $(seq 1 120); do
    if curl -fsSk --max-time 2 "https://127.0.0.1:$port/readyz" >/dev/null 2>&1; then log "kube-apiserver ready"; exit 0; fi
    sleep 0.5
  done
  die "kube-apiserver did not become ready again"
fi
