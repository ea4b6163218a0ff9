#!/usr/bin/env bash
# Loads the local cluster's etcd to at least SIZE_MIB (default 512) MiB,
# backs it up, and times `kubectl etcd restore` of that snapshot on every
# control-plane node (3 with HC_NODES=3 at up.sh), with the time of each
# step on each node read from the nodes' journals. Side by side, the same
# snapshot is restored by the cluster's own etcdutl on this machine's disk:
# the floor of the data step. Prints the time beyond the waits on the
# kubelet (stopping and starting static pods) against the target of 90 s.
# Restarts the kubelets afterwards, as the restore advises, and removes the
# load (delete, compact, defrag) unless KEEP_LOAD=1.
. "$(dirname "$0")/lib.sh"
SIZE_MIB="${SIZE_MIB:-512}"
d="$(mktemp -d /var/tmp/kubectl-etcd-bench.XXXXXX)"
cleanup() {
  rm -rf "$d" "$BENCH_BIN"
  [ "${KEEP_LOAD:-0}" = 1 ] || unload_etcd
}
trap cleanup EXIT
CGO_ENABLED=0 go build -trimpath -o "$BENCH_BIN/kubectl-etcd-agent" ./cmd/kubectl-etcd-agent
nodes=$(echo "$HC_NODE_NAMES" | wc -w)
[ "$nodes" -ge 3 ] || echo "bench: warning: $nodes control-plane node(s); the target is for 3 (HC_NODES=3 hack/cluster/up.sh)" >&2

load_etcd "$SIZE_MIB" "$d"
echo "DB size: $(db_mib) MiB"
kubectl etcd backup -q "$d/etcd.db"
snap_mib=$(( $(stat -c %s "$d/etcd.db") / 1048576 ))

# The floor of the data step: etcdutl on this machine, same disk, same file.
/usr/bin/time -f '%e' -o "$d/floor" "$HC_ETCDUTL" snapshot restore "$d/etcd.db" --data-dir "$d/floor.etcd" \
  --name bench --initial-cluster bench=https://127.0.0.1:2380 --initial-advertise-peer-urls https://127.0.0.1:2380 \
  --bump-revision 1000000000 --mark-compacted >/dev/null 2>&1
rm -rf "$d/floor.etcd"

start=$(date +%s.%N)
kubectl etcd restore "$d/etcd.db" --yes >"$d/out" 2>"$d/err" || { cat "$d/out" "$d/err"; exit 1; }
total=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
id=$(sed -n 's/^Restored \([^:]*\):.*/\1/p' "$d/out")
[ -n "$id" ] || { cat "$d/out" "$d/err"; echo "bench: no summary line" >&2; exit 1; }

# Per node and step, from the journals: seconds, and whether the step waits
# on the kubelet (a static pod stopping or starting).
kubelet_max=0
for n in $HC_NODE_NAMES; do
  hack/cluster/node-exec.sh "$n" cat "/var/lib/kubectl-etcd/restore/$id/journal.json" >"$d/j-$n.json"
  jq -r '.steps[] | select(.started and .ended) |
      [((.ended | sub("\\.[0-9]+"; "") | fromdateiso8601) - (.started | sub("\\.[0-9]+"; "") | fromdateiso8601)), .name] | @tsv' \
    "$d/j-$n.json" >"$d/steps-$n"
  waits=$(awk -F'\t' '/wait until (kube-apiserver|etcd) is gone|wait until the member is healthy/ { s += $1 } END { print s + 0 }' "$d/steps-$n")
  [ "$waits" -gt "$kubelet_max" ] && kubelet_max=$waits
done
data_lines=$(grep -h "restored the snapshot into" "$d/err" | sed "s/ into [^ ]* in / in /")

echo "restore benchmark: DB $(db_mib) MiB, snapshot $snap_mib MiB, flavour $HC_FLAVOUR, $nodes node(s)"
echo "  per node, from its journal (whole seconds):"
for n in $HC_NODE_NAMES; do
  echo "    $n:"
  awk -F'\t' '{ printf "      %4d s  %s\n", $1, $2 }' "$d/steps-$n"
done
echo "  data step, in a pod of etcd's image:"; echo "$data_lines" | sed "s/^/    /"
printf '  etcdutl snapshot restore on this machine (the floor of the data step)  %6.1f s\n' "$(cat "$d/floor")"
printf '  kubectl etcd restore, end to end (plan, upload, restore, swap, wait)   %6.1f s\n' "$total"
printf '  of which waits on the kubelet (static pods stopping, starting), slowest node  %d s\n' "$kubelet_max"
beyond=$(awk -v t="$total" -v k="$kubelet_max" 'BEGIN { printf "%.1f", t - k }')
printf '  beyond the kubelet waits: %.1f s (target <= 90); ratio end to end / etcdutl floor %.1f\n' "$beyond" "$(ratio "$total" "$(cat "$d/floor")")"

hack/cluster/restart-kubelet.sh $HC_NODE_NAMES >/dev/null
for _ in $(seq 1 60); do kubectl etcd health >/dev/null 2>&1 && break; sleep 2; done
