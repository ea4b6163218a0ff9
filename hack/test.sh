#!/usr/bin/env bash
# The whole test suite: vet, unit and integration tests (real multi-member
# TLS etcd in-process), the release checks, then the end-to-end suite
# against a real local kubeadm control plane, one pair of flavour and
# topology at a time. Ends with a table of each stage's time, the slowest
# e2e tests, and where each e2e scenario passed.
#
#   E2E_MATRIX=pairwise  (default, CI's) the diagonal: 1.33 with 1 node and
#                        1.37 with 3 nodes; the read-only scenarios on both,
#                        each destructive one on one of them, every family on
#                        both (test/e2e/matrix.go says what runs where)
#   E2E_MATRIX=full      every scenario on every pair it can run on, the two
#                        pairs off the diagonal too: run it before resolving
#                        work on transports, discovery, restore or the agent
#   E2E_PAIRS="1.33/3"   the pairs to run (default: the diagonal under
#                        pairwise, all four under full; the smoke scenarios
#                        run on an off-diagonal pair named here)
#   E2E=0                unit, integration and release checks only
#   RELEASE_CHECK=full   the six-platform release check (default: CI's)
#
# The builds are CPU-bound and the e2e runs mostly wait on the cluster, so
# two chains run in the background while the e2e runs go on in the
# foreground: the flavours, in the order the e2e runs need them, then the
# release checks (nice 10); and vet (nice 19), then the unit and
# integration tests (nice 10). A cold run is bound by its two cores until
# the last flavour is built; after that only its last pair's cluster and
# the release checks would use them. So vet takes only the CPU the builds
# leave, and the unit tests, which bound time, start when the flavours
# are built (at once when they are cached) and share the tail with the
# release checks: measured cold, at nice 15 beside the builds the checks
# took a quarter of their CPU and were done long before the last one.
# Every unit test bounds time generously enough to pass on a loaded
# machine. The suite stops at the first failure of either chain.
#
# versitygw, the S3 server that the integration tests (internal/s3test)
# and the schedule's e2e scenario start, is a third background step, from
# the first second: `go install` of the pinned version when no versitygw
# of that version is found where s3test looks, into the tools dir
# hack/release/check.sh keeps. VERSITYGW names it to every test. Cold it
# downloads 340 MB of modules and compiles for about 190 CPU-seconds
# (measured: 3 min 57 s on 2 cores under a load of 6 to 9, at nice 10);
# the unit tests and the first e2e run wait for it.
#
# Needs root for the cluster (network namespaces, containerd, kubelet).
set -euo pipefail
cd "$(dirname "$0")/.."
# Every build here as the release builds (and the e2e suite's plugin and
# agent) are built: static and with trimmed paths. One set of flags means
# one compile of each dependency in the build cache; with vet and the unit
# tests on Go's defaults, a cold run compiled the plugin's dependencies
# twice (measured: 356 CPU-seconds more; a cold run uses about 6200).
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath"
# shellcheck source=thp.sh
. hack/thp.sh
MATRIX="${E2E_MATRIX:-pairwise}"
case "$MATRIX" in pairwise | full) ;; *) echo "test.sh: E2E_MATRIX=$MATRIX: want pairwise or full" >&2; exit 2 ;; esac
if [ "$MATRIX" = full ]; then
  PAIRS="${E2E_PAIRS:-1.33/1 1.33/3 1.37/3 1.37/1}"
else
  PAIRS="${E2E_PAIRS:-1.33/1 1.37/3}"
