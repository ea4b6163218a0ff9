#!/usr/bin/env bash
# Smoke test of a running cluster (after up.sh): the etcd image shape of the
# flavour, a privileged toolbox pod on every node that reads the node's etcd
# CA through a hostPath, and `etcdctl snapshot save` run on every node through
# node-exec.sh. Exit status 0 only when every check passed.
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
# shellcheck source=lib.sh
. "$HC_DIR/lib.sh"
HC_SCRIPT=smoke
[ -r "$HC_STATE_FILE" ] || hc_die "no cluster recorded"
k() { "$HC_KUBECTL" --kubeconfig "$HC_KUBECONFIG" "$@"; }
fails=0
ok() { echo "smoke: ok:   $*"; }
bad() { echo "smoke: FAIL: $*"; fails=$((fails + 1)); }
expect() { # description, want (0|1 = succeeds|fails), command...
  local d="$1" want="$2" rc=0; shift 2
  "$@" >/tmp/hc-smoke.out 2>&1 || rc=$?
  # An expected failure must be "not found", not any error (e.g. no API).
  if { [ "$want" = 0 ] && [ "$rc" = 0 ]; } ||
     { [ "$want" = 1 ] && [ "$rc" != 0 ] && grep -qiE 'not found|no such file' /tmp/hc-smoke.out; }; then ok "$d"
  else bad "$d (exit $rc: $(head -c 300 /tmp/hc-smoke.out))"; fi
}

e=(-n kube-system exec etcd-hc-cp1 --)
case "$ETCD_IMAGE_STYLE" in
  shell)
    expect "etcd image ($ETCD_TAG, shell): sh -c 'echo hi'" 0 bash -c "[ \"\$($HC_KUBECTL --kubeconfig $HC_KUBECONFIG ${e[*]} sh -c 'echo hi')\" = hi ]"
    expect "etcd image: no cat inside sh" 1 k "${e[@]}" sh -c 'cat /etc/hostname'
    expect "etcd image: no etcdutl" 1 k "${e[@]}" etcdutl version
    expect "etcd image: etcdctl present" 0 k "${e[@]}" etcdctl version ;;
  distroless)
    expect "etcd image ($ETCD_TAG, distroless): no sh" 1 k "${e[@]}" sh -c 'echo hi'
    expect "etcd image: etcdutl present" 0 k "${e[@]}" etcdutl version
    expect "etcd image: etcdctl present" 0 k "${e[@]}" etcdctl version ;;
esac
expect "etcd image: no tar" 1 k "${e[@]}" tar --version

for node in $HC_NODE_NAMES; do
  pod="hc-smoke-$node"
  k -n kube-system delete pod "$pod" --ignore-not-found --wait=true >/dev/null 2>&1 || true
  k apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $pod, namespace: kube-system}
spec:
  nodeName: $node
  hostNetwork: true
  hostPID: true
  restartPolicy: Never
  tolerations: [{operator: Exists}]
  terminationGracePeriodSeconds: 0
  containers:
  - name: toolbox
    image: $HC_TOOLBOX_IMAGE
    imagePullPolicy: Never
    command: [sleep, "3600"]
    securityContext: {privileged: true}
    volumeMounts: [{name: host, mountPath: /host}]
  volumes: [{name: host, hostPath: {path: /}}]
YAML
  if k -n kube-system wait --for=condition=Ready "pod/$pod" --timeout=60s >/dev/null; then
    want="$("$HC_DIR/node-exec.sh" "$node" sha256sum /etc/kubernetes/pki/etcd/ca.crt | cut -d' ' -f1)"
    got="$(k -n kube-system exec "$pod" -- sh -c 'cat /host/etc/kubernetes/pki/etcd/ca.crt | sha256sum' | cut -d' ' -f1)"
    [ -n "$want" ] && [ "$want" = "$got" ] && ok "toolbox pod on $node reads the node's /etc/kubernetes/pki/etcd/ca.crt" \
      || bad "toolbox pod on $node: ca.crt digest '$got', node has '$want'"
    expect "toolbox pod on $node has tar, dd, stat" 0 k -n kube-system exec "$pod" -- sh -c 'tar --help 2>&1 | head -1; dd if=/dev/null of=/dev/null; stat /host/var/lib/etcd'
  else
    bad "toolbox pod on $node not Ready: $(k -n kube-system get pod "$pod" -o wide 2>&1 | tail -1)"
  fi
  k -n kube-system delete pod "$pod" --wait=false >/dev/null 2>&1 || true

  snap="/tmp/hc-smoke-$node.db"; rm -f "$snap"
  expect "node-exec $node: etcdctl snapshot save via 127.0.0.1:2379" 0 "$HC_DIR/node-exec.sh" "$node" \
    "$HC_ETCDCTL" --endpoints https://127.0.0.1:2379 --cacert /etc/kubernetes/pki/etcd/ca.crt \
    --cert /etc/kubernetes/pki/etcd/server.crt --key /etc/kubernetes/pki/etcd/server.key snapshot save "$snap"
  expect "etcdutl snapshot status $snap" 0 "$HC_ETCDUTL" snapshot status "$snap" -w json
  rm -f "$snap"
done
[ "$fails" = 0 ] && echo "smoke: all checks passed" || { echo "smoke: $fails check(s) failed"; exit 1; }
