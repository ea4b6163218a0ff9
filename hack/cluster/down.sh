#!/usr/bin/env bash
# Tears down what up.sh started: the kubelets, kubeadm reset, containerd, the
# processes left in the hc-cp<i> cgroups (all by PID), the network namespaces,
# veths and bridge, leftover mounts, cgroups, the kubelet's iptables chains
# and the node directories. Safe to run when nothing is up.
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
# shellcheck source=lib.sh
. "$HC_DIR/lib.sh"
HC_SCRIPT=down
hc_need_root
hc_cleanup
echo "hackcluster down in $(hc_elapsed) s"
