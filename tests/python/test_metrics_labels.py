"""/metrics stays parseable whatever request paths clients send.

Calls paths that hold `"` and `\\` (which used to be written into label
values, breaking the exposition), plus more distinct junk paths than the
server once gave their own series, then scrapes /metrics from the real
portolan-server binary and parses it with the Prometheus project's own
parsers (prometheus_client: the OpenMetrics parser, as the endpoint serves
OpenMetrics, and the classic text-format parser). Every label value must be
a served service or method, or `unknown`; the junk is counted under one
`unknown` series and real methods keep their own.

The server binary and the registry file come from the same places as
test_interop.py (it provides the helpers).
"""

from __future__ import annotations

import subprocess
import urllib.request

import grpc
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from test_interop import (
    RunningServer,
    _free_port,
    _server_bin,
    _shared_csv,
    _wait_serving,
)

SERVED_SERVICES = {
    "portolan.v1.PortRegistryService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "unknown",
}
JUNK_PATHS = [
    '/evil"svc/M',
    '/x",grpc_code="OK/y',
    "/back\\slash/M\\",
    "/portolan.v1.Other/LookupPort",
] + [f"/probe.Service{i}/Method{i}" for i in range(100)]


@pytest.fixture(scope="module")
def metrics_server():
    metrics_port = _free_port()
    address = f"127.0.0.1:{_free_port()}"
    proc = subprocess.Popen(
        [
            str(_server_bin()),
            "--listen",
            address,
            "--data",
            str(_shared_csv()),
            "--admin-listen",
            f"127.0.0.1:{metrics_port}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = RunningServer(proc, address)
    try:
        _wait_serving(running)
        yield running, f"http://127.0.0.1:{metrics_port}/metrics"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _call(channel: grpc.Channel, path: str) -> grpc.StatusCode:
    call = channel.unary_unary(path)
    try:
        call(b"", timeout=10)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def test_junk_paths_never_become_labels(metrics_server):
    running, metrics_url = metrics_server
    with grpc.insecure_channel(running.address) as channel:
        for path in JUNK_PATHS:
            assert _call(channel, path) == grpc.StatusCode.UNIMPLEMENTED, path
        # A real method after all that junk: GetRegistryInfo takes an
        # empty message.
        assert _call(channel, "/portolan.v1.PortRegistryService/GetRegistryInfo") == (
            grpc.StatusCode.OK
        )

    with urllib.request.urlopen(metrics_url, timeout=10) as reply:
        text = reply.read().decode("utf-8")

    families = {f.name: f for f in parse_openmetrics(text)}
    # The classic text parser must accept it too (it ignores `# EOF`).
    assert {f.name for f in parse_text(text)}

    started = families["grpc_server_started"]
    by_labels = {}
    for sample in started.samples:
        labels = sample.labels
        assert set(labels) == {"grpc_type", "grpc_service", "grpc_method"}, labels
        assert labels["grpc_service"] in SERVED_SERVICES, labels
        by_labels[(labels["grpc_service"], labels["grpc_method"])] = sample.value
    assert by_labels[("unknown", "unknown")] == len(JUNK_PATHS)
    assert by_labels[("portolan.v1.PortRegistryService", "GetRegistryInfo")] >= 1
    for family in families.values():
        for sample in family.samples:
            service = sample.labels.get("grpc_service")
            assert service is None or service in SERVED_SERVICES, sample
    handled = families["grpc_server_handled"]
    codes = {
        s.labels["grpc_code"]
        for s in handled.samples
        if s.labels["grpc_service"] == "unknown"
    }
    assert codes == {"Unimplemented"}, codes
