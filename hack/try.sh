#!/usr/bin/env bash
# Try kubectl-etcd: bring up a real single-node kubeadm control plane on
# this machine (hack/cluster), build the plugin, and run backup, members,
# health and status against it as a user would.
#
#   HC_FLAVOUR=1.33|1.36|1.37 (default 1.33)   HC_NODES=1|3 (default 1)
# Tear down with: hack/cluster/down.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
# shellcheck source=thp.sh
. hack/thp.sh
thp_always
trap thp_restore EXIT
hack/cluster/prereqs.sh
hack/cluster/build.sh
thp_restore
if ! hack/cluster/check.sh >/dev/null 2>&1 || ! grep -q "HC_FLAVOUR='${HC_FLAVOUR:-1.33}'" /var/lib/hackcluster/state.env \
   || ! grep -q "HC_NODES='${HC_NODES:-1}'" /var/lib/hackcluster/state.env; then
  hack/cluster/up.sh
fi
# shellcheck source=cluster/env.sh
. hack/cluster/env.sh
mkdir -p bin
go build -o bin/kubectl-etcd ./cmd/kubectl-etcd
ln -sf "$HC_KUBECTL" bin/kubectl
export PATH="$PWD/bin:$PATH" KUBECONFIG="$HC_KUBECONFIG" KUBECTL_ETCD_IMAGE="$HC_TOOLBOX_IMAGE"

run() { echo; echo "\$ $*"; "$@"; }
run kubectl etcd members
run kubectl etcd health
run kubectl etcd status
mkdir -p _out
run kubectl etcd backup "_out/etcd-$(date -u +%Y%m%dT%H%M%SZ).db"
run kubectl etcd snapshot inspect "$(ls -t _out/*.db | head -1)" --top 8
echo
echo "The cluster is still up. Use it with:"
echo "  export PATH=$PWD/bin:\$PATH KUBECONFIG=$HC_KUBECONFIG KUBECTL_ETCD_IMAGE=$HC_TOOLBOX_IMAGE"
echo "Tear it down with: hack/cluster/down.sh"
