#!/usr/bin/env bash
# Runs a command on the host inside a node's network, mount and UTS
# namespaces, e.g.
#   hack/cluster/node-exec.sh hc-cp1 "$HC_ETCDCTL" --endpoints https://127.0.0.1:2379 \
#     --cacert /etc/kubernetes/pki/etcd/ca.crt --cert /etc/kubernetes/pki/etcd/server.crt \
#     --key /etc/kubernetes/pki/etcd/server.key snapshot save /tmp/snap.db
# The node sees its own /etc/kubernetes, /var/lib/etcd, /var/lib/kubelet, ...;
# every other path (/tmp, the repository, $HC_CACHE) is the host's.
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
# shellcheck source=lib.sh
. "$HC_DIR/lib.sh"
HC_SCRIPT=node-exec
[ "$#" -ge 2 ] || { echo "usage: $0 <node-name (hc-cp1..)> <command> [args...]" >&2; exit 2; }
i="$(hc_node_index "$1")" || hc_die "unknown node name '$1' (hc-cp1..hc-cp9)"
shift
p="$(hc_pid holder "$i")" || hc_die "node hc-cp$i is not running"
exec nsenter -t "$p" -m -n -u --wd="$PWD" -- "$@"
