#!/usr/bin/env bash
# Loads the local cluster's etcd to at least SIZE_MIB (default 512) MiB of
# values under /bench/ (BENCH_DATA=random, the default, or objects: see
# lib.sh), then times `kubectl etcd backup` (its
# default stream, and --via node, plain and --compress s2 and zstd) against
# `etcdctl snapshot save` run inside the node's network namespace against
# 127.0.0.1:2379, and against the same etcdctl on this machine through
# `kubectl port-forward` (the tunnel every remote tool has to use),
# alternating, ROUNDS times (default 5). It also times the floor of any
# tool on a workstation: as many raw bytes as the snapshot has, zeros
# served by a helper pod on the node, through the API server by
# `kubectl port-forward` and by `kubectl exec`, with no etcd, TLS or gRPC
# at either end. Prints the ratios of the medians and the plugin's peak
# RSS. Removes the load afterwards
# (delete, compact, defrag) unless KEEP_LOAD=1.
. "$(dirname "$0")/lib.sh"
ROUNDS="${ROUNDS:-5}"
SIZE_MIB="${SIZE_MIB:-512}"
d="$(mktemp -d /var/tmp/kubectl-etcd-bench.XXXXXX)"
rawpod=kubectl-etcd-bench-raw
cleanup() {
  kubectl -n kube-system delete pod "$rawpod" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  rm -rf "$d" "$BENCH_BIN"
  [ "${KEEP_LOAD:-0}" = 1 ] || unload_etcd
}
trap cleanup EXIT

load_etcd "$SIZE_MIB" "$d"
size=$(db_mib)
echo "DB size: $size MiB"
certs="$HC_STATE_DIR/nodes/n1/etc-kubernetes/pki/etcd"
# A run just before may have left it terminating.
kubectl -n kube-system delete pod "$rawpod" --ignore-not-found --timeout=120s >/dev/null
kubectl -n kube-system run "$rawpod" --image "$HC_TOOLBOX_IMAGE" --image-pull-policy Never --restart Never \
  --labels app.kubernetes.io/managed-by=kubectl-etcd --overrides "{\"spec\":{\"nodeName\":\"$NODE1\"}}" \
  -- nc -ll -p 9000 -e dd if=/dev/zero bs=1M count="$size" >/dev/null
kubectl -n kube-system wait --for=condition=Ready "pod/$rawpod" --timeout=60s >/dev/null
RAW=(kubectl -n kube-system exec "$rawpod" -- sh -c "dd if=/dev/zero bs=1M count=$size 2>/dev/null")
RAWPF=(bash -c 'cat </dev/tcp/127.0.0.1/23800')
pf_port=23799
kubectl -n kube-system port-forward "pod/etcd-$NODE1" "$pf_port:2379" >/dev/null 2>&1 &
pf_pid=$!
kubectl -n kube-system port-forward "pod/$rawpod" 23800:9000 >/dev/null 2>&1 &
rawpf_pid=$!
sleep 2
TUNNEL=("$HC_ETCDCTL" --endpoints "https://127.0.0.1:$pf_port" --cacert "$certs/ca.crt" --cert "$certs/server.crt"
  --key "$certs/server.key" snapshot save)
