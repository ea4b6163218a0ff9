#!/usr/bin/env bash
# Builds the plugin's image from this checkout, laid out as the release's
# (hack/release/Dockerfile): the static kubectl-etcd at
# /usr/local/bin/kubectl-etcd, PATH, the CA certificates and /tmp. Tags it
# $HC_PLUGIN_IMAGE (hackcluster.local/kubectl-etcd:dev) and imports it into
# the containerd of every node of the running cluster, as up.sh imports the
# cluster's images. A schedule's CronJob runs it with
# --backup-image "$HC_PLUGIN_IMAGE" (pull policy IfNotPresent: nothing is
# pulled).
#
#   sudo hack/cluster/load-plugin-image.sh                 builds kubectl-etcd as the release
#                                                          does: CGO_ENABLED=0, -trimpath, -ldflags "-s -w"
#   sudo hack/cluster/load-plugin-image.sh --binary FILE   packages FILE, a static linux kubectl-etcd
#                                                          built so (the e2e suite passes its own)
#
# Cheap to run again (the e2e suite runs it each time): the go build comes
# from the build cache, mkimage's tarball is reproducible, and a node that
# already holds this very image (same tarball sha256, recorded in the node's
# run dir, which down.sh removes) is left alone. Nodes that are recorded but
# not running make it fail, naming them.
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
# shellcheck source=lib.sh
. "$HC_DIR/lib.sh"
HC_SCRIPT=load-plugin-image

usage() { echo "usage: $0 [--binary FILE]" >&2; exit 2; }
bin=
case "$#:${1:-}" in
  0:) ;;
  2:--binary) bin="$2" ;;
  *) usage ;;
esac
hc_need_root

CA=/etc/ssl/certs/ca-certificates.crt
[ -x "$HC_TOOLS_BIN/mkimage" ] || hc_die "$HC_TOOLS_BIN/mkimage missing: run hack/cluster/build.sh"
[ -r "$CA" ] || hc_die "$CA missing (the image's CA certificates): run hack/cluster/prereqs.sh"
[ -r "$HC_STATE_FILE" ] && [ -n "${HC_NODES_UP:-}" ] || hc_die "no cluster is recorded in $HC_STATE_FILE: run hack/cluster/up.sh"
for i in $(seq 1 "$HC_NODES_UP"); do
  hc_pid containerd "$i" >/dev/null ||
    hc_die "node $(hc_node_name "$i")'s containerd is not running (the cluster of $HC_STATE_FILE has $HC_NODES_UP node(s)): run hack/cluster/up.sh"
done

tmp="$(mktemp -d -t kubectl-etcd-image.XXXXXX)"
trap 'hc_on_exit; rm -rf "$tmp"' EXIT

if [ -z "$bin" ]; then
  command -v go >/dev/null || PATH="$PATH:/usr/local/go/bin"
  command -v go >/dev/null || hc_die "go not found (need Go >= 1.26)"
  t="$(hc_now)"
  hc_log "building ./cmd/kubectl-etcd as the release does (CGO_ENABLED=0, -trimpath, -ldflags \"-s -w\")"
  (cd "$HC_DIR/../.." && CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS="${GOFLAGS:--buildvcs=false}" \
    go build -trimpath -ldflags "-s -w" -o "$tmp/kubectl-etcd" ./cmd/kubectl-etcd) ||
    hc_die "building ./cmd/kubectl-etcd failed (the go build output is above)"
  bin="$tmp/kubectl-etcd"
  hc_log "built in $(hc_since "$t") s"
fi
# A dynamically linked binary would fail in the pod only, with "no such
# file or directory": there is no libc in the image.
[ -f "$bin" ] && [ -x "$bin" ] || hc_die "--binary $bin: not an executable file"
[ "$(head -c4 "$bin" | od -An -c | tr -d ' ')" = '177ELF' ] || hc_die "--binary $bin: not an ELF binary (want a static linux kubectl-etcd)"
if grep -qa '/lib.*/ld-linux' "$bin"; then hc_die "--binary $bin: dynamically linked; build it with CGO_ENABLED=0"; fi

tar="$tmp/kubectl-etcd-image.tar"
"$HC_TOOLS_BIN/mkimage" -o "$tar" -tag "$HC_PLUGIN_IMAGE" \
  -env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin -dir /tmp:1777 \
  -file "$bin:/usr/local/bin/kubectl-etcd:755" -file "$CA:/etc/ssl/certs/ca-certificates.crt:644" \
  -entrypoint /usr/local/bin/kubectl-etcd || hc_die "mkimage could not build $HC_PLUGIN_IMAGE"
sum="$(sha256sum "$tar" | cut -c1-64)"

# has_image i: whether node i's containerd lists the image.
has_image() {
  [ -n "$(hc_nsenter "$1" ctr -a /run/containerd/containerd.sock -n k8s.io images ls -q "name==$HC_PLUGIN_IMAGE" 2>/dev/null)" ]
}
loaded=() kept=()
for i in $(seq 1 "$HC_NODES_UP"); do
  stamp="$HC_RUN_DIR/n$i/plugin-image.sha256"
  if [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ] && has_image "$i"; then
    kept+=("$(hc_node_name "$i")")
    continue
  fi
  hc_import_image "$i" "$tar"
  has_image "$i" || hc_die "node $i: $HC_PLUGIN_IMAGE is not in containerd after the import (see $HC_LOG_DIR/n$i/import.log)"
  echo "$sum" >"$stamp"
  loaded+=("$(hc_node_name "$i")")
done
echo "$HC_PLUGIN_IMAGE (tarball sha256 ${sum:0:12}, $(du -h "$tar" | cut -f1)) imported into: ${loaded[*]:-none}; already there: ${kept[*]:-none} ($(hc_elapsed) s)"
