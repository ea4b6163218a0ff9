#!/usr/bin/env bash
# Brings up a kubeadm control plane of HC_NODES (1 or 3; default 1) nodes
# hc-cp1..N of flavour HC_FLAVOUR (default 1.33), built by build.sh.
#
# Every node lives in its own network namespace hc-n<i> (10.250.1.1<i> on the
# host bridge hcmbr0, 10.250.1.1) and its own mount namespace with private
# /etc/kubernetes, /var/lib/kubelet, /var/lib/etcd, ..., and runs its own
# containerd and kubelet (cgroup /hc-cp<i>). First runs the cleanup of down.sh,
# so it also recovers from a run that was killed midway.
#
# Outputs: /var/lib/hackcluster/state.env, /var/lib/hackcluster/admin.conf.
set -euo pipefail
HC_USE_STATE=0
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
# shellcheck source=lib.sh
. "$HC_DIR/lib.sh"
HC_SCRIPT=up
hc_need_root

HC_NODES="${HC_NODES:-1}"
case "$HC_NODES" in [1-9]) ;; *) hc_die "HC_NODES must be 1..9 (got $HC_NODES)" ;; esac
HC_UP_TIMEOUT="${HC_UP_TIMEOUT:-300}"

for b in kubeadm kubelet kubectl; do [ -x "$HC_K8S_BIN/$b" ] || hc_die "$HC_K8S_BIN/$b missing: run HC_FLAVOUR=$HC_FLAVOUR hack/cluster/build.sh"; done
while read -r f; do [ -f "$f" ] || hc_die "$f missing: run HC_FLAVOUR=$HC_FLAVOUR hack/cluster/build.sh"; done < <(hc_image_files)
for c in containerd ctr runc nsenter unshare ip iptables jq /usr/lib/cni/bridge; do command -v "$c" >/dev/null || hc_die "$c missing: run hack/cluster/prereqs.sh"; done

hc_log "cleanup of earlier runs"
t="$(hc_now)"; hc_cleanup; T_CLEAN="$(hc_since "$t")"
hc_log "cleanup done in $T_CLEAN s; starting $HC_NODES node(s) of flavour $HC_FLAVOUR (kubernetes $K8S_VERSION, etcd $ETCD_TAG)"

mkdir -p "$HC_STATE_DIR" "$HC_RUN_DIR" "$HC_PID_DIR" "$HC_NODES_DIR"
chmod 700 "$HC_STATE_DIR"
rm -rf "$HC_LOG_DIR.prev"; if [ -d "$HC_LOG_DIR" ]; then mv "$HC_LOG_DIR" "$HC_LOG_DIR.prev"; fi
mkdir -p "$HC_LOG_DIR"

# ---- host network: one bridge, no routing to the outside -----------------
ip link add "$HC_BRIDGE" type bridge
ip addr add "$HC_BRIDGE_IP/24" dev "$HC_BRIDGE"
ip link set "$HC_BRIDGE" up

hexrand() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
TOKEN="$(hexrand 3).$(hexrand 8)"
CERT_KEY="$(hexrand 32)"
IP1="$(hc_node_ip 1)"
SANS="127.0.0.1, localhost"
for i in $(seq 1 "$HC_NODES"); do SANS+=", $(hc_node_ip "$i")"; done

write_node_files() { # i
  local i="$1" ip rd="$HC_RUN_DIR/n$1" nd="$HC_NODES_DIR/n$1"
  ip="$(hc_node_ip "$i")"
  mkdir -p "$rd/cni" "$nd" "$HC_LOG_DIR/n$i"
  local t
  for t in "${HC_BIND_TARGETS[@]}"; do mkdir -p "$t" "$(hc_bind_src "$i" "$t")"; done

  cat >"$rd/holder.sh" <<SH
#!/bin/bash
# Holder of node $i's mount and UTS namespaces (started by up.sh).
set -e
$(for t in "${HC_BIND_TARGETS[@]}"; do echo "mount --bind '$(hc_bind_src "$i" "$t")' '$t'"; done)
hostname $(hc_node_name "$i")
touch '$rd/holder.ready'
exec sleep infinity
SH

  cat >"$rd/containerd.toml" <<TOML
version = 2
root = "$nd/containerd"
state = "$rd/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$HC_PAUSE_IMAGE"
    stream_server_address = "127.0.0.1"
    # This VM lacks CAP_SYS_RESOURCE: nobody may lower oom_score_adj.
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$rd/cni"
  [plugins."io.containerd.internal.v1.opt"]
    path = "$nd/containerd-opt"
TOML

  cat >"$rd/cni/10-hcnet.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "hcnet",
  "plugins": [
    {
      "type": "bridge", "bridge": "hccni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "10.244.$i.0/24" }]], "routes": [{ "dst": "0.0.0.0/0" }] }
    }
  ]
}
JSON

  # What the kubeadm systemd drop-in would run, once kubeadm wrote the kubelet's files.
  cat >"$rd/kubelet.sh" <<SH
