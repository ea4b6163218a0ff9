#!/usr/bin/env bash
# Release checks, in two sizes.
#
#   hack/release/check.sh          CI-sized (what hack/test.sh and CI run)
#   hack/release/check.sh --full   the release check (run before tagging,
#                                  and by .github/workflows/release.yml)
#
# Both: actionlint passes .github/workflows, the goreleaser config is
# valid, a snapshot release builds archives into dist/ (not the image,
# which needs docker buildx: the release builds it), and the krew
# manifest rendered from deploy/krew/etcd.yaml passes krew's rules and
# matches the archives built (sha256, files, bin), with this machine's
# build run as "kubectl etcd", and the caveats' completion step run in a
# krew layout.
#
# CI-sized: goreleaser builds this machine's archive alone (linux/amd64,
# with both Linux agents, which every archive holds) from a narrowed copy
# of .goreleaser.yaml, the manifest's other platforms are rendered with a
# placeholder sha256 and skipped (krew-manifest -partial), and darwin and
# windows are type-checked from source (hack/release/typecheck) instead of
# built.
#
# --full: every archive (linux, darwin, windows on amd64 and arm64), all
# six checked against the manifest; then a second, smaller build from a
# LICENSE with another mtime and mode must give the same archive sha256s
# (reproducible archives).
#
# goreleaser and actionlint are pinned in hack/tools/ and built once into
# $KUBECTL_ETCD_TOOLS (default ~/.cache/kubectl-etcd/tools), outside the
# checkout, so that every clone on the machine shares them.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The flags hack/test.sh builds with, and goreleaser's (.goreleaser.yaml):
# the build cache the tests filled serves the snapshot build.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath"
tools="${KUBECTL_ETCD_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-etcd/tools}"

case "${1:-}" in
"") full=false ;;
--full) full=true ;;
*)
  echo "usage: hack/release/check.sh [--full]" >&2
  exit 2
  ;;
esac

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

# tool VAR DIR PKG: sets VAR to the binary of PKG pinned by hack/tools/DIR,
# building it on first use. Keyed by go.sum and the build flags, so that
# bumping a pin or changing the flags rebuilds it. The flags make a cold
# build of goreleaser cheaper (measured: 500 CPU-seconds instead of 700, and
# no slower to run): no inlining and no DWARF (-gcflags), no symbol table
# (-s -w, which also makes it link in 10 seconds instead of 16).
tool_flags=(-gcflags='all=-l -dwarf=false' -ldflags='-s -w')
tool() {
  local var=$1 dir=$2 pkg=$3 bin
  bin="$tools/$dir-$({ cat "hack/tools/$dir/go.sum"; echo "${tool_flags[*]}"; } | sha256sum | cut -c1-12)"
  if [ ! -x "$bin" ]; then
    stamp "building $dir from hack/tools/$dir (first run only)"
    mkdir -p "$tools"
    # One compiler thread per package, as hack/cluster/build.sh builds.
    GOMAXPROCS=1 go build -C "hack/tools/$dir" -p "$(nproc)" "${tool_flags[@]}" -o "$bin.tmp.$$" "$pkg"
    mv "$bin.tmp.$$" "$bin"
  fi
  printf -v "$var" %s "$bin"
}

tool actionlint actionlint github.com/rhysd/actionlint/cmd/actionlint
tool goreleaser goreleaser github.com/goreleaser/goreleaser/v2

