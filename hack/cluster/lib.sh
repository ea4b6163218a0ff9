# shellcheck shell=bash
# Helpers shared by the harness scripts (sourced after env.sh).

hc_log() { printf '[%s %6.1fs] %s\n' "${HC_SCRIPT:-hc}" "$(hc_elapsed)" "$*" >&2; }
hc_die() { printf '[%s] ERROR: %s\n' "${HC_SCRIPT:-hc}" "$*" >&2; exit 1; }
HC_T0="${HC_T0:-$(date +%s.%N)}"
hc_elapsed() { awk -v a="$HC_T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
hc_now() { date +%s.%N; }
hc_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
# set -e must never end a script silently.
hc_on_exit() {
  local rc=$? cmd="$BASH_COMMAND"
  case "$rc:$cmd" in 0:*|*:exit*|*:hc_die*) ;; *) printf '[%s] ERROR: stopped (exit %s) at: %s\n' "${HC_SCRIPT:-hc}" "$rc" "$cmd" >&2 ;; esac
}
trap hc_on_exit EXIT
hc_need_root() { [ "$(id -u)" -eq 0 ] || hc_die "must run as root"; }

# ---------------------------------------------------------------------------
# Cluster helpers (up.sh, down.sh, check.sh, node-exec.sh).
#
# Node i runs in network namespace hc-n<i> and in the private mount+UTS
# namespace of a "holder" process. All of the node's processes (holder,
# containerd, kubelet, shims, containers) live under the cgroup /hc-cp<i> in
# every cgroup hierarchy, which is how down.sh finds them again.

HC_PID_DIR="$HC_RUN_DIR/pids"
HC_NODES_DIR="$HC_STATE_DIR/nodes"
HC_LOG_DIR="$HC_STATE_DIR/logs"
HC_CRI_SOCKET=unix:///run/containerd/containerd.sock
# Paths kubeadm, the kubelet and containerd hard-code; each node gets its own.
HC_BIND_TARGETS=(/etc/kubernetes /var/lib/kubelet /var/lib/etcd /var/log/pods /var/log/containers
  /run/containerd /var/lib/cni /run/kubernetes /var/lib/kubectl-etcd)

