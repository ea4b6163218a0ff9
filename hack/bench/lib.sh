# shellcheck shell=bash
# Shared helpers of the benchmarks: they run against the local cluster of
# hack/cluster and print medians and ratios measured side by side.
set -euo pipefail
BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$BENCH_ROOT"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
hack/cluster/check.sh >/dev/null || { echo "bench: the local cluster is not up; run hack/try.sh or hack/cluster/up.sh first" >&2; exit 1; }
# shellcheck source=../cluster/env.sh
. hack/cluster/env.sh
command -v /usr/bin/time >/dev/null || { echo "bench: installing GNU time"; apt-get install -y -q time >/dev/null; }
BENCH_BIN="$(mktemp -d)"
trap 'rm -rf "$BENCH_BIN"' EXIT
# Built as the release builds it (.goreleaser.yaml): static, stripped.
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BENCH_BIN/kubectl-etcd" ./cmd/kubectl-etcd
# backup --via node uploads the agent found beside the plugin.
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BENCH_BIN/kubectl-etcd-agent" ./cmd/kubectl-etcd-agent
CGO_ENABLED=0 go build -o "$BENCH_BIN/loadetcd" ./hack/bench/loadetcd
ln -s "$HC_KUBECTL" "$BENCH_BIN/kubectl"
export PATH="$BENCH_BIN:$PATH" KUBECONFIG="$HC_KUBECONFIG" KUBECTL_ETCD_IMAGE="$HC_TOOLBOX_IMAGE"
NODE1="${HC_NODE_NAMES%% *}"
ETCDCTL_TLS=(--endpoints https://127.0.0.1:2379 --cacert /etc/kubernetes/pki/etcd/ca.crt
  --cert /etc/kubernetes/pki/etcd/server.crt --key /etc/kubernetes/pki/etcd/server.key)

# timed OUT CMD...: runs CMD, appends "seconds max_rss_kib" to OUT.
timed() {
  local out="$1"; shift
  local tf; tf="$(mktemp)"
  /usr/bin/time -f '%e %M' -o "$tf" "$@" >/dev/null
  cat "$tf" >>"$out"; rm -f "$tf"
}

# cpu_timed OUT CMD...: runs CMD like timed, and appends to OUT.cpu the CPU
# seconds that the node's container runtime, kubelet and API server spent
# meanwhile (the tunnel's hops).
cpu_timed() {
  local out="$1"; shift
  local a b
  a=$(hop_cpu_ticks); timed "$out" "$@"; b=$(hop_cpu_ticks)
  awk -v a="$a" -v b="$b" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f\n", (b - a) / hz }' >>"$out.cpu"
}
hop_cpu_ticks() {
  local t=0 p
  for p in $(pgrep -x 'containerd|kubelet|kube-apiserver'); do
    t=$(( t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0) ))
  done
  echo "$t"
}

# median FILE COLUMN
median() { awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
maxcol() { awk -v c="$2" 'BEGIN{m=0} $c>m {m=$c} END {print m}' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

# nodectl ARGS...: etcdctl on the first node, against its local member.
# A long timeout: deleting, compacting and defragmenting 512 MiB outlast
# etcdctl's 5 s default, and a load left behind skews the next run.
nodectl() { hack/cluster/node-exec.sh "$NODE1" "$HC_ETCDCTL" --command-timeout=300s "${ETCDCTL_TLS[@]}" "$@"; }
db_mib() { nodectl endpoint status -w json | jq '.[0].Status.dbSize / 1048576 | floor'; }

# load_etcd SIZE_MIB DIR: puts values under /bench/ until etcd's database
# holds at least SIZE_MIB MiB, shaped as BENCH_DATA says (loadetcd):
# random (the default: each value its own random bytes in base64, so that
# compression gains only what base64 wastes) or objects (ConfigMaps and
# Secrets as a cluster stores them, from a fixed seed).
BENCH_DATA="${BENCH_DATA:-random}"
load_etcd() {
  local have
  have=$(db_mib)
  if [ "$have" -lt "$1" ]; then
    echo "loading etcd from $have MiB to $1 MiB ($BENCH_DATA)"
    hack/cluster/node-exec.sh "$NODE1" "$BENCH_BIN/loadetcd" --shape "$BENCH_DATA" --mib "$1" \
      --cacert /etc/kubernetes/pki/etcd/ca.crt --cert /etc/kubernetes/pki/etcd/server.crt --key /etc/kubernetes/pki/etcd/server.key
  fi
}

# unload_etcd: deletes /bench/, compacts and defragments.
unload_etcd() {
  local rev
  nodectl del --prefix /bench/ >/dev/null || true
  rev=$(nodectl endpoint status -w json | jq '.[0].Status.header.revision')
  nodectl compact --physical "$rev" >/dev/null 2>&1 || true
  nodectl defrag --cluster >/dev/null || echo "bench: defrag failed: the next load starts from a larger database" >&2
}
