#!/usr/bin/env bash
# Build a local Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) plus kubectl and helm from Go
# modules, and cache the binaries outside the repository, keyed by version.
#
# Why compile: no prebuilt binaries can be downloaded in our environment, but
# the Go module proxy is reachable. A second run finds the cache and returns
# at once; an interrupted run resumes (finished binaries are kept, and Go's
# build cache keeps the compiled packages).
#
# Usage: hack/control-plane/build.sh        (env: see README.md)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

if binaries_cached; then
  log "binaries for Kubernetes $LIVESIM_K8S_VERSION are cached in $BIN_DIR"
  exit 0
fi

command -v go >/dev/null || die "go is not installed"
command -v jq >/dev/null || die "jq is not installed"

# Build with exactly the installed Go (never download a toolchain) and produce
# static binaries that do not depend on the host's libc.
export GOTOOLCHAIN=local CGO_ENABLED=0
# Low priority and one package at a time: this machine is shared.
GO_BUILD=(nice -n 19 go build -p 1 -trimpath)

mkdir -p "$BIN_DIR"
cd "$K8S_CACHE_DIR"  # a directory without go.mod: the caller's module must not interfere
# Two callers (say, two up.sh runs) must not build into the same place at once.
exec 9>"$K8S_CACHE_DIR/.build.lock"
if ! flock -n 9; then
  log "another build of $LIVESIM_K8S_VERSION is running; waiting for it"
  flock 9
fi
if binaries_cached; then
  log "binaries for Kubernetes $LIVESIM_K8S_VERSION are cached in $BIN_DIR"
  exit 0
fi

build_started=$SECONDS
local_go="$(go env GOVERSION)"; local_go="${local_go#go}"

# version_le A B: succeeds when version A <= version B.
version_le() { printf '%s\n%s\n' "$1" "$2" | sort -V -C; }

# timed LABEL CMD...: run CMD, printing how long it took.
timed() {
  local label="$1" t0=$SECONDS; shift
  log "$label ..."
  "$@"
  log "$label: done in $((SECONDS - t0))s"
}

# new_wrapper_module DIR GO_LINE: a throwaway main module. Its go line is the
# built project's own go line so the binaries get the same GODEBUG defaults as
# upstream builds.
new_wrapper_module() {
  mkdir -p "$1"
  rm -f "$1/go.mod" "$1/go.sum"
  (cd "$1" && go mod init livesim.local/build >/dev/null 2>&1 && go mod edit -go="$2")
}

# go_get DIR ARGS...: `go get` in DIR, minus its "go: added" lines (hundreds of
# them for Kubernetes); the "go: downloading" lines are kept as progress.
go_get() {
  env -C "$1" go get "${@:2}" 2>&1 | sed '/^go: added /d' >&2
}

# install_binary SRC NAME: atomically place a finished binary into BIN_DIR
# (a hard link when possible: etcd and helm are shared between k8s versions).
install_binary() {
  rm -f "$BIN_DIR/.$2.tmp"
  [[ "$1" -ef "$BIN_DIR/$2" ]] && return  # already that very file
  ln "$1" "$BIN_DIR/.$2.tmp" 2>/dev/null || cp "$1" "$BIN_DIR/.$2.tmp"
  mv -f "$BIN_DIR/.$2.tmp" "$BIN_DIR/$2"
}

# --- Kubernetes ---------------------------------------------------------------
K8S_V="$LIVESIM_K8S_VERSION"
log "resolving k8s.io/kubernetes@$K8S_V through the module proxy"
kmod_json="$(go mod download -json "k8s.io/kubernetes@$K8S_V")"
kmod_file="$(jq -r .GoMod <<<"$kmod_json")"
kmod_dir="$(jq -r .Dir <<<"$kmod_json")"
kmod_time="$(jq -r '.Time // empty' "$(jq -r .Info <<<"$kmod_json")")"
kgo="$(go mod edit -json "$kmod_file" | jq -r .Go)"
version_le "$kgo" "$local_go" ||
  die "Kubernetes $K8S_V needs Go $kgo but Go $local_go is installed; pick an older LIVESIM_K8S_VERSION"