hc_bind_src() { # i target -> per-node source dir
  local d="${2#/}"; d="${d//\//-}"
  case "$2" in
    /run/*) echo "$HC_RUN_DIR/n$1/$d" ;;
    *) echo "$HC_NODES_DIR/n$1/$d" ;;
  esac
}

# cgroup hierarchies (v1 controllers, name=systemd, and the hybrid unified one)
hc_cgroup_mounts() { awk '$3=="cgroup" || $3=="cgroup2" {print $2}' /proc/mounts | grep '^/sys/fs/cgroup' || true; }
hc_pids_hier() { awk '$3=="cgroup" && $4 ~ /(^|,)pids(,|$)/ {print $2; exit}' /proc/mounts; }

hc_cgroup_create() { # i
  local h d
  for h in $(hc_cgroup_mounts); do
    for d in "$h/hc-cp$1" "$h/hc-cp$1/daemons"; do
      mkdir -p "$d"
      if [ -f "$d/cpuset.cpus" ]; then
        [ -n "$(cat "$d/cpuset.cpus")" ] || cat "$(dirname "$d")/cpuset.cpus" >"$d/cpuset.cpus"
        [ -n "$(cat "$d/cpuset.mems")" ] || cat "$(dirname "$d")/cpuset.mems" >"$d/cpuset.mems"
      fi
    done
  done
}

# PIDs of every process in node i's cgroup subtree.
hc_cgroup_pids() { # i
  local h; h="$(hc_pids_hier)"
  [ -n "$h" ] && [ -d "$h/hc-cp$1" ] || return 0
  find "$h/hc-cp$1" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un
}

hc_cgroup_remove() { # dir-name under each hierarchy (hc-cp<i> or kubepods)
  local h
  for h in $(hc_cgroup_mounts); do
    [ -d "$h/$1" ] || continue
    find "$h/$1" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ -d "$h/$1" ] && hc_log "warning: cgroup $h/$1 not removed (still in use)"
  done
  return 0
}

# Starts a detached process for node i in its cgroup; it records its own PID.
#   hc_spawn i name logfile cmd...
hc_spawn() {
  local i="$1" name="$2" log="$3"; shift 3
  mkdir -p "$HC_PID_DIR" "$(dirname "$log")"
  local pidf="$HC_PID_DIR/$name-n$i"
  rm -f "$pidf"
  # shellcheck disable=SC2016
  setsid bash -c '
    for h in '"$(hc_cgroup_mounts | tr '\n' ' ')"'; do echo $$ >"$h/hc-cp'"$i"'/daemons/cgroup.procs"; done
    echo $$ >"'"$pidf"'"
    exec "$@"' hc-spawn "$@" </dev/null >>"$log" 2>&1 &
  local n=0
  until [ -s "$pidf" ]; do
    sleep 0.05; n=$((n + 1)); [ "$n" -lt 200 ] || hc_die "could not start $name for node $i (see $log)"
  done
}

hc_pid() { # name i -> pid if alive
  local f="$HC_PID_DIR/$1-n$2" p
  [ -s "$f" ] || return 1
  p="$(cat "$f")"
  [ -d "/proc/$p" ] || return 1
  echo "$p"
}

# Runs a command inside node i's network, mount and UTS namespaces.
hc_nsenter() { # i cmd...
  local i="$1" p; shift
  p="$(hc_pid holder "$i")" || hc_die "node $i is not running (no holder process)"
  nsenter -t "$p" -m -n -u -- "$@"
}

# Imports a docker-archive image into node i's containerd, in the k8s.io
# namespace the kubelet's CRI reads (up.sh, load-plugin-image.sh).
hc_import_image() { # i tarball
  hc_nsenter "$1" ctr -a /run/containerd/containerd.sock -n k8s.io images import "$2" >>"$HC_LOG_DIR/n$1/import.log" 2>&1 \
    || hc_die "node $1: importing $2 failed (see $HC_LOG_DIR/n$1/import.log)"
}

hc_stop_pid() { # name i [timeout]: TERM, wait, KILL
  local p t="${3:-10}" n=0
  p="$(hc_pid "$1" "$2")" || { rm -f "$HC_PID_DIR/$1-n$2"; return 0; }
  kill -TERM "$p" 2>/dev/null || true
  while [ -d "/proc/$p" ] && [ "$n" -lt $((t * 10)) ]; do sleep 0.1; n=$((n + 1)); done
  if [ -d "/proc/$p" ]; then kill -KILL "$p" 2>/dev/null || true; fi
  rm -f "$HC_PID_DIR/$1-n$2"
}

# Node indexes that may have leftovers (from pid files, netns, dirs, cgroups).
hc_leftover_nodes() {
  {
    ls "$HC_PID_DIR" 2>/dev/null | sed -n 's/.*-n\([0-9]*\)$/\1/p'
    ip netns list 2>/dev/null | sed -n 's/^hc-n\([0-9]*\).*/\1/p'
    ls "$HC_NODES_DIR" "$HC_RUN_DIR" 2>/dev/null | sed -n 's/^n\([0-9]*\)$/\1/p'
    ls -d /sys/fs/cgroup/*/hc-cp* 2>/dev/null | sed -n 's/.*hc-cp\([0-9]*\)$/\1/p'
    ip -o link show 2>/dev/null | sed -n 's/^[0-9]*: hc-v\([0-9]*\)@.*/\1/p'
  } | sort -un
}

