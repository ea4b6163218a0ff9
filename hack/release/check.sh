#!/usr/bin/env bash
# Release checks: the goreleaser config is valid, a snapshot release builds
# every archive into dist/, and the krew manifest rendered from
# deploy/krew/etcd.yaml passes krew's rules and matches those archives
# (sha256, files, bin), with this machine's build run as "kubectl etcd",
# and the caveats' completion step run in a krew layout; then a second,
# smaller build from a LICENSE with another mtime and mode must give the
# same archive sha256s (reproducible archives).
#
# goreleaser is pinned in hack/tools/goreleaser and built once into
# $KUBECTL_ETCD_TOOLS (default ~/.cache/kubectl-etcd/tools).
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
tools="${KUBECTL_ETCD_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-etcd/tools}"

# One run at a time per checkout: goreleaser --clean wipes and refills
# dist/, so a second run beside the first (two CI jobs in one clone) trips
# over its archives ("archive named dist/... already exists") or deletes
# them under it. The lock lives in .git, which --clean leaves alone.
if command -v flock >/dev/null; then
  exec 9>"$(git rev-parse --git-dir)/kubectl-etcd-release.lock"
  if ! flock -n 9; then
    echo "check.sh: another hack/release/check.sh is running in this checkout (it shares dist/); waiting for it" >&2
    flock 9
  fi
fi

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
# One build at a time: with several, the binaries enter each archive in
# the order their builds finish, and the archive sha256s change from run
# to run. Releases are built the same way (--parallelism 1).
stamp "goreleaser release --snapshot (6 platforms)"
"$goreleaser" release --snapshot --clean --parallelism 1

stamp "rendering the krew manifest from dist/"
go run ./hack/release/krew-manifest -template deploy/krew/etcd.yaml -dist dist -o dist/krew/etcd.yaml

stamp "checking the manifest against the archives and running kubectl etcd"
go test -tags release -count=1 ./hack/release/krew-manifest -run TestReleaseArchives -args -dist "$PWD/dist"

# A second checkout differs in the files' mtimes and, with another umask, in
# their modes; the binaries are rebuilt, so only the archived LICENSE can
# carry either. Give it both, build one tar.gz and one zip (a third of the
# first build's links, plus both agents, which every archive holds), and
# compare their sha256s with the first build's.
stamp "reproducibility: rebuilding linux/amd64 and windows/amd64 from a LICENSE with another mtime and mode"
repro=dist/repro
mkdir -p "$repro"
touch -r LICENSE "$repro/LICENSE.mtime"
group_writable=$(find LICENSE -perm -g+w)
restore_license() {
  touch -r "$repro/LICENSE.mtime" LICENSE
  [ -n "$group_writable" ] || chmod g-w LICENSE
}
trap restore_license EXIT
touch -t 200001020304 LICENSE
chmod g+w LICENSE
sed -e 's/^    goos: \[linux, darwin, windows\]$/    goos: [linux, windows]/' \
  -e 's/^    goarch: \[amd64, arm64\]$/    goarch: [amd64]/' \
  -e "s|^      - src: dist/agent/|      - src: $repro/dist/agent/|" .goreleaser.yaml >"$repro/goreleaser.yaml"
echo "dist: $repro/dist" >>"$repro/goreleaser.yaml"
if [ "$(grep -c '^    goarch: \[amd64\]$' "$repro/goreleaser.yaml")" != 2 ] ||
  [ "$(grep -c "^      - src: $repro/dist/agent/" "$repro/goreleaser.yaml")" != 1 ]; then
  echo "check.sh: could not narrow the builds' goos/goarch lines, or move the agents' src, in .goreleaser.yaml; update the sed above" >&2
  exit 1
fi
"$goreleaser" release --snapshot --clean --parallelism 1 --config "$repro/goreleaser.yaml" >"$repro/goreleaser.log" 2>&1 ||
  { cat "$repro/goreleaser.log"; exit 1; }
restore_license
trap - EXIT
echo "first build (dist/checksums.txt) and second build ($repro/dist/checksums.txt):"
grep -F -f <(cut -d' ' -f3 "$repro/dist/checksums.txt") dist/checksums.txt
cat "$repro/dist/checksums.txt"
if [ "$(wc -l <"$repro/dist/checksums.txt")" -ne 2 ] || grep -vxF -f dist/checksums.txt "$repro/dist/checksums.txt"; then
  echo "check.sh: the archives above differ between the two builds: something in them depends on the checkout" >&2
  exit 1
fi

stamp "release checks passed"
