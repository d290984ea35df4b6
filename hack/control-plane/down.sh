#!/usr/bin/env bash
# Stop the control plane started by up.sh (same LIVESIM_CP_DIR). Safe to run
# when nothing is running. Logs, certificates and kubeconfigs stay in the state
# dir for inspection; up.sh replaces them on its next run. Pass --purge to
# remove them as well.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

STOP_TIMEOUT="${LIVESIM_CP_STOP_TIMEOUT:-15}"  # seconds before SIGKILL

# Reverse start order: clients first, etcd last, so the apiserver does not
# spend its shutdown retrying a vanished etcd.
for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
  name="${COMPONENTS[i]}"
  stop_pid_file "$LIVESIM_CP_DIR/pids/$name.pid" "$name" "$STOP_TIMEOUT"
done

if [[ "${1:-}" == --purge ]]; then
  # Only what up.sh creates: LIVESIM_CP_DIR may be a directory the user owns.
  rm -rf "$LIVESIM_CP_DIR/pki" "$LIVESIM_CP_DIR/etcd" "$LIVESIM_CP_DIR/logs" \
    "$LIVESIM_CP_DIR/pids" "$LIVESIM_CP_DIR"/*.kubeconfig "$LIVESIM_CP_DIR/kubeconfig" "$LIVESIM_CP_DIR/env"
  rmdir "$LIVESIM_CP_DIR" 2>/dev/null || true
fi
log "control plane in $LIVESIM_CP_DIR stopped"