# Tears node i down: kubelet, kubeadm reset (when its containerd still runs),
# containerd, every process left in its cgroups, the holder, the netns.
hc_node_down() { # i
  local i="$1" p
  hc_stop_pid kubelet "$i" 10
  # The kubeadm of the recorded cluster (it may be another flavour than the current one).
  local kubeadm
  kubeadm="$(sed -n 's/^HC_KUBEADM=//p' "$HC_STATE_FILE" 2>/dev/null | tr -d "'\"")"
  kubeadm="${kubeadm:-${HC_KUBEADM:-}}"
  if hc_pid containerd "$i" >/dev/null && hc_pid holder "$i" >/dev/null && [ -x "$kubeadm" ]; then
    timeout 60 nsenter -t "$(hc_pid holder "$i")" -m -n -u -- "$kubeadm" reset -f \
      --cri-socket "$HC_CRI_SOCKET" --skip-phases=remove-etcd-member >>"$HC_LOG_DIR/n$i/kubeadm-reset.log" 2>&1 \
      || hc_log "node $i: kubeadm reset failed (ignored; see $HC_LOG_DIR/n$i/kubeadm-reset.log)"
  fi
  hc_stop_pid containerd "$i" 10
  # Shims and containers that outlived containerd: all are in our cgroup.
  local n=0
  while p="$(hc_cgroup_pids "$i" | grep -vx "$(hc_pid holder "$i" || echo x)")" && [ -n "$p" ]; do
    # shellcheck disable=SC2086
    kill -KILL $p 2>/dev/null || true
    sleep 0.2; n=$((n + 1))
    [ "$n" -lt 50 ] || { hc_log "warning: node $i: processes survive: $p"; break; }
  done
  hc_stop_pid holder "$i" 5
  hc_cgroup_remove "hc-cp$i"
  ip link del "hc-v$i" 2>/dev/null || true
  ip netns del "hc-n$i" 2>/dev/null || true
}

# Host mounts left behind under our dirs or on the node paths from our dirs.
hc_umount_leftovers() {
  local mp
  awk '{print $4" "$5}' /proc/self/mountinfo | while read -r root mp; do
    case "$mp" in
      "$HC_STATE_DIR"/*|"$HC_RUN_DIR"/*|/run/netns/hc-n*) echo "$mp" ;;
    esac
    case "$root" in "$HC_STATE_DIR"/*|"$HC_RUN_DIR"/*) echo "$mp" ;; esac
  done | sort -ru | while read -r mp; do
    umount -l "$mp" 2>/dev/null && hc_log "unmounted leftover $mp" || true
  done
}

hc_iptables_cleanup() {
  local ipt t c
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for t in filter nat mangle; do
      for c in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT KUBE-POSTROUTING KUBE-MARK-DROP KUBE-MARK-MASQ; do
        "$ipt" -w -t "$t" -S "$c" >/dev/null 2>&1 || continue
        { "$ipt" -w -t "$t" -S 2>/dev/null | grep -E -- "-j $c( |$)" || true; } | sed 's/^-A /-D /' | while read -r rule; do
          # shellcheck disable=SC2086
          "$ipt" -w -t "$t" $rule 2>/dev/null || true
        done
        "$ipt" -w -t "$t" -F "$c" 2>/dev/null || true
        "$ipt" -w -t "$t" -X "$c" 2>/dev/null && hc_log "removed $ipt -t $t chain $c" || true
      done
    done
  done
}

# Everything down.sh does; also the first step of up.sh.
hc_cleanup() {
  local i pids=()
  for i in $(hc_leftover_nodes); do
    [ -n "$i" ] || continue
    mkdir -p "$HC_LOG_DIR/n$i"
    hc_node_down "$i" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || true; done
  # Keep the pod logs of the last cluster for debugging.
  for d in "$HC_NODES_DIR"/n*/var-log-pods; do
    [ -d "$d" ] || continue
    i="$(basename "$(dirname "$d")")"
    rm -rf "$HC_LOG_DIR/$i/pods" && mkdir -p "$HC_LOG_DIR/$i" && cp -a "$d" "$HC_LOG_DIR/$i/pods" 2>/dev/null || true
  done
  hc_umount_leftovers
  ip link del "$HC_BRIDGE" 2>/dev/null || true
  hc_cgroup_remove kubepods
  hc_iptables_cleanup
  rm -rf "$HC_NODES_DIR" "$HC_RUN_DIR" "$HC_STATE_DIR/admin.conf" "$HC_STATE_FILE"
  # Stale static-pod logs of an older, non-namespaced cluster on the host.
  rm -rf /var/log/pods/kube-system_etcd-hc-cp* /var/log/pods/kube-system_kube-*-hc-cp* 2>/dev/null || true
}

