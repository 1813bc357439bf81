"""Hostile clients and unlucky operators against the real server process: idle streams, malformed and
oversized bodies, out-of-range version numbers, storage damage, and a lost or swapped keyring."""

from __future__ import annotations

import random
import shutil
import sqlite3
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from secretsvc.service import limits
from secretsvc.v1 import admin_pb2, secrets_pb2, transit_pb2
from tests.integration.serverproc import ServerProcess, Stubs, cli_command
from tests.integration.test_service_api import get, put, ref

_MAX_U64 = 2**64 - 1


# --- 1. streams cannot hold the server --------------------------------------------------------------------

class _IdleStreams:
    """Streaming calls that send one message (if any) and then sit idle until closed."""

    def __init__(self) -> None:
        self._release = threading.Event()
        self.channels: list[grpc.Channel] = []
        self.calls: list[Any] = []
        self.codes: list[grpc.StatusCode | None] = []
        self._threads: list[threading.Thread] = []

    def _requests(self) -> Iterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        self._release.wait(60)

    def open_reflection(self, addr: str, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        channel = grpc.insecure_channel(addr)
        self.channels.append(channel)
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        self._consume(stub.ServerReflectionInfo(self._requests(), metadata=metadata, timeout=60))

    def open_watch(self, addr: str) -> None:
        channel = grpc.insecure_channel(addr)
        self.channels.append(channel)
        stub = health_pb2_grpc.HealthStub(channel)
        self._consume(stub.Watch(health_pb2.HealthCheckRequest(), timeout=60))

    def _consume(self, call: Any) -> None:
        index = len(self.codes)
        self.codes.append(None)
        self.calls.append(call)

        def drain() -> None:
            try:
                for _ in call:
                    pass
                self.codes[index] = grpc.StatusCode.OK
            except grpc.RpcError as exc:
                self.codes[index] = exc.code()

        thread = threading.Thread(target=drain, daemon=True)
        thread.start()
        self._threads.append(thread)

    def settle(self, refused: int, timeout: float = 10) -> None:
        """Wait until `refused` of the calls have ended (the others stay open)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and sum(c is not None for c in self.codes) < refused:
            time.sleep(0.05)

    def close(self) -> None:
        self._release.set()
        for call in self.calls:
            call.cancel()
        for thread in self._threads:
            thread.join(10)
        for channel in self.channels:
            channel.close()


@pytest.fixture
def idle_streams() -> Iterator[_IdleStreams]:
    streams = _IdleStreams()
    yield streams
    streams.close()


def _still_served(server: ServerProcess) -> None:
    """An authenticated unary call and a health check both answer promptly."""
    stubs = Stubs(server)
    try:
        put(stubs, "probe", b"value")
        response = stubs.secrets.GetSecret(secrets_pb2.GetSecretRequest(ref=ref("probe")), metadata=stubs.md,
                                           timeout=3)
        assert response.value == b"value"
        health = health_pb2_grpc.HealthStub(stubs.channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        stubs.close()


def test_idle_reflection_streams_do_not_stop_the_server(server: ServerProcess,
                                                        idle_streams: _IdleStreams) -> None:
    # The reported attack: sixteen channels each holding a reflection stream open. Reflection is off unless
    # enabled, so each is refused at once and holds nothing.
    for _ in range(16):
        idle_streams.open_reflection(server.addr)
    idle_streams.settle(16)
    assert set(idle_streams.codes) == {grpc.StatusCode.UNIMPLEMENTED}
    _still_served(server)


def test_enabled_reflection_needs_a_token_and_is_bounded(make_server: Callable[..., ServerProcess],
                                                         idle_streams: _IdleStreams) -> None:
    server = make_server(extra_args=("--reflection", "--workers", "16")).start()
    for _ in range(16):
        idle_streams.open_reflection(server.addr)
    idle_streams.settle(16)
    assert set(idle_streams.codes) == {grpc.StatusCode.UNAUTHENTICATED}

    authed = _IdleStreams()
    try:
        for _ in range(16):
            authed.open_reflection(server.addr, server.metadata())
        # One client address may hold four streams (the default max_streams_per_peer); the rest are refused.
        authed.settle(12)
        assert authed.codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 12
        assert authed.codes.count(None) == 4
        _still_served(server)
    finally:
        authed.close()
    # Closed streams give their slots back.
    again = _IdleStreams()
    try:
        for _ in range(4):
            again.open_reflection(server.addr, server.metadata())
        again.settle(1, timeout=1.5)
        assert again.codes.count(None) == 4
    finally:
        again.close()


def test_idle_unauthenticated_health_watches_are_bounded(make_server: Callable[..., ServerProcess],
                                                         idle_streams: _IdleStreams) -> None:
    server = make_server(extra_args=("--workers", "4")).start()
    for _ in range(16):
        idle_streams.open_watch(server.addr)
    # Four workers: two stream slots, of which unauthenticated callers may hold one.
    idle_streams.settle(15)
    assert idle_streams.codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 15
    _still_served(server)


# --- 3. malformed and oversized bodies --------------------------------------------------------------------

def _raw_call(server: ServerProcess, method: str, body: bytes, metadata: tuple[tuple[str, str], ...] = (),
              timeout: float = 30) -> grpc.RpcError:
    with server.channel() as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as info:
            call(body, metadata=metadata, timeout=timeout)
    return info.value


def _metric(server: ServerProcess, method: str, code: str) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5).read().decode()
    prefix = f'secretsvc_rpc_requests_total{{code="{code}",method="{method}"}} '
    for line in body.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    return 0.0


def _rss_bytes(server: ServerProcess) -> int:
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_body_that_is_not_protobuf_is_invalid_argument(server: ServerProcess) -> None:
    garbage = b"\xff\xff\xff\xff\x0f" + random.Random(3).randbytes(64)
    err = _raw_call(server, "/secretsvc.v1.Secrets/GetSecret", garbage, server.metadata())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid GetSecret request" in (err.details() or "")
    assert _metric(server, "GetSecret", "INVALID_ARGUMENT") == 1
    log = server.log()
    assert "Traceback" not in log
    assert "Exception deserializing" not in log
    assert sum("not a valid GetSecret request" in line for line in log.splitlines()) == 1


def test_unauthenticated_bodies_are_not_parsed(server: ServerProcess) -> None:
    # Six million empty items: 12 MB on the wire, hundreds of MB once parsed.
    body = b"\x1a\x00" * 6_000_000
    assert len(body) <= limits.MAX_MESSAGE_BYTES
    before = _rss_bytes(server)
    started = time.monotonic()
    forged = (("authorization", "Bearer svc_0123456789abcdef_" + "A" * 43),)
    for metadata in ((), forged):
        err = _raw_call(server, "/secretsvc.v1.Transit/EncryptBatch", body, metadata)
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert time.monotonic() - started < 10
    # Parsing it cost 325 MB; receiving the raw body costs at most a few copies of 12 MB.
    assert _rss_bytes(server) - before < 100 * 1024 * 1024
    assert _metric(server, "EncryptBatch", "UNAUTHENTICATED") == 2


def test_each_method_has_its_own_request_size_bound(server: ServerProcess) -> None:
    stubs = Stubs(server)
    try:
        big_path = secrets_pb2.GetSecretRequest(ref=ref("p"), request_id="r", version=1)
        body = big_path.SerializeToString() + b"\x0a" + b"\x80\x80\x08" + b"x" * (128 * 1024)  # an unknown field
        err = _raw_call(server, "/secretsvc.v1.Secrets/GetSecret", body, server.metadata())
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "maximum of 131072" in (err.details() or "")
        # A full-size value still goes through PutSecret.
        value = random.Random(4).randbytes(limits.MAX_SECRET_VALUE_BYTES)
        assert put(stubs, "large", value).version == 1
    finally:
        stubs.close()


# --- 4. version numbers beyond the database's integers ----------------------------------------------------

@pytest.mark.parametrize("version", [2**63, _MAX_U64])
def test_version_numbers_beyond_the_limit_are_invalid(stubs: Stubs, server: ServerProcess, version: int) -> None:
    put(stubs, "v", b"value")
    versions = secrets_pb2.VersionsRequest(ref=ref("v"), versions=[version])
    calls: list[Callable[[], object]] = [
        lambda: get(stubs, "v", version),
        lambda: stubs.secrets.DeleteVersions(versions, metadata=stubs.md),
        lambda: stubs.secrets.UndeleteVersions(versions, metadata=stubs.md),
        lambda: stubs.secrets.DestroyVersions(versions, metadata=stubs.md),
        lambda: stubs.secrets.PutSecret(secrets_pb2.PutSecretRequest(ref=ref("v"), value=b"x", cas=version),
                                        metadata=stubs.md),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as info:
            call()
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "MAX_VERSION_NUMBER=9223372036854775807" in (info.value.details() or "")
    assert "Traceback" not in server.log()
    assert get(stubs, "v").value == b"value"


# --- 5. storage errors ------------------------------------------------------------------------------------

def _damage(server: ServerProcess, *statements: str) -> None:
    server.stop()
    db = sqlite3.connect(server.data_dir / "secretsvc.db")
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()
    server.start()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE secret_versions SET envelope = 'text, not bytes' WHERE path = 'victim'",
        "UPDATE secret_versions SET version = 'one' WHERE path = 'victim'",
        "UPDATE secrets SET current_version = 7 WHERE path = 'victim'",
        "UPDATE secrets SET custom_metadata = '{\"k\": ' WHERE path = 'victim'",
        "UPDATE secrets SET custom_metadata = '" + "[" * 100_000 + "' WHERE path = 'victim'",
    ],
    ids=["envelope-type", "version-type", "current-version-missing", "metadata-json", "metadata-deep-json"],
)
def test_damaged_rows_are_data_loss(server: ServerProcess, statement: str) -> None:
    stubs = Stubs(server)
    put(stubs, "victim", b"value", custom_metadata=secrets_pb2.CustomMetadata(entries={"k": "v"}))
    put(stubs, "bystander", b"fine")
    stubs.close()
    _damage(server, statement)
    stubs = Stubs(server)
    try:
        read_meta = "custom_metadata" in statement or "current_version" in statement
        with pytest.raises(grpc.RpcError) as info:
            if "custom_metadata" in statement:
                stubs.secrets.GetSecretMetadata(secrets_pb2.GetSecretMetadataRequest(ref=ref("victim")),
                                                metadata=stubs.md)
            else:
                get(stubs, "victim")
        details = info.value.details() or ""
        assert info.value.code() == grpc.StatusCode.DATA_LOSS, details
        assert "None" not in details
        assert "(request id " in details
        assert str(server.data_dir) not in details
        assert get(stubs, "bystander").value == b"fine"
        assert read_meta or "damaged" in details
    finally:
        stubs.close()
    assert "Traceback" not in server.log()


def test_a_corrupt_database_file_is_not_named_to_callers(server: ServerProcess) -> None:
    stubs = Stubs(server)
    rng = random.Random(5)
    for i in range(300):
        put(stubs, f"filler/{i:04d}", rng.randbytes(2048))
    stubs.close()
    server.stop()
    db_file = server.data_dir / "secretsvc.db"
    data = bytearray(db_file.read_bytes())
    page = 4096
    for offset in range(len(data) // 2 - len(data) // 2 % page, len(data) - page, page * 3):
        data[offset:offset + page] = rng.randbytes(page)  # whole pages of noise, as a bad disk would leave
    db_file.write_bytes(bytes(data))
    server.start()
    stubs = Stubs(server)
    failures = []
    try:
        for i in range(300):
            try:
                get(stubs, f"filler/{i:04d}")
            except grpc.RpcError as exc:
                failures.append(exc)
    finally:
        stubs.close()
    assert failures
    for failure in failures:
        details = failure.details() or ""
        assert failure.code() in (grpc.StatusCode.DATA_LOSS, grpc.StatusCode.UNAVAILABLE), details
        assert str(server.data_dir) not in details and "secretsvc.db" not in details
        assert "(request id " in details
    # The operator's log has the file.
    assert str(db_file) in server.log()


# --- 2. a missing or different keyring --------------------------------------------------------------------

def _serve_once(server: ServerProcess) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command("serve", "--data-dir", str(server.data_dir), "--listen", server.addr, "--metrics-listen", ""),
        capture_output=True, text=True, timeout=60, check=False,
    )


def _key_id(keyring: Path) -> str:
    import json

    return str(json.loads(keyring.read_text())["key_id"])


def test_a_missing_keyring_is_not_recreated_over_stored_data(make_server: Callable[..., ServerProcess],
                                                              tmp_path: Path) -> None:
    server = make_server().start()
    stubs = Stubs(server)
    put(stubs, "kept", b"precious")
    stubs.close()
    server.stop()
    keyring = server.data_dir / "keyring.json"
    key_id = _key_id(keyring)
    backup = tmp_path / "keyring.backup"
    shutil.copy2(keyring, backup)
    keyring.unlink()
    database_before = (server.data_dir / "secretsvc.db").read_bytes()

    result = _serve_once(server)
    assert result.returncode == 1
    assert key_id in result.stderr
    assert str(keyring) in result.stderr
    assert "Restore the keyring file" in result.stderr
    assert "Traceback" not in result.stderr
    assert not keyring.exists()  # no new keyring was made
    assert (server.data_dir / "secretsvc.db").read_bytes() == database_before

    shutil.copy2(backup, keyring)
    server.start()
    stubs = Stubs(server)
    assert get(stubs, "kept").value == b"precious"
    stubs.close()


def test_a_different_or_older_keyring_is_refused(make_server: Callable[..., ServerProcess],
                                                  tmp_path: Path) -> None:
    server = make_server().start()
    stubs = Stubs(server)
    put(stubs, "kept", b"precious")
    stubs.transit.CreateKey(transit_pb2.CreateKeyRequest(name="orders"), metadata=stubs.md)
    keyring = server.data_dir / "keyring.json"
    old = tmp_path / "keyring.v1"
    shutil.copy2(keyring, old)
    stubs.admin.RotateRootKey(admin_pb2.RotateRootKeyRequest(), metadata=stubs.md)
    put(stubs, "kept", b"newer")
    stubs.close()
    server.stop()
    current = tmp_path / "keyring.current"
    shutil.copy2(keyring, current)
    key_id = _key_id(keyring)

    # A backup from before the rotation lacks version 2.
    shutil.copy2(old, keyring)
    result = _serve_once(server)
    assert result.returncode == 1
    assert f"{key_id} version 2" in result.stderr

    # Another data directory's keyring holds a different key altogether.
    other = make_server()
    other.data_dir = tmp_path / "other"
    other.start().stop()
    shutil.copy2(other.data_dir / "keyring.json", keyring)
    result = _serve_once(server)
    assert result.returncode == 1
    assert f"{key_id} versions 1, 2" in result.stderr

    # A database from before key versions were recorded: they are read from the stored envelopes instead.
    shutil.copy2(current, keyring)
    db = sqlite3.connect(server.data_dir / "secretsvc.db")
    db.execute("DELETE FROM kek_versions")
    db.commit()
    db.close()
    keyring.unlink()
    result = _serve_once(server)
    assert result.returncode == 1
    assert key_id in result.stderr

    shutil.copy2(current, keyring)
    server.start()
    stubs = Stubs(server)
    assert get(stubs, "kept").value == b"newer"
    assert get(stubs, "kept", 1).value == b"precious"
    stubs.close()