# Kubernetes requires its staging modules (k8s.io/api, client-go, ...) at
# v0.0.0 and points them at ./staging with replace lines, which Go ignores
# outside the main module. Each staging module is published as
# v0.<minor>.<patch>, so our wrapper module replaces them with that version.
# The list is read from the release's own go.mod because it changes over time.
staging_v="v0.${K8S_V#v1.}"
replace_args=()
while IFS=$'\t' read -r old new; do
  if [[ "$new" == ./staging/* ]]; then
    replace_args+=("-replace=$old=$old@$staging_v")
  elif [[ "$new" == ./* || "$new" == ../* ]]; then
    die "k8s.io/kubernetes $K8S_V replaces $old with a local path $new that is not a staging module"
  else
    replace_args+=("-replace=$old=$new")  # a module@version replace: keep it
  fi
done < <(go mod edit -json "$kmod_file" | jq -r '.Replace // [] | .[] |
  [(.Old.Path + (if .Old.Version then "@" + .Old.Version else "" end)),
   (.New.Path + (if .New.Version then "@" + .New.Version else "" end))] | @tsv')
log "Kubernetes $K8S_V: go $kgo, ${#replace_args[@]} staging/replace lines -> $staging_v"

# etcd: use what kubeadm installs for this release (DefaultEtcdVersion, e.g.
# "3.6.6-0"); if that constant ever moves, fall back to the etcd server module
# version Kubernetes itself compiles against.
if [[ -z "$LIVESIM_ETCD_VERSION" ]]; then
  etcd_v="$(sed -n 's/^[[:space:]]*DefaultEtcdVersion[[:space:]]*=[[:space:]]*"\([0-9.]*\)-[0-9]*".*/\1/p' \
    "$kmod_dir/cmd/kubeadm/app/constants/constants.go" 2>/dev/null | head -n1)"
  if [[ -n "$etcd_v" ]]; then
    LIVESIM_ETCD_VERSION="v$etcd_v"
  else
    LIVESIM_ETCD_VERSION="$(go mod edit -json "$kmod_file" |
      jq -r '.Require[] | select(.Path == "go.etcd.io/etcd/server/v3") | .Version')"
  fi
fi
log "etcd $LIVESIM_ETCD_VERSION, helm $LIVESIM_HELM_VERSION"

k8s_cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)
k8s_todo=()  # what an interrupted run did not finish
for c in "${k8s_cmds[@]}"; do
  if [[ -x "$BIN_DIR/$c" ]]; then log "$c $K8S_V already built"; else k8s_todo+=("$c"); fi
done