fi
FLAVOURS="$(for p in $PAIRS; do echo "${p%/*}"; done | awk '!seen[$0]++' | tr '\n' ' ')"
# The versitygw the tests start: pinned as internal/s3test.Install
# says. A VERSITYGW of your own is used as it is.
VERSITYGW_PKG=github.com/versity/versitygw/cmd/versitygw
VERSITYGW_VERSION=v1.8.0
TOOLS="${KUBECTL_ETCD_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-etcd/tools}"
# versitygw_pinned FILE: FILE is a whole versitygw of the pinned version
# (go version -m reads the module versions a Go binary was built from).
versitygw_pinned() {
  go version -m "$1" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+github.com/versity/versitygw[[:space:]]+$VERSITYGW_VERSION([[:space:]]|\$)"
}
VERSITYGW_OURS=0
if [ -z "${VERSITYGW:-}" ]; then
  # Where s3test looks: PATH, ~/go/bin, GOPATH's bin.
  for c in "$(command -v versitygw || true)" "$HOME/go/bin/versitygw" "$(go env GOPATH | cut -d: -f1)/bin/versitygw"; do
    if [ -n "$c" ] && versitygw_pinned "$c"; then VERSITYGW="$c"; break; fi
  done
  if [ -z "${VERSITYGW:-}" ]; then VERSITYGW="$TOOLS/versitygw-$VERSITYGW_VERSION/versitygw" VERSITYGW_OURS=1; fi
fi
export VERSITYGW
REPORT="${TEST_REPORT_DIR:-$(mktemp -d /tmp/kubectl-etcd-test.XXXXXX)}"
mkdir -p "$REPORT"
rm -f "$REPORT"/*.rc "$REPORT"/*.log "$REPORT"/*.cpu
: >"$REPORT/stages.tsv"
head -1 /proc/stat >"$REPORT/cpu.start"
start=$(date +%s)
stamp() { echo "=== [$(( $(date +%s) - start ))s] $*"; }

# record NAME START RC [CPU]: one line of the stage table; CPU is the
# user and system seconds a background step used.
record() {
  local result=ok
  [ "$3" = 0 ] || result="FAILED (exit $3)"
  printf '%s\t%s\t%s\t%s%s\n' "$1" "$2" "$(date +%s)" "$result" "${4:+$'\t'$4}" >>"$REPORT/stages.tsv"
}

# stage NAME CMD...: runs CMD in the foreground as a stage; stops the suite
# when it fails.
stage() {
  local name="$1" s rc=0
  shift
  stamp "$name"
  s=$(date +%s)
  "$@" || rc=$?
  record "$name" "$s" "$rc"
  if [ "$rc" -ne 0 ]; then
    stamp "FAILED: $name (exit $rc)"
    exit "$rc"
  fi
}

# The background chains: the cluster's packages, each flavour in the
# order of PAIRS, then the release checks (their test runs the plugin
# through a flavour's kubectl); and vet, then the unit and integration
# tests. Each step leaves NAME.rc beside its log.
bg_step() { # nice name cmd...
  local n="$1" name="$2" s rc=0
  shift 2
  s=$(date +%s)
  # At low priority: the e2e runs' cluster and commands go first. bash's
  # time counts the CPU of every process the step waited for.
  local TIMEFORMAT='%U %S' cpu
  { time nice -n "$n" "$@" >"$REPORT/$name.log" 2>&1; } 2>"$REPORT/$name.cpu" || rc=$?
  cpu=$(awk 'NF == 2 { printf "%.0f", $1 + $2 }' "$REPORT/$name.cpu" 2>/dev/null || true)
  record "$name (background)" "$s" "$rc" "$cpu"
  echo "$rc" >"$REPORT/$name.rc"
  return "$rc"
}
background() {
  if [ "${E2E:-1}" != 0 ]; then
    bg_step 10 prereqs hack/cluster/prereqs.sh || return
    for f in $FLAVOURS; do
      bg_step 10 "build-$f" env HC_FLAVOUR="$f" hack/cluster/build.sh || return
    done
  fi
  if [ "${RELEASE_CHECK:-ci}" = full ]; then
    bg_step 10 release hack/release/check.sh --full
  else
    bg_step 10 release hack/release/check.sh
  fi
}
checks() {
  # The e2e suite too, so that a change that breaks it fails here, in
  # seconds, not when its pair starts.
  bg_step 19 vet go vet -tags e2e ./... || return
  builds_done
  step_done versitygw || return
  # vet ran every analyzer on every package: -vet=off skips the subset
  # go test would run again.
  bg_step 10 unit go test -count=1 -vet=off -timeout 30m ./...
}

# versitygw: installs the pinned versitygw into the tools dir, unless
# one of that version was found (or VERSITYGW was given). Its own
# background step, so that it overlaps with vet and the builds; the
# go install is logged and timed as any other.
install_versitygw() {
  if [ "$VERSITYGW_OURS" = 0 ] || versitygw_pinned "$VERSITYGW"; then
    echo "versitygw: $VERSITYGW" >"$REPORT/versitygw.log"
    echo 0 >"$REPORT/versitygw.rc"
    return
  fi
  mkdir -p "$TOOLS"
  stamp "versitygw: go install $VERSITYGW_PKG@$VERSITYGW_VERSION into $(dirname "$VERSITYGW") (first run only)"
  # An install cut short may leave a partial file: go version -m finds
  # no version in it, and the next run installs over it.
  bg_step 10 versitygw env GOBIN="$(dirname "$VERSITYGW")" go install "$VERSITYGW_PKG@$VERSITYGW_VERSION"
}

# step_done NAME: waits, in a background chain, until the background
# step NAME has ended; fails when it failed.
step_done() {
  while [ ! -f "$REPORT/$1.rc" ]; do sleep 2; done
  [ "$(cat "$REPORT/$1.rc")" = 0 ]
}

# builds_done: waits until every flavour's build has ended (or one failed,
# which stops the suite), so that the unit tests do not run starved beside
# the cold builds.
builds_done() {
  [ "${E2E:-1}" != 0 ] || return 0
  local f
  for f in $FLAVOURS; do
    while [ ! -f "$REPORT/build-$f.rc" ]; do sleep 2; done
    [ "$(cat "$REPORT/build-$f.rc")" = 0 ] || return 0
  done
}

# failed_step NAME: stops the suite, with the end of NAME's log.
failed_step() {
  stamp "FAILED: $1; the end of its log ($REPORT/$1.log):"
  tail -150 "$REPORT/$1.log"
  exit 1
}

# check_checks: stops the suite as soon as vet or the unit tests failed.
check_checks() {
  local n
  for n in vet versitygw unit; do
    if [ -f "$REPORT/$n.rc" ] && [ "$(cat "$REPORT/$n.rc")" != 0 ]; then failed_step "$n"; fi
  done
}

# await PID NAME: waits for a background step of the chain PID; stops the
# suite, with its log, when it failed or when the chain died before it.
await() {
  local pid="$1" name="$2" s
  s=$(date +%s)
  stamp "waiting for the background step $name"
  while [ ! -f "$REPORT/$name.rc" ]; do
    check_checks
    if ! kill -0 "$pid" 2>/dev/null && [ ! -f "$REPORT/$name.rc" ]; then
      stamp "FAILED: the background chain stopped before $name; its logs: $REPORT/*.log"
      tail -50 "$(ls -t "$REPORT"/*.log | head -1)"
      exit 1
    fi
    sleep 2
  done
  [ "$(cat "$REPORT/$name.rc")" = 0 ] || failed_step "$name"
  [ $(( $(date +%s) - s )) -lt 2 ] || record "waiting for $name" "$s" 0
}

# kill_tree PID: the background chain and every build it started, by PID.
kill_tree() {
  local c
  for c in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$c"; done
  kill "$1" 2>/dev/null || true
}

finish() {
  local rc=$?
  trap - EXIT
  [ -z "${bg_pid:-}" ] || kill_tree "$bg_pid"
  [ -z "${checks_pid:-}" ] || kill_tree "$checks_pid"
  [ -z "${vgw_pid:-}" ] || kill_tree "$vgw_pid"
  if [ "${cluster_used:-0}" = 1 ]; then
    stamp "tearing the cluster down"
    hack/cluster/down.sh >/dev/null 2>&1 || true
  fi
  head -1 /proc/stat >"$REPORT/cpu.end"
  thp_restore
  echo
  go run ./hack/testreport -dir "$REPORT" -matrix "$MATRIX" || rc=$(( rc == 0 ? 1 : rc ))
  echo "test.sh: logs and the stage table in $REPORT"
  exit "$rc"
}
trap finish EXIT
# Killed (CI's time limit, Ctrl-C), still stop the chains, take the
# cluster down and put huge pages back: bash runs no EXIT trap on a
# signal it does not trap.
trap 'exit 143' TERM
trap 'exit 130' INT
thp_always

install_versitygw &
vgw_pid=$!
background &
bg_pid=$!
checks &
checks_pid=$!

if [ "${E2E:-1}" = 0 ]; then
  await "$vgw_pid" versitygw
  await "$checks_pid" unit
  await "$bg_pid" release
  stamp "E2E=0: end-to-end suite not run"
  exit 0
fi

up_pair() { # flavour nodes
  local log="$REPORT/up-$1-$2.log"
  if ! HC_FLAVOUR="$1" HC_NODES="$2" hack/cluster/up.sh >"$log" 2>&1; then
    echo "hack/cluster/up.sh FAILED for flavour $1, $2 node(s); the end of its log ($log):"
    tail -80 "$log"
    return 1
  fi
  tail -1 "$log"
}

run_pair() { # flavour nodes
  local f="$1" n="$2" log="$REPORT/e2e-$1-$2.log" status
  # TestMain checks the cluster again and fails, never skips, when it is
  # not the one asked for or not healthy. A pair's pass of the full
  # matrix runs every scenario there: 1.33/3 took 42 minutes.
  local limit=40m
  [ "$MATRIX" = full ] && limit=75m
  E2E_MATRIX="$MATRIX" E2E_FLAVOUR="$f" E2E_NODES="$n" go test -tags e2e -count=1 -parallel 4 -timeout "$limit" -v ./test/e2e 2>&1 |
    tee "$log" | grep --line-buffered -E '^(=== RUN|\s*--- |PASS|FAIL|ok |e2e:)'
  status=${PIPESTATUS[0]}
  if [ "$status" -ne 0 ]; then
    echo "e2e FAILED for flavour $f, $n node(s); the end of its log ($log):"
    tail -150 "$log"
  fi
  return "$status"
}

for pair in $PAIRS; do
  f="${pair%/*}" n="${pair#*/}"
  await "$bg_pid" "build-$f"
  await "$vgw_pid" versitygw
  cluster_used=1
  stage "cluster up $pair" up_pair "$f" "$n"
  stage "e2e $pair ($MATRIX)" run_pair "$f" "$n"
  check_checks
  # The next pair may still wait for its flavour's build: its cluster
  # would idle at a fifth of a core meanwhile (seen cold).
  if [ "$pair" != "${PAIRS##* }" ]; then hack/cluster/down.sh >/dev/null 2>&1 || true; fi
done
await "$checks_pid" unit
await "$bg_pid" release
stamp "all tests passed"
