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
# Checks, for base, overlays/dev, overlays/production and overlays/sync:
#   1. `kubectl kustomize` renders;
#   2. every built-in object passes `kubernetes-validate --strict` against
#      Kubernetes 1.30 (our minimum: gRPC probes GA, preStop.sleep on by
#      default) and the newest version the installed package knows;
#      an object whose schema is unknown fails (no silent WARN);
#   3. custom resources (ServiceMonitor, PrometheusRule) are not in
#      kubernetes-validate's schemas: they are checked structurally here and
#      the skip of schema validation is printed with its reason;
#   4. project invariants: no `replicas` on a Deployment an HPA scales (and
#      one where none does), every probe a native gRPC probe on a numeric
#      port served by --health-listen, port names valid IANA service names
#      and `grpc`/`kubernetes.io/h2c` only on cleartext (`https-grpc`/`https`
#      with TLS), drain budget, no subPath on the registry mount, ConfigMap
#      name without hash suffix, registry in binaryData, restricted
#      security context; and where a `portolan sync` sidecar runs
#      (overlays/sync, and only there): it is a native sidecar writing the
#      very file the server's --data names into an emptyDir the server
#      mounts read-only, seeded from the ConfigMap, with the server's byte
#      limit, a `portolan check` startupProbe, a restricted security
#      context and resources; the NetworkPolicy's egress is then exactly
#      DNS to kube-dns (53 UDP/TCP) and TCP 443, and nothing elsewhere.
# And, once: deploy/grafana/portolan-dashboard.json parses and every panel
# has targets with a PromQL `expr`.
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
for dir in deploy/kubernetes/base deploy/kubernetes/overlays/dev deploy/kubernetes/overlays/production deploy/kubernetes/overlays/sync; do
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
import re, sys, yaml

src, builtin_out, name = sys.argv[1], sys.argv[2], sys.argv[3]
docs = [d for d in yaml.safe_load_all(open(src)) if d]
problems = []

IANA_SVC_NAME = re.compile(r"^(?=.{1,15}$)(?=.*[a-z])[a-z0-9]+(-[a-z0-9]+)*$")

