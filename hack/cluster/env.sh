# shellcheck shell=bash
# Environment of the local real-cluster harness (hack/cluster).
#
# Source it from a shell:   . hack/cluster/env.sh
# It exports the flavour's versions, the paths of the built binaries, the
# kubeconfig of the running cluster and the state paths.
#
# Flavour selection (HC_FLAVOUR):
#   unset  -> the flavour recorded by up.sh in $HC_STATE_DIR/state.env if a
#             cluster is recorded (and HC_USE_STATE is not 0), else 1.33
#   1.33   -> Kubernetes v1.33.13, etcd v3.5.35 (image 3.5.35-0, shell style), pause 3.10
#   1.36   -> Kubernetes v1.36.4,  etcd v3.6.8  (image 3.6.8-0, distroless), pause 3.10.2
#   1.37   -> Kubernetes v1.37.1,  etcd v3.7.0  (image 3.7.0-0, distroless), pause 3.10.2
# Every single value may be overridden: K8S_VERSION, K8S_STAGING, ETCD_VERSION,
# ETCD_TAG, PAUSE_TAG, ETCD_IMAGE_STYLE (shell|distroless).

HC_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export HC_DIR
export HC_STATE_DIR="${HC_STATE_DIR:-/var/lib/hackcluster}"
export HC_STATE_FILE="$HC_STATE_DIR/state.env"
export HC_RUN_DIR="${HC_RUN_DIR:-/run/hackcluster}"
export HC_CACHE="${HC_CACHE:-/var/cache/kubectl-etcd-hack}"

# A recorded cluster decides the flavour unless the caller chose one.
if [ -z "${HC_FLAVOUR:-}" ] && [ "${HC_USE_STATE:-1}" != 0 ] && [ -r "$HC_STATE_FILE" ]; then
  HC_FLAVOUR="$(sed -n 's/^HC_FLAVOUR=//p' "$HC_STATE_FILE" | tr -d "'\"")"
  # The recorded pins win over the flavour defaults (they may have been overridden).
  eval "$(grep -E '^(K8S_VERSION|K8S_STAGING|ETCD_VERSION|ETCD_TAG|PAUSE_TAG|ETCD_IMAGE_STYLE)=' "$HC_STATE_FILE" \
    | sed -E "s/^([A-Z0-9_]+)='?([^']*)'?\$/: \"\\\${\1:=\2}\"/")"
fi
export HC_FLAVOUR="${HC_FLAVOUR:-1.33}"

case "$HC_FLAVOUR" in
  1.33) _k=v1.33.13 _e=v3.5.35 _p=3.10   _s=shell ;;
  1.36) _k=v1.36.4  _e=v3.6.8  _p=3.10.2 _s=distroless ;;
  1.37) _k=v1.37.1  _e=v3.7.0  _p=3.10.2 _s=distroless ;;
  *)
    if [ -z "${K8S_VERSION:-}" ] || [ -z "${ETCD_VERSION:-}" ] || [ -z "${PAUSE_TAG:-}" ]; then
      echo "env.sh: unknown HC_FLAVOUR '$HC_FLAVOUR' (known: 1.33 1.36 1.37; or set K8S_VERSION, ETCD_VERSION and PAUSE_TAG)" >&2
      return 1 2>/dev/null || exit 1
    fi
    _k= _e= _p= _s= ;;
esac
export K8S_VERSION="${K8S_VERSION:-$_k}"
export ETCD_VERSION="${ETCD_VERSION:-$_e}"
export PAUSE_TAG="${PAUSE_TAG:-$_p}"
_min="${K8S_VERSION#v1.}"
export K8S_MINOR="${_min%%.*}"
export K8S_STAGING="${K8S_STAGING:-v0.${K8S_VERSION#v1.}}"
export ETCD_TAG="${ETCD_TAG:-${ETCD_VERSION#v}-0}"
case "$ETCD_VERSION" in v3.5.*) _s2=shell ;; *) _s2=distroless ;; esac
export ETCD_IMAGE_STYLE="${ETCD_IMAGE_STYLE:-${_s:-$_s2}}"
unset _k _e _p _s _s2 _min