k8s_src="$K8S_CACHE_DIR/src"
if ((${#k8s_todo[@]})); then
  new_wrapper_module "$k8s_src" "$kgo"
  (cd "$k8s_src" && go mod edit "${replace_args[@]}")
  k8s_pkgs=()
  for c in "${k8s_cmds[@]}"; do k8s_pkgs+=("k8s.io/kubernetes/cmd/$c@$K8S_V"); done
  # Resolves the dependency graph and records go.sum; downloads modules on
  # the first run only (they stay in the Go module cache).
  timed "go get Kubernetes $K8S_V commands (module downloads)" \
    go_get "$k8s_src" "${k8s_pkgs[@]}"
fi

# Without these, /version reports v0.0.0-master and charts that check
# kubeVersion refuse to install. Same variables the Kubernetes build stamps.
minor="${K8S_V#v1.}"; minor="${minor%%.*}"
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$K8S_V -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit="
  # The proxy gives the release's commit time, which keeps builds reproducible.
  [[ -n "$kmod_time" ]] && k8s_ldflags+=" -X $pkg.buildDate=$kmod_time"
done

for c in "${k8s_todo[@]}"; do
  timed "building $c $K8S_V" \
    env -C "$k8s_src" "${GO_BUILD[@]}" -ldflags "$k8s_ldflags" -o "$BIN_DIR/.$c.tmp" "k8s.io/kubernetes/cmd/$c"
  mv -f "$BIN_DIR/.$c.tmp" "$BIN_DIR/$c"
done

# --- etcd ---------------------------------------------------------------------
# `go install go.etcd.io/etcd/server/v3@v` fails because etcd's go.mod points
# its sibling modules at ../ with replace lines. A wrapper module that simply
# requires go.etcd.io/etcd/server/v3 resolves those siblings from the proxy at
# the same version; the module's root package is the etcd main.
etcd_out="$LIVESIM_CACHE/etcd/$LIVESIM_ETCD_VERSION"
if [[ ! -x "$etcd_out/etcd" ]]; then
  emod_file="$(go mod download -json "go.etcd.io/etcd/server/v3@$LIVESIM_ETCD_VERSION" | jq -r .GoMod)"
  ego="$(go mod edit -json "$emod_file" | jq -r .Go)"
  version_le "$ego" "$local_go" || die "etcd $LIVESIM_ETCD_VERSION needs Go $ego, have $local_go"
  new_wrapper_module "$etcd_out/src" "$ego"
  timed "go get etcd $LIVESIM_ETCD_VERSION" \
    go_get "$etcd_out/src" "go.etcd.io/etcd/server/v3@$LIVESIM_ETCD_VERSION"
  timed "building etcd $LIVESIM_ETCD_VERSION" \
    env -C "$etcd_out/src" "${GO_BUILD[@]}" -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=gomod-$LIVESIM_ETCD_VERSION" \
    -o "$etcd_out/.etcd.tmp" go.etcd.io/etcd/server/v3
  mv -f "$etcd_out/.etcd.tmp" "$etcd_out/etcd"
fi
install_binary "$etcd_out/etcd" etcd

# --- helm ---------------------------------------------------------------------
# helm's go.mod has no replace lines, so a plain `go install module@version`
# works. The major version is part of the module path (helm.sh/helm/v4).
helm_out="$LIVESIM_CACHE/helm/$LIVESIM_HELM_VERSION"
if [[ ! -x "$helm_out/helm" ]]; then
  helm_mod="helm.sh/helm/${LIVESIM_HELM_VERSION%%.*}"
  mkdir -p "$helm_out/gobin"
  # Run outside any module so the repository's go.mod (if any) plays no part.
  timed "building helm $LIVESIM_HELM_VERSION" \
    env -C "$helm_out" GOBIN="$helm_out/gobin" nice -n 19 go install -p 1 -trimpath \
    -ldflags "-s -w -X $helm_mod/internal/version.version=$LIVESIM_HELM_VERSION -X $helm_mod/internal/version.gitTreeState=clean" \
    "$helm_mod/cmd/helm@$LIVESIM_HELM_VERSION"
  mv -f "$helm_out/gobin/helm" "$helm_out/helm"
fi
install_binary "$helm_out/helm" helm

# Written last: its presence is what makes the next run a no-op.
printf 'K8S_VERSION=%s\nETCD_VERSION=%s\nHELM_VERSION=%s\n' \
  "$K8S_V" "$LIVESIM_ETCD_VERSION" "$LIVESIM_HELM_VERSION" >"$VERSIONS_FILE.tmp"
mv -f "$VERSIONS_FILE.tmp" "$VERSIONS_FILE"

log "built in $((SECONDS - build_started))s; binaries in $BIN_DIR:"
ls -l "$BIN_DIR" >&2
log "disk used: $(du -sh "$LIVESIM_CACHE" | cut -f1) $LIVESIM_CACHE," \
  "$(du -sh "$(go env GOMODCACHE)" | cut -f1) module cache," \
  "$(du -sh "$(go env GOCACHE)" | cut -f1) build cache"
