#!/usr/bin/env bash
# Renders every kustomization under deploy/kubernetes (base and overlays) and
# validates each rendered object offline.
#
#   .ci/validate-manifests.sh [VENV]
#
# Needs:
#   * kubectl (its embedded kustomize renders the manifests);
#   * kubernetes-validate (PyPI), from VENV/bin (argument, or the
#     KUBERNETES_VALIDATE_VENV environment variable), else from PATH.
#     e.g. python3 -m venv /tmp/kv && /tmp/kv/bin/pip install kubernetes-validate==1.37.0
#
# Checks, for base, overlays/dev and overlays/production:
#   1. `kubectl kustomize` renders;
#   2. every built-in object passes `kubernetes-validate --strict` against
#      Kubernetes 1.30 (our minimum: gRPC probes GA, preStop.sleep on by
#      default) and the newest version the installed package knows;
#      an object whose schema is unknown fails (no silent WARN);
#   3. custom resources (ServiceMonitor) are not in kubernetes-validate's
#      schemas: they are checked structurally here and the skip of schema
#      validation is printed with its reason;
#   4. project invariants: numeric gRPC probe ports, drain budget, no
#      subPath on the registry mount, ConfigMap name without hash suffix,
#      registry in binaryData, restricted security context.
set -euo pipefail

MIN_K8S=1.30

cd "$(dirname "$0")/.."
ROOT=$(pwd)

die() { echo "validate-manifests: ERROR: $*" >&2; exit 1; }

if ! command -v kubectl >/dev/null 2>&1; then
  die "kubectl not found on PATH. It renders the kustomizations (kubectl kustomize). Install kubectl >= 1.27 (embedded kustomize v5) and re-run."
fi

VENV=${1:-${KUBERNETES_VALIDATE_VENV:-}}
if [[ -n "$VENV" ]]; then
  KV="$VENV/bin/kubernetes-validate"
  PY="$VENV/bin/python"
  [[ -x "$KV" ]] || die "$KV not found: install it with '$VENV/bin/pip install kubernetes-validate'"
else
  KV=$(command -v kubernetes-validate || true)
  [[ -n "$KV" ]] || die "kubernetes-validate not found: pass the venv holding it as the first argument, set KUBERNETES_VALIDATE_VENV, or put it on PATH (pip install kubernetes-validate)"
  # The python that runs kubernetes-validate (it has PyYAML).
  PY=$(head -n1 "$KV" | sed -n 's/^#!//p')
  [[ -x "$PY" ]] || PY=python3
fi

# The newest Kubernetes version this kubernetes-validate bundles schemas for.
LATEST_K8S=$("$PY" -c 'import kubernetes_validate.utils as u; print(u.latest_version())') \
  || die "cannot import kubernetes_validate with $PY"
echo "validate-manifests: kubectl $(kubectl version --client 2>/dev/null | head -n1 | sed 's/^Client Version: //'); kubernetes-validate $("$KV" --version) (schemas up to $LATEST_K8S); validating against $MIN_K8S and $LATEST_K8S"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