# Build outputs: outside the repository, shared by every clone on this machine.
export HC_K8S_BIN="$HC_CACHE/bin/k8s-$K8S_VERSION"
export HC_ETCD_BIN="$HC_CACHE/bin/etcd-$ETCD_VERSION"
export HC_TOOLS_BIN="$HC_CACHE/bin/tools"
export HC_IMAGE_DIR="$HC_CACHE/images"
export HC_KUBECTL="$HC_K8S_BIN/kubectl"
export HC_KUBEADM="$HC_K8S_BIN/kubeadm"
export HC_KUBELET="$HC_K8S_BIN/kubelet"
export HC_ETCD="$HC_ETCD_BIN/etcd"
export HC_ETCDCTL="$HC_ETCD_BIN/etcdctl"
export HC_ETCDUTL="$HC_ETCD_BIN/etcdutl"

# Images (all loaded with imagePullPolicy Never; nothing is ever pulled).
export HC_REGISTRY=registry.k8s.io
export HC_ETCD_IMAGE="$HC_REGISTRY/etcd:$ETCD_TAG"
export HC_PAUSE_IMAGE="$HC_REGISTRY/pause:$PAUSE_TAG"
export HC_TOOLBOX_IMAGE="hackcluster.local/toolbox:1"
# The plugin's image, as the release builds it, from this checkout: what a
# schedule's CronJob runs in the tests (--backup-image). Not loaded by
# up.sh: load-plugin-image.sh builds and imports it, again after a change.
export HC_PLUGIN_IMAGE="hackcluster.local/kubectl-etcd:dev"
# Image tarballs (docker-archive) of this flavour.
hc_image_files() {
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    echo "$HC_IMAGE_DIR/$c-$K8S_VERSION.tar"
  done
  echo "$HC_IMAGE_DIR/etcd-$ETCD_TAG-$ETCD_IMAGE_STYLE.tar"
  echo "$HC_IMAGE_DIR/pause-$PAUSE_TAG.tar"
  echo "$HC_IMAGE_DIR/toolbox-1.tar"
}

# Topology: node i (1..3) is hc-cp<i> at 10.250.1.1<i> in netns hc-n<i>.
export HC_BRIDGE=hcmbr0
export HC_BRIDGE_IP=10.250.1.1
export HC_NODE_PREFIX=hc-cp
# The Service network; its first address is the kubernetes Service's,
# which each node's host network leads to the node's API server (up.sh:
# there is no kube-proxy).
export HC_SERVICE_SUBNET=10.96.0.0/12
export HC_API_SERVICE_IP=10.96.0.1
hc_node_name() { echo "hc-cp$1"; }
hc_node_ip() { echo "10.250.1.1$1"; }
hc_node_netns() { echo "hc-n$1"; }
hc_node_index() { # hc-cp2 -> 2
  case "$1" in hc-cp[1-9]) echo "${1#hc-cp}" ;; *) return 1 ;; esac
}

# Kubeconfig of the running cluster (copied there by up.sh, mode 0600).
export HC_KUBECONFIG="$HC_STATE_DIR/admin.conf"
export KUBECONFIG="$HC_KUBECONFIG"
if [ -r "$HC_STATE_FILE" ]; then
  HC_NODES_UP="$(sed -n 's/^HC_NODES=//p' "$HC_STATE_FILE" | tr -d "'\"")"
  HC_NODE_NAMES="$(sed -n 's/^HC_NODE_NAMES=//p' "$HC_STATE_FILE" | tr -d "'\"")"
  HC_NODE_IPS="$(sed -n 's/^HC_NODE_IPS=//p' "$HC_STATE_FILE" | tr -d "'\"")"
  export HC_NODES_UP HC_NODE_NAMES HC_NODE_IPS
fi
