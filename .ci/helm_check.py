"""Lints, renders and validates deploy/helm/portolan with a real Helm engine
(helm-python-sdk: Helm v4's Go SDK behind a C ABI; no helm binary), and
checks that the chart agrees with the kustomize production overlay.

    python .ci/helm_check.py          (run by .ci/validate-helm.sh)

Needs helm-python-sdk, kubernetes-validate and PyYAML in the running
Python (tests/python/requirements.txt) and kubectl on PATH.
"""
import base64
import difflib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import helm_python as helm
import kubernetes_validate.utils as kv_utils
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CHART = os.path.join(ROOT, "deploy", "helm", "portolan")
OVERLAY = os.path.join(ROOT, "deploy", "kubernetes", "overlays", "production")
MIN_K8S = "1.30"
RELEASE, NAMESPACE = "portolan", "portolan"
IANA_SVC_NAME = re.compile(r"^(?=.{1,15}$)(?=.*[a-z])[a-z0-9]+(-[a-z0-9]+)*$")

failures = []


def fail(msg):
    print("FAIL: " + msg)
    failures.append(msg)


def prod_values():
    with open(os.path.join(CHART, "values-production.yaml")) as f:
        return yaml.safe_load(f)


def render(values):
    """Renders the chart like `helm template RELEASE CHART -n NAMESPACE`."""
    with helm.Chart.load(CHART) as chart:
        out = chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs = []
    for path in sorted(out):
        if path.endswith("NOTES.txt"):
            if not out[path].strip():
                fail(f"{path} rendered empty")
            continue
        docs += [d for d in yaml.safe_load_all(out[path]) if d]
    return docs


def lint(name, values):
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE,
                       kube_version=f"v{MIN_K8S}.0")
    bad = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    for m in report.get("messages", []):
        sev = {1: "INFO", 2: "WARNING", 3: "ERROR"}.get(m.get("severity"), "?")
        print(f"  lint ({name}) {sev} {m.get('path')}: {m.get('error')}")
    for e in report.get("errors", []):
        fail(f"helm lint ({name}): {e}")
    for m in bad:
        fail(f"helm lint ({name}, strict): {m.get('path')}: {m.get('error')}")
    if not bad and not report.get("errors"):
        print(f"ok: helm lint --strict ({name}, kube {MIN_K8S}): "
              f"{report.get('total_charts_linted')} chart, no warnings or errors")


def kubernetes_validate(name, docs, workdir):
    builtin = [d for d in docs if not d["apiVersion"].startswith("monitoring.coreos.com/")]
    path = os.path.join(workdir, f"{name}.builtin.yaml")
    with open(path, "w") as f:
        yaml.safe_dump_all(builtin, f, sort_keys=False)
    kv = shutil.which("kubernetes-validate") or os.path.join(os.path.dirname(sys.executable), "kubernetes-validate")
    latest = kv_utils.latest_version()
    res = subprocess.run([kv, "--strict", "-k", MIN_K8S, "-k", latest, path],
                         capture_output=True, text=True)
    log = (res.stdout + res.stderr).replace(workdir + "/", "")
    bad = [l for l in log.splitlines() if re.match(r"^(WARN|ERROR|FATAL)", l)]
    if res.returncode != 0 or bad:
        print(log)
        fail(f"kubernetes-validate --strict rejected (or could not check) objects of {name}")
    else:
        n = len([l for l in log.splitlines() if l.startswith("INFO")])
        print(f"ok: {n} object validations passed for {name} "
              f"({len(builtin)} built-in objects x Kubernetes {MIN_K8S} and {latest})")