#!/bin/bash
set -e
until [ -f /var/lib/kubelet/config.yaml ] && [ -f /var/lib/kubelet/kubeadm-flags.env ] &&
      { [ -f /etc/kubernetes/kubelet.conf ] || [ -f /etc/kubernetes/bootstrap-kubelet.conf ]; }; do
  sleep 0.5
done
sleep 1
. /var/lib/kubelet/kubeadm-flags.env
exec '$HC_KUBELET' --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \\
  --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml \\
  \$KUBELET_KUBEADM_ARGS --cgroup-root=/hc-cp$i
SH
  chmod +x "$rd/holder.sh" "$rd/kubelet.sh"

  # kubeadm probes kube-apiserver's /readyz every second, each probe a new
  # TLS handshake and a round of etcd checks: on three nodes a sixth of
  # the idle cluster's CPU (measured: 31.5 CPU-seconds a minute instead of
  # 38 with every 10 s). Nothing here reads the API server pods' readiness.
  mkdir -p "$rd/patches"
  cat >"$rd/patches/kube-apiserver+strategic.yaml" <<YAML
spec:
  containers:
  - name: kube-apiserver
    readinessProbe:
      periodSeconds: 10
YAML

  local nodereg
  nodereg="patches:
  directory: $rd/patches
nodeRegistration:
  name: $(hc_node_name "$i")
  criSocket: $HC_CRI_SOCKET
  imagePullPolicy: Never
  kubeletExtraArgs:
  - name: node-ip
    value: $ip"
  if [ "$i" = 1 ]; then
    cat >"$rd/kubeadm.yaml" <<YAML
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: "$TOKEN"
  ttl: 24h0m0s
  usages: [signing, authentication]
  groups: [system:bootstrappers:kubeadm:default-node-token]
certificateKey: "$CERT_KEY"
localAPIEndpoint:
  advertiseAddress: $ip
  bindPort: 6443
$nodereg
skipPhases:
- addon/coredns
- addon/kube-proxy
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: hackcluster
kubernetesVersion: $K8S_VERSION
controlPlaneEndpoint: $IP1:6443
networking:
  podSubnet: 10.244.0.0/16
  serviceSubnet: $HC_SERVICE_SUBNET
etcd:
  local:
    imageTag: "$ETCD_TAG"
    # Inside the node's own /var/lib/etcd bind, so that a restore's new
    # data dir beside it (data-restore-<id>) is the node's too, as it is
    # on a real node, and the old dir is not a mount point.
    dataDir: /var/lib/etcd/data
apiServer:
  certSANs: [$SANS]
  extraArgs:
  # A write without ?timeout= waits up to 34 s for an etcd that is down;
  # the kubelet deletes an outdated mirror pod before it starts the new
  # static pod, so on one node every etcd manifest edit waited that long
  # before the new etcd started. Capped here, the new etcd starts after
  # 10 s (the default is 1m). Watches, exec and port-forward are not
  # bound by it.
  - name: request-timeout
    value: 10s
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
containerRuntimeEndpoint: $HC_CRI_SOCKET
oomScoreAdj: 0
# The pod workers' resync (default 1m): a mirror pod the kubelet could not
# update while its API server was down (every etcd restart on one node)
# is retried only then. 10s makes the API show a restarted static pod
# within seconds of the API server's return, as the tests wait for it.
syncFrequency: 10s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
YAML
  else
    cat >"$rd/kubeadm.yaml" <<YAML
apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: $IP1:6443
    token: "$TOKEN"
    unsafeSkipCAVerification: true
controlPlane:
  localAPIEndpoint:
    advertiseAddress: $ip
    bindPort: 6443
  certificateKey: "$CERT_KEY"
$nodereg
YAML
  fi
}

