#!/usr/bin/env bash
# Builds the node agent for linux/amd64 and linux/arm64 into dist-agent/,
# where .goreleaser.yaml puts both into every archive. Static, stripped,
# without a build ID: two checkouts give the same bytes.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p dist-agent
for arch in amd64 arm64; do
  CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -trimpath -ldflags "-s -w -buildid=" \
    -o "dist-agent/kubectl-etcd-agent-linux-$arch" ./cmd/kubectl-etcd-agent
done
