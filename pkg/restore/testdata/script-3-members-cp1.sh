#!/bin/sh
# kubectl etcd restore 20260102T030405Z: node cp1, member cp1.
# Written by `kubectl etcd restore --script-dir` from etcd.db (revision 5000).
#
# Run as root on node cp1, at about the same time as the other nodes' scripts:
#   sh restore-cp1.sh
# The snapshot is read from $SNAPSHOT, else from snapshot.db beside this script.
#
# Steps on this node:
#   1. check the snapshot's and the agent's sha256; refuse if this node's etcd manifest names another member
#   2. stage the agent under /var/lib/kubectl-etcd/bin and the snapshot in /var/lib/kubectl-etcd/restore/20260102T030405Z
#   3. start the node's agent as the static pod /etc/kubernetes/manifests/kubectl-etcd-agent-20260102t030405z-run.yaml, which runs etcd's own image
#   4. restore the snapshot into the new data dir (with etcdutl from etcd's own image, etcdctl on 3.5; nothing is stopped yet)
#   5. stop kube-apiserver: move /etc/kubernetes/manifests/kube-apiserver.yaml to /var/lib/kubectl-etcd/restore/20260102T030405Z/manifests/kube-apiserver.yaml
#   6. stop kube-controller-manager: move /etc/kubernetes/manifests/kube-controller-manager.yaml to /var/lib/kubectl-etcd/restore/20260102T030405Z/manifests/kube-controller-manager.yaml
#   7. stop kube-scheduler: move /etc/kubernetes/manifests/kube-scheduler.yaml to /var/lib/kubectl-etcd/restore/20260102T030405Z/manifests/kube-scheduler.yaml
#   8. wait until kube-apiserver is gone (its port refuses)
#   9. stop etcd: move /etc/kubernetes/manifests/etcd.yaml to /var/lib/kubectl-etcd/restore/20260102T030405Z/manifests/etcd.yaml
#   10. wait until etcd is gone (its client, peer and metrics ports refuse)
#   11. wait until every member is ready to swap (the agents ask each other over etcd's peer TLS, this one on 10.250.1.11:2382: every member swaps, or every member rolls back)  <- point of no return
#   12. start etcd on the restored data: write /etc/kubernetes/manifests/etcd.yaml (etcd's manifest with --data-dir, mountPath and hostPath /var/lib/etcd-restore-20260102T030405Z)
#   13. wait until the member is healthy (at most 5m0s; it needs a quorum of members: the other nodes' steps)
#   14. start kube-apiserver: move /var/lib/kubectl-etcd/restore/20260102T030405Z/manifests/kube-apiserver.yaml to /etc/kubernetes/manifests/kube-apiserver.yaml
#   15. start kube-controller-manager: move /var/lib/kubectl-etcd/restore/20260102T030405Z/manifests/kube-controller-manager.yaml to /etc/kubernetes/manifests/kube-controller-manager.yaml
#   16. start kube-scheduler: move /var/lib/kubectl-etcd/restore/20260102T030405Z/manifests/kube-scheduler.yaml to /etc/kubernetes/manifests/kube-scheduler.yaml
#   17. mark the journal done, and take the agent's static pod out
set -eu

ID='20260102T030405Z'
JOURNAL='/var/lib/kubectl-etcd/restore/20260102T030405Z'
STAGED='/var/lib/kubectl-etcd/restore/20260102T030405Z/snapshot.db'
SNAPSHOT_SHA256='<sha256>'
AGENT_SHA256_amd64='<sha256>'
AGENT_SHA256_arm64=''

die() { echo "restore-cp1.sh: $*" >&2; exit 1; }
sum() { sha256sum "$1" | cut -d' ' -f1; }