for r in $(seq 1 "$ROUNDS"); do
  timed "$d/tunnel" "${TUNNEL[@]}" "$d/t$r.db"
  timed "$d/raw" "${RAW[@]}"
  cpu_timed "$d/rawpf" "${RAWPF[@]}"
  # The plugin's runs and etcdctl on the node, in one order on odd rounds
  # and the other on even ones.
  runs=(plugin vianode s2 zstd node)
  [ $((r % 2)) = 1 ] || runs=(node zstd s2 vianode plugin)
  for run in "${runs[@]}"; do
    case "$run" in
      plugin) cpu_timed "$d/plugin" kubectl etcd backup -q "$d/p$r.db" ;;
      vianode) cpu_timed "$d/vianode" kubectl etcd backup -q --via node --member "$NODE1" "$d/v$r.db" ;;
      s2) cpu_timed "$d/s2" kubectl etcd backup -q --via node --compress s2 --member "$NODE1" "$d/s$r.db" ;;
      zstd) cpu_timed "$d/zstd" kubectl etcd backup -q --via node --compress zstd --member "$NODE1" "$d/z$r.db" ;;
      node) timed "$d/node" hack/cluster/node-exec.sh "$NODE1" "$HC_ETCDCTL" "${ETCDCTL_TLS[@]}" snapshot save "$d/n$r.db" ;;
    esac
  done
  zsize=$(stat -c %s "$d/z$r.db"); s2size=$(stat -c %s "$d/s$r.db")
  rm -f "$d"/p$r.db* "$d"/n$r.db* "$d"/t$r.db* "$d"/v$r.db* "$d"/z$r.db* "$d"/s$r.db*
done
kill "$pf_pid" "$rawpf_pid" 2>/dev/null || true
p=$(median "$d/plugin" 1); n=$(median "$d/node" 1); tn=$(median "$d/tunnel" 1); raw=$(median "$d/raw" 1); rawpf=$(median "$d/rawpf" 1); rss=$(maxcol "$d/plugin" 2)
echo "backup benchmark: $ROUNDS rounds, DB $size MiB of $BENCH_DATA values, flavour $HC_FLAVOUR, $(echo "$HC_NODE_NAMES" | wc -w) node(s)"
printf '  etcdctl snapshot save on the node (127.0.0.1:2379)  median %6.2f s\n' "$n"
printf '  etcdctl here through kubectl port-forward            median %6.2f s\n' "$tn"
printf '  raw bytes, as many, through kubectl port-forward     median %6.2f s\n' "$rawpf"
printf '  raw bytes, as many, through kubectl exec             median %6.2f s\n' "$raw"
printf '  kubectl etcd backup from this machine                median %6.2f s\n' "$p"
printf '  kubectl etcd backup --via node                       median %6.2f s\n' "$(median "$d/vianode" 1)"
printf '  kubectl etcd backup --via node --compress s2         median %6.2f s (file %d MiB)\n' "$(median "$d/s2" 1)" $(( s2size / 1048576 ))
printf '  kubectl etcd backup --via node --compress zstd       median %6.2f s (file %d MiB)\n' "$(median "$d/zstd" 1)" $(( zsize / 1048576 ))
printf '  ratio to node-local (target <= 1.25): --via node %.2f, s2 %.2f, zstd %.2f; peak RSS (target <= 64): %d, %d and %d MiB\n' \
  "$(ratio "$(median "$d/vianode" 1)" "$n")" "$(ratio "$(median "$d/s2" 1)" "$n")" "$(ratio "$(median "$d/zstd" 1)" "$n")" \
  $(( $(maxcol "$d/vianode" 2) / 1024 )) $(( $(maxcol "$d/s2" 2) / 1024 )) $(( $(maxcol "$d/zstd" 2) / 1024 ))
printf '  ratio plugin/node-local %.2f (target <= 1.3); plugin/port-forward+etcdctl %.2f; plugin peak RSS %d MiB (target < 100)\n' \
  "$(ratio "$p" "$n")" "$(ratio "$p" "$tn")" $(( rss / 1024 ))
printf '  floor: raw bytes / node-local snapshot %.2f by port-forward, %.2f by exec; plugin / raw port-forward %.2f\n' \
  "$(ratio "$rawpf" "$n")" "$(ratio "$raw" "$n")" "$(ratio "$p" "$rawpf")"
printf '  CPU of the tunnel hops (containerd, kubelet, API server), median: %.2f s for the backup, %.2f s for raw bytes\n' \
  "$(median "$d/plugin.cpu" 1)" "$(median "$d/rawpf.cpu" 1)"
