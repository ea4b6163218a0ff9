#!/usr/bin/env bash
# Times `kubectl etcd status` (exec and port-forward transports) against the
# manual `kubectl exec etcd-<node> -- etcdctl ... endpoint status --cluster`,
# alternating, ROUNDS times (default 7), and prints the medians and ratios.
. "$(dirname "$0")/lib.sh"
ROUNDS="${ROUNDS:-7}"
d="$(mktemp -d)"
for r in $(seq 1 "$ROUNDS"); do
  timed "$d/manual" kubectl exec -n kube-system "etcd-$NODE1" -c etcd -- etcdctl "${ETCDCTL_TLS[@]}" endpoint status --cluster -w json
  timed "$d/exec" kubectl etcd status --transport exec
  timed "$d/pf" kubectl etcd status --transport port-forward
done
m=$(median "$d/manual" 1); e=$(median "$d/exec" 1); p=$(median "$d/pf" 1)
echo "status benchmark, $ROUNDS rounds, $(echo "$HC_NODE_NAMES" | wc -w) node(s), flavour $HC_FLAVOUR"
printf '  kubectl exec ... etcdctl endpoint status --cluster   median %6.2f s\n' "$m"
printf '  kubectl etcd status --transport exec                 median %6.2f s   ratio %.2f\n' "$e" "$(ratio "$e" "$m")"
printf '  kubectl etcd status --transport port-forward         median %6.2f s   ratio %.2f\n' "$p" "$(ratio "$p" "$m")"
rm -rf "$d"