# Without shellcheck and pyflakes, which it would run when they are on
# PATH: the verdict must not depend on the machine.
stamp "actionlint .github/workflows"
"$actionlint" -shellcheck= -pyflakes= .github/workflows/*.yml

stamp "goreleaser check"
"$goreleaser" check

# narrow GOOS GOARCH DIST OUT writes .goreleaser.yaml to OUT with the
# plugin's two builds cut down to GOOS x GOARCH (goreleaser's list syntax),
# its output in DIST and the archives' agents taken from there. The agent
# build names its targets, so it keeps both.
narrow() {
  local goos=$1 goarch=$2 dist=$3 out=$4
  sed -e "s/^    goos: \[linux, darwin, windows\]\$/    goos: [$goos]/" \
    -e "s/^    goarch: \[amd64, arm64\]\$/    goarch: [$goarch]/" \
    -e "s|^      - src: dist/agent/|      - src: $dist/agent/|" .goreleaser.yaml >"$out"
  echo "dist: $dist" >>"$out"
  if [ "$(grep -cxF "    goos: [$goos]" "$out")" != 2 ] ||
    [ "$(grep -cxF "    goarch: [$goarch]" "$out")" != 2 ] ||
    [ "$(grep -c "^      - src: $dist/agent/" "$out")" != 1 ]; then
    echo "check.sh: could not narrow the builds' goos/goarch lines, or move the agents' src, in .goreleaser.yaml; update the sed in narrow()" >&2
    exit 1
  fi
}

# goreleaser reads the commit and date from git, and gives up on all of it
# when there is no remote; lend it one for this run only.
if ! git remote get-url origin >/dev/null 2>&1; then
  export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url \
    GIT_CONFIG_VALUE_0=https://github.com/kubectl-etcd/kubectl-etcd.git
fi
# Not the image (.goreleaser.yaml's dockers_v2): building it needs docker
# buildx, which CI and this machine need not have, and it holds nothing
# but the binary the archives hold; the release builds and pushes it.
# goreleaser check above has read its settings, and pkg/schedule's
# TestDefaultImageIsReleased checks its tags against the plugin's.
skip=(--skip=docker)
# One build at a time: with several, the binaries enter each archive in
# the order their builds finish, and the archive sha256s change from run
# to run. Releases are built the same way (--parallelism 1).
if $full; then
  stamp "goreleaser release --snapshot (6 platforms)"
  "$goreleaser" release --snapshot --clean --parallelism 1 "${skip[@]}"
  partial=()
else
  # Outside dist/, which --clean empties.
  ci_config=$(mktemp -t kubectl-etcd-goreleaser.XXXXXX.yaml)
  trap 'rm -f "$ci_config"' EXIT
  narrow linux amd64 dist "$ci_config"
  stamp "goreleaser release --snapshot (linux/amd64 and both agents; --full builds all 6 platforms)"
  "$goreleaser" release --snapshot --clean --parallelism 1 "${skip[@]}" --config "$ci_config"
  partial=(-partial)
fi

stamp "rendering the krew manifest from dist/"
go run ./hack/release/krew-manifest -template deploy/krew/etcd.yaml -dist dist -o dist/krew/etcd.yaml "${partial[@]}"

stamp "checking the manifest against the archives and running kubectl etcd"
go test -tags release -count=1 ./hack/release/krew-manifest -run TestReleaseArchives -args -dist "$PWD/dist" "${partial[@]}"

if ! $full; then
  # The operating systems not built: every package the binaries import
  # must still type-check there (build tags, syscalls). From source, not
  # with go vet or go build, which compile every dependency for the
  # platform first: 20 to 30 times the time, cold.
  stamp "type-checking ./cmd/... ./pkg/... for darwin/arm64 and windows/amd64"
  go run -C hack/release/typecheck . -dir "$PWD" -platforms darwin/arm64,windows/amd64 ./cmd/... ./pkg/...
  stamp "release checks (CI-sized) passed; hack/release/check.sh --full builds all 6 platforms"
  exit 0
fi

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
narrow "linux, windows" amd64 "$repro/dist" "$repro/goreleaser.yaml"
"$goreleaser" release --snapshot --clean --parallelism 1 "${skip[@]}" --config "$repro/goreleaser.yaml" >"$repro/goreleaser.log" 2>&1 ||
  { cat "$repro/goreleaser.log"; exit 1; }
restore_license
trap - EXIT
# Both builds stamp the commit HEAD was at; one committed in between (from
# another shell in this checkout) changes every binary.
commit_of() { grep -o '"commit":"[0-9a-f]*"' "$1/metadata.json"; }
if [ "$(commit_of dist)" != "$(commit_of "$repro/dist")" ]; then
  echo "check.sh: HEAD moved between the two builds ($(commit_of dist), then $(commit_of "$repro/dist")), so their archives cannot be compared; run the check again" >&2
  exit 1
fi
echo "first build (dist/checksums.txt) and second build ($repro/dist/checksums.txt):"
grep -F -f <(cut -d' ' -f3 "$repro/dist/checksums.txt") dist/checksums.txt
cat "$repro/dist/checksums.txt"
if [ "$(wc -l <"$repro/dist/checksums.txt")" -ne 2 ] || grep -vxF -f dist/checksums.txt "$repro/dist/checksums.txt"; then
  echo "check.sh: the archives above differ between the two builds: something in them depends on the checkout" >&2
  exit 1
fi

stamp "release checks (--full) passed"