setup_netns() { # i (serially: iproute2 sets up /run/netns on first use)
  local i="$1" ns ip
  ns="$(hc_node_netns "$i")"; ip="$(hc_node_ip "$i")"
  ip netns add "$ns"
  ip link add "hc-v$i" type veth peer name eth0 netns "$ns"
  ip link set "hc-v$i" master "$HC_BRIDGE" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$ip/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "$ns" sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
  # No kube-proxy: what it would do for the kubernetes Service alone, for
  # the host network. A pod there that uses its in-cluster config (a
  # schedule's job records its runs so) reaches $HC_API_SERVICE_IP:443,
  # which leads to this node's API server. The route first: without one
  # the connect fails before the DNAT is looked at.
  ip -n "$ns" route add "$HC_API_SERVICE_IP/32" dev eth0
  ip netns exec "$ns" iptables -w -t nat -A OUTPUT -d "$HC_API_SERVICE_IP/32" -p tcp --dport 443 -j DNAT --to-destination "$ip:6443"
  hc_cgroup_create "$i"
}

start_node() { # i: holder, containerd, images, kubelet
  local i="$1" ns ip t0
  t0="$(hc_now)"
  ns="$(hc_node_netns "$i")"; ip="$(hc_node_ip "$i")"
  hc_spawn "$i" holder "$HC_LOG_DIR/n$i/holder.log" \
    nsenter --net="/run/netns/$ns" unshare --mount --uts --propagation private "$HC_RUN_DIR/n$i/holder.sh"
  local n=0
  until [ -f "$HC_RUN_DIR/n$i/holder.ready" ]; do
    sleep 0.05; n=$((n + 1)); [ "$n" -lt 200 ] || hc_die "node $i: holder did not start (see $HC_LOG_DIR/n$i/holder.log)"
  done
  local hp; hp="$(hc_pid holder "$i")"
  hc_spawn "$i" containerd "$HC_LOG_DIR/n$i/containerd.log" \
    nsenter -t "$hp" -m -n -u -- containerd --config "$HC_RUN_DIR/n$i/containerd.toml"
  n=0
  until hc_nsenter "$i" ctr -a /run/containerd/containerd.sock version >/dev/null 2>&1; do
    sleep 0.2; n=$((n + 1)); [ "$n" -lt 150 ] || hc_die "node $i: containerd did not start (see $HC_LOG_DIR/n$i/containerd.log)"
  done
  local f
  while read -r f; do hc_import_image "$i" "$f"; done < <(hc_image_files)
  hc_spawn "$i" kubelet "$HC_LOG_DIR/n$i/kubelet.log" \
    nsenter -t "$hp" -m -n -u -- "$HC_RUN_DIR/n$i/kubelet.sh"
  hc_log "node $i ($(hc_node_name "$i") $ip): netns, containerd and images ready in $(hc_since "$t0") s"
}

kubeadm_on() { # i log args...
  local i="$1" log="$2"; shift 2
  # Runs in the node's cgroup, so that down.sh also finds a kubeadm whose up.sh was killed.
  local hp; hp="$(hc_pid holder "$i")" || hc_die "node $i is not running"
  # shellcheck disable=SC2016
  if ! PATH="$HC_K8S_BIN:$PATH" bash -c '
      for h in '"$(hc_cgroup_mounts | tr '\n' ' ')"'; do echo $$ >"$h/hc-cp'"$i"'/daemons/cgroup.procs"; done
      exec "$@"' hc-kubeadm nsenter -t "$hp" -m -n -u -- "$HC_KUBEADM" "$@" \
      --ignore-preflight-errors=SystemVerification >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    hc_die "kubeadm $1 on $(hc_node_name "$i") failed (full log: $log; kubelet log: $HC_LOG_DIR/n$i/kubelet.log)"
  fi
}

# ---- nodes: prepared in parallel ------------------------------------------
t="$(hc_now)"
pids=()
for i in $(seq 1 "$HC_NODES"); do write_node_files "$i"; setup_netns "$i"; done
for i in $(seq 1 "$HC_NODES"); do start_node "$i" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || hc_die "node preparation failed"; done
T_NODES="$(hc_since "$t")"