def check_structure(name, docs, values):
    """Custom resources structurally, and the chart's invariants."""
    kinds = {}
    for d in docs:
        kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
    print(f"rendered ({name}): {len(docs)} objects (" +
          ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + ")")
    services = [d for d in docs if d["kind"] == "Service"]
    hpa = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    tls = values.get("tls", {}).get("enabled", False)
    for d in docs:
        where = f"{name}: {d['kind']}/{d['metadata']['name']}"
        if d["kind"] == "ServiceMonitor":
            print(f"SKIP schema validation of {d['kind']}/{d['metadata']['name']}: a Prometheus "
                  "Operator CRD, not in kubernetes-validate's schemas; checked structurally")
            sel = d["spec"].get("selector", {}).get("matchLabels") or {}
            if not sel:
                fail(f"{where}: spec.selector.matchLabels missing")
            ports = {p.get("name") for s in services
                     if all(s["metadata"]["labels"].get(k) == v for k, v in sel.items())
                     for p in s["spec"]["ports"]}
            for ep in d["spec"].get("endpoints") or [None]:
                if not ep or ep.get("port") not in ports:
                    fail(f"{where}: endpoint port {ep and ep.get('port')!r} not on a selected Service {sorted(ports)}")
        elif d["kind"] == "PrometheusRule":
            print(f"SKIP schema validation of {d['kind']}/{d['metadata']['name']}: a Prometheus "
                  "Operator CRD, not in kubernetes-validate's schemas; checked structurally")
            rules = [r for g in d["spec"].get("groups") or [] for r in g.get("rules") or []]
            if not rules:
                fail(f"{where}: no rules")
            for r in rules:
                ok = (r.get("alert") and isinstance(r.get("expr"), str) and r.get("for")
                      and (r.get("labels") or {}).get("severity")
                      and (r.get("annotations") or {}).get("summary"))
                if not ok:
                    fail(f"{where}: rule {r.get('alert')!r} needs alert, expr, for, labels.severity, annotations.summary")
        elif d["kind"] == "Service":
            for p in d["spec"]["ports"]:
                if not IANA_SVC_NAME.match(p["name"]):
                    fail(f"{where}: port name {p['name']!r} is not a valid IANA_SVC_NAME")
            main = [p for p in d["spec"]["ports"] if p["port"] == 50051][0]
            want = ("https-grpc", "https") if tls else ("grpc", "kubernetes.io/h2c")
            if (main["name"], main.get("appProtocol")) != want:
                fail(f"{where}: port 50051 should be {want}, is {(main['name'], main.get('appProtocol'))}")
        elif d["kind"] == "Deployment":
            spec = d["spec"]
            if hpa and "replicas" in spec:
                fail(f"{where}: `replicas` set although the HPA owns the count")
            if not hpa and spec.get("replicas") != values.get("replicaCount", 2):
                fail(f"{where}: without an HPA, replicas should be replicaCount")
            for c in spec["template"]["spec"]["containers"]:
                names = {p["containerPort"]: p["name"] for p in c["ports"]}
                for n in names.values():
                    if not IANA_SVC_NAME.match(n):
                        fail(f"{where}: container port name {n!r} is not a valid IANA_SVC_NAME")
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    p = c.get(probe) or {}
                    if not isinstance((p.get("grpc") or {}).get("port"), int) \
                            or p["grpc"]["port"] not in names or "--health-listen" not in c["args"]:
                        fail(f"{where}: {probe} must be a native gRPC probe on the numeric --health-listen port")
    return kinds


# --- chart / kustomize agreement -----------------------------------------

def get(obj, path):
    for key in path.split("."):
        if isinstance(obj, list):
            obj = obj[int(key)]
        elif isinstance(obj, dict):
            obj = obj.get(key)
        else:
            return None
        if obj is None:
            return None
    return obj


def labels_that_matter(labels):
    """Every label but the tool-specific ones (managed-by, helm.sh/chart)."""
    return {k: v for k, v in (labels or {}).items()
            if k not in ("app.kubernetes.io/managed-by", "helm.sh/chart")}


CONTAINER_FIELDS = ["image", "imagePullPolicy", "args", "env", "ports", "startupProbe", "readinessProbe",
                    "livenessProbe", "lifecycle", "resources", "securityContext", "volumeMounts"]
COMPARE = {
    "Deployment": ["spec.replicas", "spec.selector", "spec.strategy", "spec.revisionHistoryLimit",
                   "spec.template.spec.securityContext", "spec.template.spec.serviceAccountName",
                   "spec.template.spec.automountServiceAccountToken", "spec.template.spec.enableServiceLinks",
                   "spec.template.spec.terminationGracePeriodSeconds",
                   "spec.template.spec.topologySpreadConstraints", "spec.template.spec.volumes"]
                  + [f"spec.template.spec.containers.0.{f}" for f in CONTAINER_FIELDS]
                  + ["spec.template.spec.containers.#names"],
    "Service": ["spec.type", "spec.clusterIP", "spec.publishNotReadyAddresses", "spec.selector", "spec.ports"],
    "PodDisruptionBudget": ["spec"],
    "HorizontalPodAutoscaler": ["spec.minReplicas", "spec.maxReplicas", "spec.metrics", "spec.behavior",
                                "spec.scaleTargetRef"],
    "NetworkPolicy": ["spec"],
    "ServiceMonitor": ["spec"],
    "PrometheusRule": ["spec.groups.#alerts", "spec"],
    "ConfigMap": ["binaryData", "data"],
    "ServiceAccount": ["automountServiceAccountToken"],
}