here=$(cd "$(dirname "$0")" && pwd)
SNAPSHOT=${SNAPSHOT:-$here/snapshot.db}
[ "$(id -u)" = 0 ] || die "run me as root: I stop and start the control plane's static pods"
case "$(uname -m)" in
  x86_64|amd64) arch=amd64; want=$AGENT_SHA256_amd64 ;;
  aarch64|arm64) arch=arm64; want=$AGENT_SHA256_arm64 ;;
  *) die "this node is $(uname -m); the agent is built for amd64 and arm64 only" ;;
esac
[ -n "$want" ] || die "no agent for linux/$arch in $here: rerun kubectl etcd restore --script-dir with kubectl-etcd-agent-linux-$arch in --agent-dir"
agent=$here/kubectl-etcd-agent-linux-$arch
[ "$(sum "$agent")" = "$want" ] || die "$agent does not have the sha256 $want: copy the script dir again"
bin=/var/lib/kubectl-etcd/bin/$want

if [ -e "$JOURNAL/journal.json" ]; then
  echo "restore $ID has already started on this node; following it (Ctrl-C is safe):"
  exec "$bin" restore wait --root / --id "$ID"
fi
[ -n "$SNAPSHOT" ] && [ -f "$SNAPSHOT" ] || die "no snapshot at '$SNAPSHOT': pass SNAPSHOT=/path/to/the/plain/snapshot.db"
echo "checking the snapshot's sha256..."
[ "$(sum "$SNAPSHOT")" = "$SNAPSHOT_SHA256" ] || die "$SNAPSHOT does not have the sha256 $SNAPSHOT_SHA256: it is not the snapshot that was planned"

# The staged copy is the snapshot's plaintext: 0600 in 0700 dirs from its
# first byte, and removed by the agent once the data is restored from it.
umask 077
mkdir -p /var/lib/kubectl-etcd/bin "$JOURNAL"
chmod 0700 "$(dirname "$JOURNAL")" "$JOURNAL"
if [ ! -x "$bin" ] || [ "$(sum "$bin")" != "$want" ]; then
  cp "$agent" "$bin.part" && chmod 0755 "$bin.part" && mv -f "$bin.part" "$bin"
fi
if [ ! -f "$STAGED" ] || [ "$(sum "$STAGED")" != "$SNAPSHOT_SHA256" ]; then
  cp "$SNAPSHOT" "$STAGED.part" && chmod 0600 "$STAGED.part" && mv -f "$STAGED.part" "$STAGED"
fi

# Without quorum, a kubelet whose API server hangs can take minutes to
# start a static pod.
"$bin" restore start --root / --handover-timeout 10m --spec - <<'SPEC'
{
  "id": "20260102T030405Z",
  "node": "cp1",
  "member": "cp1",
  "staticPodDir": "/etc/kubernetes/manifests",
  "journalDir": "/var/lib/kubectl-etcd/restore/20260102T030405Z",
  "oldDataDir": "/var/lib/etcd",
  "newDataDir": "/var/lib/etcd-restore-20260102T030405Z",
  "barrier": {
    "addr": "10.250.1.11:2382",
    "peers": [
      {
        "member": "cp2",
        "addr": "10.250.1.12:2382"
      },
      {
        "member": "cp3",
        "addr": "10.250.1.13:2382"
      }
    ],
    "timeout": "10m0s"
  },
  "agentImage": "registry.k8s.io/etcd:3.7.0-0",
  "snapshotRestore": {
    "snapshot": "/var/lib/kubectl-etcd/restore/20260102T030405Z/snapshot.db",
    "sha256": "<sha256>",
    "flags": [
      "--name=cp1",
      "--initial-cluster=cp1=https://10.250.1.11:2380,cp2=https://10.250.1.12:2380,cp3=https://10.250.1.13:2380",
      "--initial-cluster-token=kubectl-etcd-restore-20260102t030405z",
      "--initial-advertise-peer-urls=https://10.250.1.11:2380",
      "--bump-revision=1012000",
      "--mark-compacted"
    ]
  }
}
SPEC
echo "the agent runs the restore in a static pod; following it (Ctrl-C is safe: the node carries on):"
exec "$bin" restore wait --root / --id "$ID"