# Recorded as soon as processes exist, so that down.sh/check.sh know the cluster.
write_state() {
  local names="" ips="" i
  for i in $(seq 1 "$HC_NODES"); do names+="$(hc_node_name "$i") "; ips+="$(hc_node_ip "$i") "; done
  cat >"$HC_STATE_FILE.tmp" <<STATE
# Written by hack/cluster/up.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)
HC_FLAVOUR='$HC_FLAVOUR'
HC_NODES='$HC_NODES'
K8S_VERSION='$K8S_VERSION'
K8S_STAGING='$K8S_STAGING'
ETCD_VERSION='$ETCD_VERSION'
ETCD_TAG='$ETCD_TAG'
PAUSE_TAG='$PAUSE_TAG'
ETCD_IMAGE_STYLE='$ETCD_IMAGE_STYLE'
HC_NODE_NAMES='${names% }'
HC_NODE_IPS='${ips% }'
HC_API_SERVER='https://$IP1:6443'
HC_KUBECONFIG='$HC_KUBECONFIG'
HC_KUBECTL='$HC_KUBECTL'
HC_KUBEADM='$HC_KUBEADM'
HC_ETCDCTL='$HC_ETCDCTL'
HC_ETCDUTL='$HC_ETCDUTL'
HC_ETCD_IMAGE='$HC_ETCD_IMAGE'
HC_PAUSE_IMAGE='$HC_PAUSE_IMAGE'
HC_TOOLBOX_IMAGE='$HC_TOOLBOX_IMAGE'
HC_NODES_DIR='$HC_NODES_DIR'
HC_RUN_DIR='$HC_RUN_DIR'
HC_LOG_DIR='$HC_LOG_DIR'
HC_STATUS='${1:-starting}'
STATE
  mv "$HC_STATE_FILE.tmp" "$HC_STATE_FILE"
}
write_state starting

# ---- kubeadm init on node 1, then join the others one by one ---------------
t="$(hc_now)"
hc_log "kubeadm init on $(hc_node_name 1)"
up_certs=(); [ "$HC_NODES" -gt 1 ] && up_certs=(--upload-certs)
kubeadm_on 1 "$HC_LOG_DIR/n1/kubeadm-init.log" init --config "$HC_RUN_DIR/n1/kubeadm.yaml" "${up_certs[@]}"
T_INIT="$(hc_since "$t")"
install -m 0600 "$HC_NODES_DIR/n1/etc-kubernetes/admin.conf" "$HC_KUBECONFIG"
hc_log "kubeadm init done in $T_INIT s; admin kubeconfig $HC_KUBECONFIG (server https://$IP1:6443)"

T_JOIN=""
for i in $(seq 2 "$HC_NODES"); do
  t="$(hc_now)"
  hc_log "kubeadm join --control-plane on $(hc_node_name "$i")"
  kubeadm_on "$i" "$HC_LOG_DIR/n$i/kubeadm-join.log" join --config "$HC_RUN_DIR/n$i/kubeadm.yaml"
  T_JOIN+="$(hc_node_name "$i") $(hc_since "$t") s; "
  hc_log "$(hc_node_name "$i") joined in $(hc_since "$t") s"
done

# ---- wait until everything is Ready and etcd is healthy -------------------
t="$(hc_now)"
deadline=$(( $(date +%s) + HC_UP_TIMEOUT ))
last=""
until msg="$(hc_check "$HC_NODES" "$HC_KUBECONFIG" 2>&1)"; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "$msg" >&2
    hc_die "cluster not healthy after ${HC_UP_TIMEOUT}s (logs in $HC_LOG_DIR)"
  fi
  [ "$msg" != "$last" ] && hc_log "waiting: $(echo "$msg" | head -n 3 | tr '\n' ';')"
  last="$msg"
  sleep 2
done
T_WAIT="$(hc_since "$t")"
write_state up

RSS="$(hc_rss_mib)"
hc_log "timings: cleanup $T_CLEAN s, nodes $T_NODES s, init $T_INIT s, ${T_JOIN:+join ${T_JOIN}}ready-wait $T_WAIT s; RSS of cluster processes $RSS MiB"
echo "hackcluster up in $(hc_elapsed) s: flavour $HC_FLAVOUR, kubernetes $K8S_VERSION, etcd $ETCD_TAG ($ETCD_IMAGE_STYLE), $HC_NODES node(s) $(sed -n "s/^HC_NODE_NAMES='\(.*\)'/\1/p" "$HC_STATE_FILE"), API https://$IP1:6443, KUBECONFIG=$HC_KUBECONFIG, RSS ${RSS} MiB"
