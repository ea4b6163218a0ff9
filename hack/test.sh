#!/usr/bin/env bash
# The whole test suite: unit and integration tests (real multi-member TLS
# etcd in-process), the release checks, then the end-to-end suite against a
# real local kubeadm control plane, per flavour and topology.
#
#   E2E_FLAVOURS="1.33 1.37"   flavours to run (1.36 also works)
#   E2E_TOPOLOGIES="1 3"       control-plane node counts
#   E2E=0                      skip the e2e part (unit + integration only)
#
# Needs root for the cluster (network namespaces, containerd, kubelet).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
FLAVOURS="${E2E_FLAVOURS:-1.33 1.37}"
TOPOLOGIES="${E2E_TOPOLOGIES:-1 3}"
start=$(date +%s)
stamp() { echo "=== [$(( $(date +%s) - start ))s] $*"; }

stamp "unit and integration tests"
go vet ./...
go test -count=1 -timeout 20m ./...

release_checks() {
  stamp "release checks (goreleaser, krew manifest)"
  hack/release/check.sh
}

if [ "${E2E:-1}" = 0 ]; then
  release_checks
  stamp "E2E=0: end-to-end suite not run"
  exit 0
fi

stamp "cluster prerequisites"
hack/cluster/prereqs.sh
# The release test runs the plugin through a real kubectl: build the
# flavours first so that one is there even where the machine has none.
for flavour in $FLAVOURS; do
  stamp "building flavour $flavour"
  HC_FLAVOUR="$flavour" hack/cluster/build.sh
done
release_checks
trap 'stamp "tearing the cluster down"; hack/cluster/down.sh >/dev/null 2>&1 || true' EXIT
for flavour in $FLAVOURS; do
  for n in $TOPOLOGIES; do
    stamp "e2e: flavour $flavour, $n control-plane node(s)"
    # TestMain brings up the cluster (up.sh) when the running one differs.
    set +e
    E2E_FLAVOUR="$flavour" E2E_NODES="$n" go test -tags e2e -count=1 -timeout 30m -v ./test/e2e 2>&1 \
      | tee "/tmp/kubectl-etcd-e2e-$flavour-$n.log" | grep -E '^(=== RUN|\s*--- |PASS|FAIL|ok |e2e:)'
    status=${PIPESTATUS[0]}
    set -e
    if [ "$status" -ne 0 ]; then
      echo "e2e FAILED for flavour $flavour, $n node(s); full log: /tmp/kubectl-etcd-e2e-$flavour-$n.log"
      tail -150 "/tmp/kubectl-etcd-e2e-$flavour-$n.log"
      exit 1
    fi
  done
done
stamp "all tests passed"