# Lists whose order does not matter (kustomize's strategic merge puts an
# overlay's items first): compared sorted by name.
UNORDERED = ("containers.0.env", "containers.0.volumeMounts", "spec.volumes")


def value(obj, path):
    if path == "binaryData":
        # kustomize wraps the base64 text; compare the bytes' digests.
        return {k: "sha256:" + hashlib.sha256(base64.b64decode(v)).hexdigest()
                for k, v in (get(obj, path) or {}).items()}
    if path.endswith(UNORDERED):
        return sorted(get(obj, path) or [], key=lambda i: i.get("name", ""))
    if path.endswith(".#names"):
        return [c["name"] for c in get(obj, path[:-len(".#names")]) or []]
    if path.endswith(".#alerts"):
        return [(r.get("alert"), r.get("expr")) for g in get(obj, path[:-len(".#alerts")]) or []
                for r in g.get("rules", [])]
    return get(obj, path)


def agreement(kustomized, charted):
    print(f"== agreement: kubectl kustomize {os.path.relpath(OVERLAY, ROOT)} "
          f"vs the chart (release {RELEASE}, namespace {NAMESPACE}, values-production.yaml)")
    key = lambda d: (d["kind"], d["metadata"]["name"])
    k = {key(d): d for d in kustomized}
    h = {key(d): d for d in charted}
    if set(k) != set(h):
        fail(f"agreement: objects differ: only kustomize {sorted(set(k) - set(h))}, "
             f"only chart {sorted(set(h) - set(k))}")
    compared = 0
    for obj in sorted(set(k) & set(h)):
        a, b = k[obj], h[obj]
        paths = ["metadata.labels", "spec.template.metadata.labels"] + COMPARE.get(obj[0], [])
        seen = []
        for path in paths:
            va, vb = value(a, path), value(b, path)
            if path.endswith("labels"):
                if va is None and vb is None:
                    continue
                va, vb = labels_that_matter(va), labels_that_matter(vb)
            seen.append(path)
            compared += 1
            if va != vb:
                da = json.dumps(va, indent=2, sort_keys=True).splitlines()
                db = json.dumps(vb, indent=2, sort_keys=True).splitlines()
                diff = "\n".join(difflib.unified_diff(da, db, "kustomize", "helm", lineterm="", n=2))
                fail(f"agreement: {obj[0]}/{obj[1]} {path} differs:\n{diff}")
        print(f"compared {obj[0]}/{obj[1]}: {', '.join(seen)}")
    print(f"agreement: {compared} fields compared over {len(set(k) & set(h))} objects")


def main():
    if not shutil.which("kubectl"):
        print("FAIL: kubectl not found on PATH (it renders the kustomize overlay)")
        return 1
    print(f"helm-python-sdk {helm.__version__} (Helm SDK {helm.helm_sdk_version()}), "
          f"chart {os.path.relpath(CHART, ROOT)}")
    scenarios = {
        "defaults": {},
        "production": prod_values(),
        "no-autoscaling": {"autoscaling": {"enabled": False}, "replicaCount": 4,
                           "registry": {"existingConfigMap": "my-registry"}},
    }
    work = tempfile.mkdtemp()
    try:
        rendered = {}
        for name, values in scenarios.items():
            print(f"== {name}")
            lint(name, values)
            try:
                rendered[name] = render(values)
            except helm.HelmError as e:
                fail(f"render ({name}): {e}")
                continue
            check_structure(name, rendered[name], values)
            kubernetes_validate(name, rendered[name], work)
        # A drain budget the server cannot keep must not render.
        try:
            render({"server": {"terminationGracePeriodSeconds": 20}})
            fail("render with terminationGracePeriodSeconds 20 (< preStop 5 + grace 20) should fail")
        except helm.HelmError:
            print("ok: a drain budget shorter than preStop + shutdown grace is refused")
        if "production" in rendered:
            out = subprocess.run(["kubectl", "kustomize", OVERLAY], capture_output=True, text=True)
            if out.returncode != 0:
                fail("kubectl kustomize failed: " + out.stderr)
            else:
                agreement([d for d in yaml.safe_load_all(out.stdout) if d], rendered["production"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"validate-helm: {len(failures)} failure(s)")
        return 1
    print("validate-helm: chart lints, renders, validates and agrees with the production overlay")
    return 0


if __name__ == "__main__":
    sys.exit(main())
