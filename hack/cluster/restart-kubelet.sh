#!/usr/bin/env bash
# Restarts the kubelet of each named node, as `systemctl restart kubelet`
# does on a real node: what kubectl etcd restore advises after a restore or
# a rollback, so that the kubelet's informers drop what they held before.
#   hack/cluster/restart-kubelet.sh hc-cp1 [hc-cp2 ...]
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
# shellcheck source=lib.sh
. "$HC_DIR/lib.sh"
HC_SCRIPT=restart-kubelet
[ "$#" -ge 1 ] || { echo "usage: $0 <node-name (hc-cp1..)>..." >&2; exit 2; }
for name in "$@"; do
  i="$(hc_node_index "$name")" || hc_die "unknown node name '$name' (hc-cp1..hc-cp9)"
  hp="$(hc_pid holder "$i")" || hc_die "node $name is not running"
  if p="$(hc_pid kubelet "$i")"; then
    kill -TERM "$p"
    n=0
    while [ -d "/proc/$p" ]; do
      sleep 0.1; n=$((n + 1)); [ "$n" -lt 300 ] || hc_die "$name: kubelet (pid $p) did not stop within 30 s"
    done
  fi
  hc_spawn "$i" kubelet "$HC_LOG_DIR/n$i/kubelet.log" \
    nsenter -t "$hp" -m -n -u -- "$HC_RUN_DIR/n$i/kubelet.sh"
  hc_log "$name: kubelet restarted (pid $(hc_pid kubelet "$i"))"
done
