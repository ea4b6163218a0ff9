#!/usr/bin/env bash
# Release checks: the goreleaser config is valid, a snapshot release builds
# every archive into dist/, and the krew manifest rendered from
# deploy/krew/etcd.yaml passes krew's rules and matches those archives
# (sha256, files, bin), with this machine's build run as "kubectl etcd".
#
# goreleaser is pinned in hack/tools/goreleaser and built once into
# $KUBECTL_ETCD_TOOLS (default ~/.cache/kubectl-etcd/tools).
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
tools="${KUBECTL_ETCD_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-etcd/tools}"
start=$(date +%s)
step_start=$start
stamp() {
  local now; now=$(date +%s)
  echo "=== release [+$(( now - start ))s, previous step $(( now - step_start ))s] $*"
  step_start=$now
}

# Keyed by go.sum, so that bumping the pin rebuilds it.
sum=$(sha256sum hack/tools/goreleaser/go.sum | cut -c1-12)
goreleaser="$tools/goreleaser-$sum"
if [ ! -x "$goreleaser" ]; then
  stamp "building goreleaser (first run only, a few minutes)"
  mkdir -p "$tools"
  go build -C hack/tools/goreleaser -o "$goreleaser.tmp" github.com/goreleaser/goreleaser/v2
  mv "$goreleaser.tmp" "$goreleaser"
fi

stamp "goreleaser check"
"$goreleaser" check

# goreleaser reads the commit and date from git, and gives up on all of it
# when there is no remote; lend it one for this run only.
if ! git remote get-url origin >/dev/null 2>&1; then
  export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url \
    GIT_CONFIG_VALUE_0=https://github.com/kubectl-etcd/kubectl-etcd.git
fi
stamp "goreleaser release --snapshot (6 platforms)"
"$goreleaser" release --snapshot --clean --parallelism 2

stamp "rendering the krew manifest from dist/"
go run ./hack/release/krew-manifest -template deploy/krew/etcd.yaml -dist dist -o dist/krew/etcd.yaml

stamp "checking the manifest against the archives and running kubectl etcd"
go test -tags release -count=1 ./hack/release/krew-manifest -run TestReleaseArchives -args -dist "$PWD/dist"

stamp "release checks passed"