def check_prometheus_rule(d):
    """What the Prometheus Operator and our runbooks need from a rule."""
    out = []
    where = f"PrometheusRule/{d['metadata']['name']}"
    groups = (d.get("spec") or {}).get("groups") or []
    if not groups:
        out.append(f"{where}: spec.groups empty")
    names = set()
    count = 0
    for g in groups:
        if not g.get("name"):
            out.append(f"{where}: a group has no name")
        rules = g.get("rules") or []
        if not rules:
            out.append(f"{where}: group {g.get('name')!r} has no rules")
        for r in rules:
            count += 1
            extra = set(r) - {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
            if extra:
                out.append(f"{where}: rule {r.get('alert') or r.get('record')!r}: unexpected fields {sorted(extra)}")
            if "record" in r:
                if ":" not in r["record"]:
                    out.append(f"{where}: recording rule {r['record']!r} should be named level:metric:operations")
                continue
            a = r.get("alert")
            if not a:
                out.append(f"{where}: a rule has neither `alert` nor `record`")
                continue
            if a in names:
                out.append(f"{where}: alert {a} defined twice")
            names.add(a)
            if not isinstance(r.get("expr"), str) or not r["expr"].strip():
                out.append(f"{where}: alert {a}: `expr` missing")
            if not re.fullmatch(r"([0-9]+(ms|s|m|h|d|w|y))+", str(r.get("for", ""))):
                out.append(f"{where}: alert {a}: `for` missing or not a duration")
            if (r.get("labels") or {}).get("severity") not in ("critical", "warning", "info"):
                out.append(f"{where}: alert {a}: labels.severity must be critical, warning or info")
            ann = r.get("annotations") or {}
            for key in ("summary", "description", "runbook_url"):
                if not ann.get(key):
                    out.append(f"{where}: alert {a}: annotations.{key} missing")
            if not str(ann.get("runbook_url", "")).startswith("deploy/README.md#"):
                out.append(f"{where}: alert {a}: runbook_url should point at a deploy/README.md section")
    print(f"{where}: {len(groups)} group(s), {count} rule(s): {', '.join(sorted(names))}")
    return out
def syncing_expected(name):
    return name == "overlays/sync"

def check_sync_egress(egress):
    """Exactly: DNS to kube-dns on 53 UDP and TCP, and TCP 443."""
    out = []
    dns = [r for r in egress if {(p.get("port"), p.get("protocol")) for p in r.get("ports", [])}
           == {(53, "UDP"), (53, "TCP")}]
    https = [r for r in egress if [(p.get("port"), p.get("protocol")) for p in r.get("ports", [])]
             == [(443, "TCP")]]
    if len(dns) != 1 or len(https) != 1 or len(egress) != 2:
        out.append(f"NetworkPolicy: egress must be exactly DNS (53 UDP+TCP) and TCP 443, is {egress}")
        return out
    for peer in dns[0].get("to") or [{}]:
        if (peer.get("podSelector") or {}).get("matchLabels") != {"k8s-app": "kube-dns"} \
                or (peer.get("namespaceSelector") or {}).get("matchLabels") \
                != {"kubernetes.io/metadata.name": "kube-system"}:
            out.append(f"NetworkPolicy: DNS egress must go to kube-dns in kube-system only, is {peer}")
    if not https[0].get("to") or any("ipBlock" not in peer for peer in https[0]["to"]):
        out.append("NetworkPolicy: TCP 443 egress must name ipBlocks")
    return out

def restricted(csc):
    return csc.get("allowPrivilegeEscalation") is False and csc.get("readOnlyRootFilesystem") \
        and csc.get("capabilities", {}).get("drop") == ["ALL"] and csc.get("runAsNonRoot") \
        and csc.get("seccompProfile", {}).get("type") == "RuntimeDefault"

def flag_of(args, f):
    for i, a in enumerate(args):
        if a == f and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(f + "="):
            return a.split("=", 1)[1]
    return None

def check_sync_sidecar(pod, server, sidecar):
    """The sidecar writes what the server reads, as the server would accept it."""
    out = []
    where = f"Deployment: sync sidecar {sidecar['name']!r}"
    sargs, args = sidecar.get("args", []), server.get("args", [])
    if sidecar.get("restartPolicy") != "Always":
        out.append(f"{where}: must be a native sidecar (restartPolicy: Always)")
    if sidecar.get("command") != ["portolan"]:
        out.append(f"{where}: command must be [portolan] (the image's entrypoint is the server)")
    url, directory = flag_of(sargs, "--url"), flag_of(sargs, "--dir")
    if not url or not url.startswith("https://"):
        out.append(f"{where}: --url must be an https:// URL, is {url!r}")
    if not flag_of(sargs, "--interval"):
        out.append(f"{where}: --interval missing (without it the sidecar syncs once and exits)")
    name = flag_of(sargs, "--file") or (url or "").rstrip().rsplit("/", 1)[-1]
    data = f"{directory}/{name}"
    if flag_of(args, "--data") != data:
        out.append(f"Deployment: server --data {flag_of(args, '--data')!r} is not the file the sidecar writes ({data!r})")
    if flag_of(sargs, "--max-bytes") != flag_of(args, "--max-data-bytes"):
        out.append(f"{where}: --max-bytes must equal the server's --max-data-bytes")
    if flag_of(sargs, "--seed") != "/etc/portolan/registry/registry.csv.gz":
        out.append(f"{where}: --seed must be the ConfigMap's /etc/portolan/registry/registry.csv.gz")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    def mount(c, path):
        return next((m for m in c.get("volumeMounts", []) if m.get("mountPath") == path), None)
    smount, cmount = mount(server, directory), mount(sidecar, directory)
    if not smount or not cmount or smount.get("name") != cmount.get("name"):
        out.append(f"{where}: {directory} must be one volume mounted in both containers")
    else:
        vol = volumes.get(smount["name"], {})
        if "emptyDir" not in vol or not (vol["emptyDir"] or {}).get("sizeLimit"):
            out.append(f"{where}: the shared volume must be an emptyDir with a sizeLimit")
        if not smount.get("readOnly") or cmount.get("readOnly"):
            out.append(f"{where}: the server mounts {directory} read-only, the sidecar read-write")
        if smount.get("subPath") or cmount.get("subPath"):
            out.append(f"{where}: no subPath on the shared volume (renames would not show)")
    seed = mount(sidecar, "/etc/portolan/registry")
    if not seed or "configMap" not in volumes.get(seed.get("name"), {}) or seed.get("subPath"):
        out.append(f"{where}: the registry ConfigMap must be mounted (no subPath) at /etc/portolan/registry")
    probe = sidecar.get("startupProbe") or {}
    cmd = (probe.get("exec") or {}).get("command") or []
    if cmd[:2] != ["portolan", "check"] or not cmd or cmd[-1] != data:
        out.append(f"{where}: startupProbe must run `portolan check {data}` (the server waits for it)")
    if not restricted(sidecar.get("securityContext", {})):
        out.append(f"{where}: container security context is not restricted")
    res = sidecar.get("resources", {})
    if not res.get("requests", {}).get("cpu") or not res.get("requests", {}).get("memory") \
            or not res.get("limits", {}).get("memory"):
        out.append(f"{where}: cpu/memory requests and a memory limit are required")
    return out

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
        elif d["kind"] == "PrometheusRule":
            problems.extend(check_prometheus_rule(d))
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
if name in ("overlays/production", "overlays/sync"):
    need("ServiceMonitor"); need("PrometheusRule")

hpa_targets = {d["spec"]["scaleTargetRef"]["name"] for d in docs
               if d["kind"] == "HorizontalPodAutoscaler"}
tls = False
for d in docs:
    if d["kind"] == "NetworkPolicy":
        egress = d["spec"].get("egress") or []
        if not syncing_expected(name):
            if egress:
                problems.append("NetworkPolicy: no egress expected (the server needs none)")
        else:
            problems.extend(check_sync_egress(egress))
for d in docs:
    if d["kind"] == "Deployment":
        for c in d["spec"]["template"]["spec"]["containers"]:
            tls = tls or any(e.get("name") == "PORTOLAN_TLS_CERT" for e in c.get("env", [])) \
                or "--tls-cert" in c.get("args", [])

for d in docs:
    if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("portolan-registry"):
        if d["metadata"]["name"] != "portolan-registry":
            problems.append(f"registry ConfigMap has a hash suffix ({d['metadata']['name']}): "
                            "updates would roll the pods instead of hot-reloading")
        if "registry.csv.gz" not in (d.get("binaryData") or {}):
            problems.append("registry ConfigMap lacks binaryData registry.csv.gz")
    if d["kind"] == "Service":
        for p in d["spec"]["ports"]:
            if not IANA_SVC_NAME.match(p.get("name", "")):
                problems.append(f"Service {d['metadata']['name']}: port name {p.get('name')!r} is not a valid IANA_SVC_NAME")
        main = [p for p in d["spec"]["ports"] if p.get("port") == 50051]
        # Cleartext: `grpc` + kubernetes.io/h2c (Istio: plaintext gRPC).
        # TLS: `https-grpc` + `https` (Istio: TLS, passed through; `https`
        # is an IANA service name). Never `grpc*` on a TLS port.
        want = ("https-grpc", "https") if tls else ("grpc", "kubernetes.io/h2c")
        if not main or (main[0].get("name"), main[0].get("appProtocol")) != want:
            got = (main[0].get("name"), main[0].get("appProtocol")) if main else None
            problems.append(f"Service {d['metadata']['name']}: port 50051 should be name/appProtocol {want} "
                            f"({'TLS' if tls else 'cleartext'}), is {got}")
        elif main[0].get("targetPort") != want[0]:
            problems.append(f"Service {d['metadata']['name']}: port 50051 targetPort should be {want[0]!r}")
    if d["kind"] != "Deployment":
        continue
    dname = d["metadata"]["name"]
    if dname in hpa_targets and "replicas" in d["spec"]:
        problems.append(f"Deployment {dname}: has `replicas` although an HPA scales it "
                        "(every apply would reset the HPA's count)")
    if dname not in hpa_targets and "replicas" not in d["spec"]:
        problems.append(f"Deployment {dname}: no HPA scales it, so it needs `replicas`")
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
    args = c.get("args", [])
    def flag(f):
        return flag_of(args, f)
    health = flag("--health-listen")
    health_port = int(health.rsplit(":", 1)[1]) if health else None
    if not health:
        problems.append("Deployment: --health-listen missing (the probes' plaintext gRPC health port)")
    if "--metrics-listen" in args or not flag("--admin-listen"):
        problems.append("Deployment: use --admin-listen (not the --metrics-listen alias)")
    sidecars = [cc for cc in pod.get("initContainers", []) if (cc.get("args") or [None])[0] == "sync"]
    if syncing_expected(name) != bool(sidecars) or len(sidecars) > 1:
        problems.append(f"Deployment: {len(sidecars)} sync sidecar(s); expected "
                        f"{1 if syncing_expected(name) else 0} in {name}")
    for sidecar in sidecars:
        problems.extend(check_sync_sidecar(pod, c, sidecar))
    for cc in pod["containers"] + pod.get("initContainers", []):
        if cc in sidecars:
            continue
        ports = {p["containerPort"]: p.get("name") for p in cc.get("ports", [])}
        for n in ports.values():
            if n is not None and not IANA_SVC_NAME.match(n):
                problems.append(f"Deployment: container port name {n!r} is not a valid IANA_SVC_NAME")
        probes = ("startupProbe", "readinessProbe", "livenessProbe")
        if cc in pod.get("initContainers", []) and not any(cc.get(k) for k in probes):
            continue
        for probe in probes:
            p = cc.get(probe)
            if not p:
                problems.append(f"Deployment: container {cc['name']}: {probe} missing")
                continue
            if set(p) & {"tcpSocket", "httpGet", "exec"} or "grpc" not in p:
                problems.append(f"Deployment: container {cc['name']}: {probe} must be a native gRPC probe")
                continue
            port = p["grpc"].get("port")
            if not isinstance(port, int):
                problems.append(f"Deployment: {probe}.grpc.port must be a number (named ports are not supported)")
            elif port != health_port or port not in ports:
                problems.append(f"Deployment: {probe}.grpc.port {port} is not the declared --health-listen port {health_port}")
            want = "liveness" if probe == "livenessProbe" else "readiness"
            if p["grpc"].get("service") != want:
                problems.append(f"Deployment: {probe}.grpc.service should be {want!r}")
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
    if not sidecars and flag("--data") != "/etc/portolan/registry/registry.csv.gz":
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

echo "== deploy/grafana/portolan-dashboard.json"
if ! "$PY" - deploy/grafana/portolan-dashboard.json <<'PYEOF'
import json, sys
path = sys.argv[1]
try:
    dash = json.load(open(path))
except (OSError, ValueError) as e:
    print(f"FAIL: {path} does not parse: {e}")
    sys.exit(1)
problems = []
panels = []
def walk(ps):
    for p in ps:
        panels.append(p)
        walk(p.get("panels", []))  # panels inside collapsed rows
walk(dash.get("panels", []))
ds = [v for v in dash.get("templating", {}).get("list", []) if v.get("type") == "datasource"]
if not ds or ds[0].get("query") != "prometheus":
    problems.append("no `datasource` template variable of type prometheus")
exprs = 0
for p in panels:
    if p.get("type") == "row":
        continue
    targets = p.get("targets") or []
    if not targets or not all(isinstance(t.get("expr"), str) and t["expr"].strip() for t in targets):
        problems.append(f"panel {p.get('title')!r}: every panel needs targets with a PromQL expr")
    exprs += len(targets)
for q in problems:
    print("FAIL: " + q)
if not problems:
    print(f"ok: {len([p for p in panels if p.get('type') != 'row'])} panels, {exprs} queries, "
          f"schemaVersion {dash.get('schemaVersion')}")
sys.exit(1 if problems else 0)
PYEOF
then
  failures=$((failures + 1))
fi

if [[ $failures -ne 0 ]]; then
  echo "validate-manifests: $failures check group(s) failed"
  exit 1
fi
echo "validate-manifests: all kustomizations render and validate"