failures=0
for dir in deploy/kubernetes/base deploy/kubernetes/overlays/dev deploy/kubernetes/overlays/production; do
  name=${dir#deploy/kubernetes/}
  out="$WORK/${name//\//_}.yaml"
  echo "== $dir"
  if ! kubectl kustomize "$ROOT/$dir" > "$out"; then
    echo "FAIL: kubectl kustomize $dir did not render"
    failures=$((failures + 1))
    continue
  fi

  # Split built-in objects from custom resources; check custom resources
  # and the project's invariants.
  if ! "$PY" - "$out" "$WORK/${name//\//_}.builtin.yaml" "$name" <<'PYEOF'
import sys, yaml

src, builtin_out, name = sys.argv[1], sys.argv[2], sys.argv[3]
docs = [d for d in yaml.safe_load_all(open(src)) if d]
problems = []
builtin = []
kinds = {}
for d in docs:
    kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
    group = d["apiVersion"].split("/")[0] if "/" in d["apiVersion"] else ""
    if group == "monitoring.coreos.com":
        # Prometheus Operator CRD: not among kubernetes-validate's bundled
        # (built-in API) schemas. Check what the operator needs from us.
        print(f"SKIP schema validation of {d['kind']}/{d['metadata']['name']} "
              f"({d['apiVersion']}): a CustomResourceDefinition of the Prometheus "
              "Operator, not in kubernetes-validate's built-in schemas; checked "
              "structurally instead")
        if d["kind"] == "ServiceMonitor":
            spec = d.get("spec", {})
            if not spec.get("selector", {}).get("matchLabels"):
                problems.append("ServiceMonitor: spec.selector.matchLabels missing")
            eps = spec.get("endpoints") or []
            if not eps:
                problems.append("ServiceMonitor: spec.endpoints empty")
            allowed = {"port", "path", "scheme", "interval", "scrapeTimeout", "honorLabels",
                       "relabelings", "metricRelabelings", "tlsConfig", "targetPort"}
            for ep in eps:
                extra = set(ep) - allowed
                if extra:
                    problems.append(f"ServiceMonitor endpoint: unexpected fields {sorted(extra)}")
                if not isinstance(ep.get("port"), str):
                    problems.append("ServiceMonitor endpoint: `port` must name a Service port")
            # The named port must exist on a Service the selector matches.
            sel = spec.get("selector", {}).get("matchLabels", {})
            ports = set()
            for s in docs:
                if s["kind"] == "Service" and all(
                        s["metadata"].get("labels", {}).get(k) == v for k, v in sel.items()):
                    ports |= {p.get("name") for p in s["spec"].get("ports", [])}
            for ep in eps:
                if ep.get("port") not in ports:
                    problems.append(f"ServiceMonitor endpoint port {ep.get('port')!r} is not a port of a selected Service {sorted(p for p in ports if p)}")
        else:
            problems.append(f"unexpected custom resource {d['kind']}: add a check for it")
        continue
    builtin.append(d)

with open(builtin_out, "w") as f:
    yaml.safe_dump_all(builtin, f, sort_keys=False)

print("rendered objects: " + str(len(docs)) + " (" +
      ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + ")")

def need(kind, count=1):
    if kinds.get(kind, 0) != count:
        problems.append(f"expected {count} {kind}, rendered {kinds.get(kind, 0)}")

need("Deployment"); need("Service", 2); need("ConfigMap"); need("ServiceAccount")
need("PodDisruptionBudget"); need("NetworkPolicy")
need("HorizontalPodAutoscaler", 0 if name == "overlays/dev" else 1)
if name == "overlays/production":
    need("ServiceMonitor")

for d in docs:
    if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("portolan-registry"):
        if d["metadata"]["name"] != "portolan-registry":
            problems.append(f"registry ConfigMap has a hash suffix ({d['metadata']['name']}): "
                            "updates would roll the pods instead of hot-reloading")
        if "registry.csv.gz" not in (d.get("binaryData") or {}):
            problems.append("registry ConfigMap lacks binaryData registry.csv.gz")
    if d["kind"] == "Service":
        grpc = [p for p in d["spec"]["ports"] if p.get("name") == "grpc"]
        # Cleartext overlays say h2c; the TLS overlay must not.
        want = None if name == "overlays/production" else "kubernetes.io/h2c"
        if not grpc or grpc[0].get("appProtocol") != want:
            problems.append(f"Service {d['metadata']['name']}: port `grpc` should have appProtocol {want}")
    if d["kind"] != "Deployment":
        continue
    pod = d["spec"]["template"]["spec"]
    if pod.get("automountServiceAccountToken") is not False:
        problems.append("Deployment: automountServiceAccountToken must be false")
    psc = pod.get("securityContext", {})
    if not psc.get("runAsNonRoot") or psc.get("runAsUser") != 65532:
        problems.append("Deployment: pod must run as non-root uid 65532")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append("Deployment: seccompProfile RuntimeDefault missing")
    if not any(t.get("topologyKey") == "kubernetes.io/hostname"
               for t in pod.get("topologySpreadConstraints", [])):
        problems.append("Deployment: no topology spread across kubernetes.io/hostname")
    c = pod["containers"][0]
    csc = c.get("securityContext", {})
    if csc.get("allowPrivilegeEscalation") is not False or not csc.get("readOnlyRootFilesystem") \
            or csc.get("capabilities", {}).get("drop") != ["ALL"]:
        problems.append("Deployment: container security context is not restricted")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        p = c.get(probe)
        if not p:
            problems.append(f"Deployment: {probe} missing")
            continue
        if "grpc" in p and not isinstance(p["grpc"].get("port"), int):
            problems.append(f"Deployment: {probe}.grpc.port must be a number (named ports are not supported)")
        tls = any(e.get("name") == "PORTOLAN_TLS_CERT" for e in c.get("env", [])) or "--tls-cert" in c.get("args", [])
        if tls and "grpc" in p:
            problems.append(f"Deployment: {probe} is a gRPC probe but the server speaks TLS (kubelet gRPC probes cannot)")
        if not tls and "grpc" not in p:
            problems.append(f"Deployment: {probe} should be a native gRPC probe on the cleartext port")
    args = c.get("args", [])
    grace = 20
    for i, a in enumerate(args):
        val = None
        if a == "--shutdown-grace" and i + 1 < len(args):
            val = args[i + 1]
        elif a.startswith("--shutdown-grace="):
            val = a.split("=", 1)[1]
        if val is not None:
            grace = float(val.rstrip("s"))
    pre = (c.get("lifecycle", {}).get("preStop", {}).get("sleep") or {}).get("seconds", 0)
    tgps = pod.get("terminationGracePeriodSeconds", 30)
    if not pre:
        problems.append("Deployment: lifecycle.preStop.sleep missing")
    if tgps <= pre + grace:
        problems.append(f"Deployment: terminationGracePeriodSeconds {tgps} <= preStop {pre} + shutdown-grace {grace}")
    if "--data" not in args or "/etc/portolan/registry/registry.csv.gz" not in args:
        problems.append("Deployment: --data must point at the mounted registry file")
    for m in c.get("volumeMounts", []):
        if m.get("name") == "registry" and m.get("subPath"):
            problems.append("Deployment: the registry volume must be mounted as a directory, not subPath (no updates)")
    res = c.get("resources", {})
    if not res.get("requests", {}).get("cpu") or not res.get("requests", {}).get("memory") \
            or not res.get("limits", {}).get("memory"):
        problems.append("Deployment: cpu/memory requests and a memory limit are required")

for p in problems:
    print("FAIL: " + p)
sys.exit(1 if problems else 0)
PYEOF
  then
    failures=$((failures + 1))
  fi

  # kubernetes-validate prints WARN (and exits 0) for kinds it has no schema
  # for; treat that as a failure: every built-in object must be validated.
  log="$WORK/${name//\//_}.kv.log"
  rc=0
  "$KV" --strict -k "$MIN_K8S" -k "$LATEST_K8S" "$WORK/${name//\//_}.builtin.yaml" > "$log" 2>&1 || rc=$?
  sed "s#$WORK/##" "$log"
  if [[ $rc -ne 0 ]] || grep -qE '^(WARN|ERROR|FATAL)' "$log"; then
    echo "FAIL: kubernetes-validate --strict rejected (or could not check) objects of $dir"
    failures=$((failures + 1))
  else
    echo "ok: $(grep -c '^INFO' "$log") object validations passed for $dir"
  fi
done

if [[ $failures -ne 0 ]]; then
  echo "validate-manifests: $failures check group(s) failed"
  exit 1
fi
echo "validate-manifests: all kustomizations render and validate"
