#!/usr/bin/env bash
# Times `kubectl etcd usage` on KEYS (default 200000) keys shaped like the
# API server's (/registry/<resource>/<namespace>/<name>, values of a busy
# cluster's sizes: events 0.9 KB, pods 4.5 KB, secrets 2.5 KB, ...), in a
# real 3-member TLS etcd that the Go test starts on this machine (no
# Kubernetes cluster needed), ROUNDS times (default 3), with its peak RSS,
# against the pinned etcdctl's `get --prefix /registry --keys-only` and
# full `get --prefix /registry` from the same follower. Prints the medians
# beside the targets (5 s, 100 MiB) and the ratios, and fails when a
# target is missed. The measured process is hack/bench/usagebench: the
# plugin's own usage command, discovery and port-forward client included,
# with the pods read from a file and the forward dialling the members
# directly (there is no API server in between).
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
command -v /usr/bin/time >/dev/null || { echo "bench: installing GNU time"; apt-get install -y -q time >/dev/null; }
KUBECTL_ETCD_BENCH_USAGE=1 KEYS="${KEYS:-200000}" ROUNDS="${ROUNDS:-3}" \
  go test -v -count=1 -run '^TestUsageBenchmark$' -timeout 30m ./pkg/plugin |
  grep -v -e '^ok ' -e '^PASS$' -e '^--- ' -e '^=== ' -e '^FAIL'
