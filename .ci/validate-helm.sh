#!/usr/bin/env bash
# Lints and renders the Helm chart deploy/helm/portolan with a real Helm
# engine (the PyPI package helm-python-sdk embeds Helm v4's Go SDK: no helm
# binary), validates what it renders, and checks that it agrees with the
# kustomize production overlay.
#
#   .ci/validate-helm.sh [VENV]
#
# Needs kubectl (renders the overlay) and, from VENV/bin (argument, or the
# HELM_CHECK_VENV environment variable) or else from PATH, a python with
# helm-python-sdk, kubernetes-validate and PyYAML (tests/python/requirements.txt):
#   python3 -m venv .venv && .venv/bin/pip install -r tests/python/requirements.txt
#
# Checks (.ci/helm_check.py):
#   1. helm lint --strict (kube 1.30) with the default values, with
#      values-production.yaml and with autoscaling off;
#   2. the renderings: built-in objects pass kubernetes-validate --strict
#      against 1.30 and the newest bundled version; ServiceMonitor and
#      PrometheusRule are checked structurally; no `replicas` with the HPA
#      (replicaCount without), gRPC probes on the numeric health port, valid
#      port names, TLS port naming; a too short drain budget fails to render;
#   3. agreement: the chart rendered as release `portolan` in namespace
#      `portolan` with values-production.yaml against
#      `kubectl kustomize deploy/kubernetes/overlays/production`, object by
#      object, on the fields that matter (labels but managed-by and
#      helm.sh/chart, probes, security contexts, ports, selectors, resources,
#      args, env, volumes, HPA, PDB, NetworkPolicy, ServiceMonitor, every
#      alert's name and expression, the registry data). A mismatch prints a diff.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "validate-helm: ERROR: $*" >&2; exit 1; }

command -v kubectl >/dev/null 2>&1 \
  || die "kubectl not found on PATH: it renders the kustomize overlay the chart is compared with."

VENV=${1:-${HELM_CHECK_VENV:-}}
if [[ -n "$VENV" ]]; then
  PY="$VENV/bin/python"
  [[ -x "$PY" ]] || die "$PY not found"
  export PATH="$VENV/bin:$PATH"
else
  PY=$(command -v python3 || command -v python || true)
  [[ -n "$PY" ]] || die "no python on PATH"
fi
"$PY" -c 'import helm_python, kubernetes_validate, yaml' 2>/dev/null \
  || die "$PY lacks helm-python-sdk, kubernetes-validate or PyYAML: pass a venv holding them (pip install -r tests/python/requirements.txt) as the first argument or put it first on PATH"

exec "$PY" .ci/helm_check.py
