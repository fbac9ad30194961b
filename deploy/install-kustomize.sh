#!/usr/bin/env bash
# Make a kustomize v5 renderer available to tests/deploy, offline-friendly and idempotent.
#
# tests/deploy renders the overlays with `kubectl kustomize` when kubectl embeds kustomize v5
# or newer, else with a `kustomize` binary. Debian bookworm has no kubectl package (its
# kubernetes-client is kubectl 1.20 with kustomize v2, which cannot render components), so
# when neither is present this builds kustomize from its Go module into .venv/bin
# (needs Go; about two minutes on two cores, once).
#   usage: bash deploy/install-kustomize.sh
set -euo pipefail

KUSTOMIZE_VERSION=v5.5.0
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.venv/bin"

kubectl_has_v5() {
  command -v kubectl >/dev/null 2>&1 \
    && kubectl version --client 2>/dev/null | grep -Eq 'Kustomize Version: v([5-9]|[1-9][0-9])\.'
}

if kubectl_has_v5; then
  echo "kustomize: using kubectl's ($(kubectl version --client | grep Kustomize))"
  exit 0
fi
if [ -x "$bin/kustomize" ] || command -v kustomize >/dev/null 2>&1; then
  echo "kustomize: already installed"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "kustomize: neither kubectl (with kustomize v5) nor go is available" >&2
  exit 1
fi
mkdir -p "$bin"
echo "kustomize: building sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION into $bin"
GOBIN="$bin" GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
"$bin/kustomize" version
