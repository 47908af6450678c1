#!/usr/bin/env bash
# Lints the ports of the project's own manifests with `portolan lint`, as a
# user would: every kustomization under deploy/kubernetes rendered by
# `kubectl kustomize`, and the Helm chart rendered with its default and its
# production values (helm-python-sdk, as .ci/helm_check.py renders it), each
# checked for Istio and Linkerd with --fail-on warning.
#
#   .ci/lint-ports.sh PORTOLAN_BINARY [PYTHON]
#
# PYTHON must have helm-python-sdk and PyYAML (tests/python/requirements.txt);
# default: $PORTOLAN_PYTHON, else python3.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:?usage: .ci/lint-ports.sh PORTOLAN_BINARY [PYTHON]}
PY=${2:-${PORTOLAN_PYTHON:-python3}}
die() { echo "lint-ports: ERROR: $*" >&2; exit 1; }
command -v kubectl >/dev/null 2>&1 || die "kubectl not found on PATH (it renders the kustomizations)"

lint() {
  echo "-- $1"
  "$BIN" lint --mesh istio,linkerd --fail-on warning - || die "$1 has port findings (above)"
}

for dir in deploy/kubernetes/base deploy/kubernetes/overlays/*/; do
  dir=${dir%/}
  kubectl kustomize "$dir" | lint "$dir"
done

for values in default production; do
  "$PY" - "$values" <<'PY' | lint "deploy/helm/portolan ($values values)"
import os, sys
import yaml
sys.path.insert(0, ".ci")
import helm_check

values = helm_check.prod_values() if sys.argv[1] == "production" else {}
docs = helm_check.render(values)
if helm_check.failures:
    sys.exit("render failed: " + "; ".join(helm_check.failures))
print(yaml.safe_dump_all(docs, sort_keys=False))
PY
done
