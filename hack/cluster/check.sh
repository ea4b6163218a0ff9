#!/usr/bin/env bash
# Exit 0 only when the cluster recorded by up.sh is up: all nodes Ready, all
# control-plane pods Ready, every etcd member started (no learners) and
# healthy. Prints what is wrong otherwise.
#   HC_CHECK_WAIT=<seconds>  keep retrying that long before failing (default 0)
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
# shellcheck source=lib.sh
. "$HC_DIR/lib.sh"
HC_SCRIPT=check

[ -r "$HC_STATE_FILE" ] || { echo "check: no cluster recorded ($HC_STATE_FILE missing)"; exit 1; }
[ -r "$HC_KUBECONFIG" ] || { echo "check: $HC_KUBECONFIG missing"; exit 1; }
n="${HC_NODES_UP:?}"
deadline=$(( $(date +%s) + ${HC_CHECK_WAIT:-0} ))
procs_ok() {
  local i d rc=0
  for i in $(seq 1 "$n"); do
    for d in holder containerd kubelet; do
      hc_pid "$d" "$i" >/dev/null || { echo "node hc-cp$i: $d not running (PID file $HC_PID_DIR/$d-n$i)"; rc=1; }
    done
  done
  return "$rc"
}
until msg="$(procs_ok && hc_check "$n" "$HC_KUBECONFIG" 2>&1)"; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "$msg" | sed 's/^/check: /'
    echo "check: FAILED (flavour $HC_FLAVOUR, $n node(s))"
    exit 1
  fi
  sleep 2
done
echo "check: OK: flavour $HC_FLAVOUR (kubernetes $K8S_VERSION, etcd $ETCD_TAG), $n node(s) Ready: $HC_NODE_NAMES; $((4 * n)) control-plane pods Ready; $n etcd members started and healthy; RSS $(hc_rss_mib) MiB"
