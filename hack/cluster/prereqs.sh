#!/usr/bin/env bash
# Installs the Debian packages the local cluster harness needs. Idempotent:
# a quick no-op when everything is already installed.
set -euo pipefail

PKGS=(
  containerd runc containernetworking-plugins
  bash-static busybox-static
  iptables iproute2 conntrack util-linux mount kmod procps
  ca-certificates jq
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "prereqs: all packages installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "prereqs: must run as root (missing: ${missing[*]})" >&2
  exit 1
fi

echo "prereqs: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mmin -1440 2>/dev/null | head -1)" ]; then
  apt-get update
fi
# --no-install-recommends: containerd/runc recommend nothing we need.
apt-get install -y --no-install-recommends "${missing[@]}"

# The Debian containerd package may ship a service script; we never use it
# (no systemd here) and start our own containerd per node.
for f in /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/loopback /bin/bash-static /bin/busybox; do
  [ -x "$f" ] || { echo "prereqs: $f missing after install" >&2; exit 1; }
done
echo "prereqs: done"
