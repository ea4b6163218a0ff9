#!/usr/bin/env bash
# Times `kubectl etcd status`, `health` and `members` against the manual
# one-liner `kubectl exec etcd-<node> -c etcd -- etcdctl ... endpoint
# status --cluster -w json`, alternating, ROUNDS times (default 9), and
# prints the medians and each ratio against the target: at most 1.0x the
# one-liner (issue: status no slower than the one-liner). The plugin's
# commands use their default transport (auto: exec first); status over a
# port-forward is printed too, for reference, without a target.
. "$(dirname "$0")/lib.sh"
ROUNDS="${ROUNDS:-9}"
TARGET=1.0
d="$(mktemp -d)"
kubectl etcd status >/dev/null # warm the caches the first run fills
for r in $(seq 1 "$ROUNDS"); do
  timed "$d/manual" kubectl exec -n kube-system "etcd-$NODE1" -c etcd -- etcdctl "${ETCDCTL_TLS[@]}" endpoint status --cluster -w json
  timed "$d/status" kubectl etcd status
  timed "$d/health" kubectl etcd health
  timed "$d/members" kubectl etcd members
  timed "$d/pf" kubectl etcd status --transport port-forward
done
m=$(median "$d/manual" 1)
echo "status benchmark, $ROUNDS rounds alternating, $(echo "$HC_NODE_NAMES" | wc -w) node(s), flavour $HC_FLAVOUR"
printf '  %-58s median %6.3f s\n' "kubectl exec ... etcdctl endpoint status --cluster -w json" "$m"
fail=0
for c in status health members; do
  v=$(median "$d/$c" 1); r=$(ratio "$v" "$m")
  ok=ok; awk -v r="$r" -v t="$TARGET" 'BEGIN { exit !(r > t) }' && { ok=MISSED; fail=1; }
  printf '  %-58s median %6.3f s   ratio %s (target <= %s: %s)\n' "kubectl etcd $c" "$v" "$r" "$TARGET" "$ok"
done
p=$(median "$d/pf" 1)
printf '  %-58s median %6.3f s   ratio %s (no target)\n' "kubectl etcd status --transport port-forward" "$p" "$(ratio "$p" "$m")"
rm -rf "$d"
exit "$fail"