# Cluster health. Prints what is wrong; returns 0 only when everything is fine.
#   hc_check N kubeconfig
hc_check() {
  local n="$1" kc="$2" k out bad=0 i c
  k=("$HC_KUBECTL" --kubeconfig "$kc" --request-timeout=10s)
  if ! out="$("${k[@]}" get nodes -o json 2>&1)"; then echo "API not reachable: ${out##*$'\n'}"; return 1; fi
  for i in $(seq 1 "$n"); do
    local st
    st="$(jq -r --arg n "hc-cp$i" '.items[]|select(.metadata.name==$n)|(.status.conditions[]|select(.type=="Ready")|.status)' <<<"$out")"
    [ "$st" = True ] || { echo "node hc-cp$i not Ready (${st:-missing})"; bad=1; }
  done
  if ! out="$("${k[@]}" -n kube-system get pods -o json 2>&1)"; then echo "cannot list pods: $out"; return 1; fi
  for i in $(seq 1 "$n"); do
    for c in etcd kube-apiserver kube-controller-manager kube-scheduler; do
      local r
      r="$(jq -r --arg n "$c-hc-cp$i" '.items[]|select(.metadata.name==$n)|
        "\(.status.phase) \((.status.conditions // [])[]|select(.type=="Ready")|.status)"' <<<"$out")"
      [ "$r" = "Running True" ] || { echo "pod $c-hc-cp$i not Ready (${r:-missing})"; bad=1; }
    done
  done
  [ "$bad" = 0 ] || return 1
  local ectl=(-n kube-system exec etcd-hc-cp1 -- etcdctl --endpoints=https://127.0.0.1:2379
    --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/server.crt
    --key=/etc/kubernetes/pki/etcd/server.key --command-timeout=10s -w json)
  if ! out="$("${k[@]}" "${ectl[@]}" member list 2>&1)"; then echo "etcdctl member list failed: $out"; return 1; fi
  local total started learners
  total="$(jq '.members|length' <<<"$out")"
  started="$(jq '[.members[]|select((.name // "") != "" and ((.clientURLs // [])|length) > 0)]|length' <<<"$out")"
  learners="$(jq '[.members[]|select(.isLearner == true)]|length' <<<"$out")"
  [ "$total" = "$n" ] && [ "$started" = "$n" ] && [ "$learners" = 0 ] \
    || { echo "etcd members: $total total, $started started, $learners learners (want $n started voters)"; bad=1; }
  if ! out="$("${k[@]}" "${ectl[@]}" endpoint health --cluster 2>&1)"; then echo "etcdctl endpoint health failed: $out"; return 1; fi
  local healthy
  healthy="$(jq '[.[]|select(.health == true)]|length' <<<"$out" 2>/dev/null || echo 0)"
  [ "$healthy" = "$n" ] || { echo "etcd endpoints healthy: $healthy of $n: $(jq -c '[.[]|{endpoint,health,error}]' <<<"$out" 2>/dev/null)"; bad=1; }
  return "$bad"
}

# Sum of the RSS (MiB) of every process of the cluster (all hc-cp* cgroups).
hc_rss_mib() {
  local h; h="$(hc_pids_hier)"
  find "$h"/hc-cp* -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un | while read -r p; do
    awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null
  done | awk '{s+=$1} END{printf "%d", s/1024}'
}
