#!/usr/bin/env bash
# Loads the local cluster's etcd to at least SIZE_MIB (default 256) MiB,
# stops the last node's etcd (a flag it does not know: it crash-loops
# without opening its data), points that node's kubelet at the first
# node's API server (as a load-balanced control-plane endpoint does; on
# kubeadm's local mode no pod starts on a node whose etcd is down), then
# times `kubectl etcd copy-db` against `cp` of the same file on the node,
# alternating, ROUNDS times (default 3). Prints the medians, their ratio
# and the plugin's peak RSS. Puts the manifest and the kubelet back and
# removes the load (unless KEEP_LOAD=1). Needs 2 nodes or more.
. "$(dirname "$0")/lib.sh"
ROUNDS="${ROUNDS:-3}"
SIZE_MIB="${SIZE_MIB:-256}"
LAST="${HC_NODE_NAMES##* }"
[ "$LAST" != "$NODE1" ] || { echo "bench: copy-db needs a second node (HC_NODES=3)" >&2; exit 1; }
d="$(mktemp -d /var/tmp/kubectl-etcd-bench.XXXXXX)"
manifest=/etc/kubernetes/manifests/etcd.yaml
restore_node() {
  hack/cluster/node-exec.sh "$LAST" sh -c "[ -f /etc/kubernetes/etcd.yaml.bench ] && cat /etc/kubernetes/etcd.yaml.bench > $manifest && rm /etc/kubernetes/etcd.yaml.bench; [ -f /etc/kubernetes/kubelet.conf.bench ] && cat /etc/kubernetes/kubelet.conf.bench > /etc/kubernetes/kubelet.conf && rm /etc/kubernetes/kubelet.conf.bench; true"
  hack/cluster/restart-kubelet.sh "$LAST" >/dev/null
  for _ in $(seq 120); do kubectl etcd health >/dev/null 2>&1 && break; sleep 2; done
}
cleanup() {
  restore_node || true
  rm -rf "$d" "$BENCH_BIN"
  hack/cluster/node-exec.sh "$LAST" rm -f /var/tmp/copydb-bench.db || true
  [ "${KEEP_LOAD:-0}" = 1 ] || unload_etcd
}
trap cleanup EXIT

load_etcd "$SIZE_MIB" "$d"
echo "DB size: $(db_mib) MiB"
ip1=$(kubectl get node "$NODE1" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')
hack/cluster/node-exec.sh "$LAST" sh -c "cp -p $manifest /etc/kubernetes/etcd.yaml.bench && cp -p /etc/kubernetes/kubelet.conf /etc/kubernetes/kubelet.conf.bench && \
  sed 's#server: https://.*:6443#server: https://$ip1:6443#' /etc/kubernetes/kubelet.conf.bench > /etc/kubernetes/kubelet.conf && \
  sed 's/^\( *\)- --data-dir=/\1- --bench-no-such-flag\n&/' /etc/kubernetes/etcd.yaml.bench > $manifest"
hack/cluster/restart-kubelet.sh "$LAST" >/dev/null
for _ in $(seq 120); do
  rc=$(kubectl -n kube-system get pod "etcd-$LAST" -o jsonpath='{.status.containerStatuses[0].restartCount}' 2>/dev/null || echo 0)
  cmd=$(kubectl -n kube-system get pod "etcd-$LAST" -o jsonpath='{.spec.containers[0].command}' 2>/dev/null || true)
  case "$cmd" in *bench-no-such-flag*) [ "${rc:-0}" != 0 ] && break ;; esac
  sleep 2
done
db=$(kubectl -n kube-system get pod "etcd-$LAST" -o jsonpath='{.spec.containers[0].command}' | tr ',' '\n' | sed -n 's/.*--data-dir=\([^"]*\).*/\1/p')/member/snap/db
size=$(hack/cluster/node-exec.sh "$LAST" stat -c %s "$db")
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then
    timed "$d/plugin" kubectl etcd copy-db -q "$LAST" "$d/c$r.db"
    timed "$d/node" hack/cluster/node-exec.sh "$LAST" cp "$db" /var/tmp/copydb-bench.db
  else
    timed "$d/node" hack/cluster/node-exec.sh "$LAST" cp "$db" /var/tmp/copydb-bench.db
    timed "$d/plugin" kubectl etcd copy-db -q "$LAST" "$d/c$r.db"
  fi
  rm -f "$d/c$r.db"
  hack/cluster/node-exec.sh "$LAST" rm -f /var/tmp/copydb-bench.db
done
p=$(median "$d/plugin" 1); n=$(median "$d/node" 1); rss=$(maxcol "$d/plugin" 2)
echo "copy-db benchmark: $ROUNDS rounds, member db $(( size / 1048576 )) MiB ($size bytes) on $LAST, flavour $HC_FLAVOUR"
printf '  cp of the file on the node            median %6.2f s\n' "$n"
printf '  kubectl etcd copy-db                  median %6.2f s (%s MiB/s), peak RSS %d MiB\n' "$p" "$(awk -v s="$size" -v t="$p" 'BEGIN{printf "%.0f", s/1048576/t}')" $(( rss / 1024 ))
echo "  ratio copy-db / cp on the node: $(ratio "$p" "$n")"
